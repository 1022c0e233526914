"""``segment`` stage: every extracted video → per-frame label + tracked instance maps.

Outputs ``data/maps/segment/<video_id>/label/NNNNNN.png`` (uint8 Cityscapes label ids),
``instance/NNNNNN.png`` (16-bit ``class*1000+k``, ``k`` kept per object through the clip) and
``meta.json`` (backend, weights, thresholds, label set, counts). Backends: ``ground_truth`` (the
sample's truth, the offline default), ``torchvision`` (Mask R-CNN) and ``detectron2``; see
:mod:`v2v.maps.segmentation`. Each video folder is written atomically and reused while its
fingerprint (frames + settings + code) matches; one video's bad input fails the stage after the
other videos are done.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import v2v.maps.ground_truth as gt
import v2v.maps.segmentation as segmentation
import v2v.maps.tracking as instance_tracking
from v2v.config import Config, SegmentConfig, to_dict
from v2v.io.atomic import atomic_dir, write_json
from v2v.io.frames import META_FILE
from v2v.io.maps import write_instance, write_label
from v2v.io.weights import WeightsError
from v2v.maps.frames import (
    batches,
    code_fingerprint,
    fingerprint,
    for_each_video,
    frames_fingerprint,
    list_videos,
    open_video,
    read_frame,
)
from v2v.maps.segmentation import Detectron2Segmenter, TorchvisionSegmenter
from v2v.ops.device import resolve_device
from v2v.paths import ProjectPaths
from v2v.stages.common import StageError, stage_main
from v2v.stages.maps_common import finish, skip_unneeded
from v2v.tracking import stage_run

log = logging.getLogger(__name__)

CODE = code_fingerprint([gt, segmentation, instance_tracking])
# settings that do not change the maps (so changing them reuses existing outputs)
NOT_IN_FINGERPRINT = ("batch_size", "device")

Segmenter = TorchvisionSegmenter | Detectron2Segmenter


def build_segmenter(sc: SegmentConfig) -> Segmenter:
    """The learned backend the params ask for (raises :class:`WeightsError` with what to do)."""
    device = resolve_device(sc.device, "segment.device")
    if sc.backend == "torchvision":
        return TorchvisionSegmenter(
            model=sc.model,
            weights=sc.weights,
            classes=sc.classes,
            score_threshold=sc.score_threshold,
            mask_threshold=sc.mask_threshold,
            min_size=sc.min_size,
            max_detections=sc.max_detections,
            device=device,
        )
    if sc.backend == "detectron2":
        return Detectron2Segmenter(
            config=sc.detectron2_config or "",
            weights=sc.weights,
            classes=sc.classes,
            score_threshold=sc.score_threshold,
            device=device,
        )
    raise ValueError(f"segment.backend: {sc.backend!r} has no learned model")


def settings(sc: SegmentConfig) -> dict[str, Any]:
    """The settings that decide the maps (recorded in meta.json and the fingerprint)."""
    data = {k: v for k, v in to_dict(sc).items() if k not in NOT_IN_FINGERPRINT}
    if sc.backend == "ground_truth":
        return {"backend": "ground_truth", "ground_truth_dir": sc.ground_truth_dir}
    data.pop("ground_truth_dir")
    return data


def segment_video(
    frames_root: Path,  # data/frames
    video_id: str,  # which video
    dest: Path,  # its output folder (replaced atomically)
    sc: SegmentConfig,  # settings
    truth_root: Path,  # ground_truth backend: folder of <video_id>/ truth
    model: Segmenter | None,  # learned backend (None for ground_truth)
    fingerprint_value: str,  # recorded in meta.json
) -> dict[str, Any]:
    """Segment one video into ``dest``; returns its ``meta.json`` content."""
    meta, files = open_video(frames_root, video_id)
    h, w = meta["height"], meta["width"]
    instances: set[int] = set()
    detections = 0
    labels_seen: set[int] = set()
    with atomic_dir(dest) as tmp:
        bar = tqdm(total=len(files), desc=f"segment {video_id}", unit="frame", leave=False)
        if model is None:
            folder = gt.truth_folder(truth_root, video_id, "segment")
            for i in range(len(files)):
                label, instance = gt.segmentation(folder, meta, i)
                if label.shape != (h, w):
                    raise ValueError(f"{folder}: truth maps give {label.shape}, frames are {(h, w)}")
                _write(tmp, i, label, instance, instances, labels_seen)
                bar.update()
            info: dict[str, Any] = {
                "backend": "ground_truth",
                "truth": f"{sc.ground_truth_dir}/{video_id}",
                "weights": None,
            }
        else:
            tracker = instance_tracking.InstanceTracker(iou_threshold=sc.track_iou, max_gap=sc.track_max_gap)
            i = 0
            for chunk in batches(files, sc.batch_size):
                frames = [read_frame(p, meta) for p in chunk]
                for det in model(frames):
                    ids = tracker.update(det.classes, det.masks)
                    label, instance = segmentation.compose(det, ids, h, w)
                    detections += len(ids)
                    _write(tmp, i, label, instance, instances, labels_seen)
                    i += 1
                    bar.update()
            info = model.info()
        bar.close()
        out = {
            "video_id": video_id,
            "num_frames": len(files),
            "width": w,
            "height": h,
            "frame_pattern": "%06d.png",
            "label_dir": "label",
            "instance_dir": "instance",
            "instance_encoding": "class_id*1000+k for things (k tracked through the clip), class_id for stuff",
            **info,
            "settings": settings(sc),
            "labels_present": sorted(labels_seen),
            "instances": len(instances),
            "detections": detections,
            "fingerprint": fingerprint_value,
        }
        write_json(tmp / META_FILE, out)
    return out


def _write(
    folder: Path, i: int, label: np.ndarray, instance: np.ndarray, instances: set[int], labels_seen: set[int]
) -> None:
    write_label(folder / "label" / f"{i:06d}.png", label)
    write_instance(folder / "instance" / f"{i:06d}.png", instance)
    instances.update(int(v) for v in np.unique(instance) if v >= 1000)
    labels_seen.update(int(v) for v in np.unique(label))


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Segment every extracted video; returns the metrics written to ``metrics/segment.json``."""
    sc = cfg.segment
    truth_root = paths / sc.ground_truth_dir
    with stage_run("segment", cfg, paths, ("segment",)) as tracker:
        if (
            skipped := skip_unneeded("segment", cfg, paths, paths.segment_maps, paths.segment_metrics, tracker)
        ) is not None:
            return skipped
        started = time.perf_counter()
        video_ids = list_videos(paths.frames)
        model: list[Segmenter] = []  # built once, only when a video needs (re)computing

        def fingerprint_of(video_id: str) -> str:
            frames = frames_fingerprint(paths.frames, video_id)
            return fingerprint({"frames": frames, "settings": settings(sc), "code": CODE})

        def work(video_id: str, fp: str) -> dict[str, Any]:
            if sc.backend != "ground_truth" and not model:
                try:
                    model.append(build_segmenter(sc))
                except WeightsError as exc:
                    raise StageError(str(exc)) from exc
                tracker.set_tags({"v2v.segment.weights": model[0].weights.name, "v2v.segment.backend": sc.backend})
                if model[0].weights.sha256:
                    tracker.set_tags({"v2v.segment.weights_sha256": model[0].weights.sha256})
            return segment_video(
                paths.frames, video_id, paths.segment_maps / video_id, sc, truth_root, model[0] if model else None, fp
            )

        loop = for_each_video(video_ids, paths.segment_maps, fingerprint_of, work)
        if sc.backend == "ground_truth":
            tracker.set_tags({"v2v.segment.backend": "ground_truth", "v2v.segment.weights": "none (dataset truth)"})
        extra = {
            "instances": float(sum(m.get("instances", 0) for m in loop.done)),
            "detections": float(sum(m.get("detections", 0) for m in loop.done)),
        }
        return finish("segment", tracker, paths, loop, started, paths.segment_metrics, extra)


def main() -> None:
    stage_main("segment", run)


if __name__ == "__main__":
    main()
