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

import functools
import logging
from pathlib import Path
from typing import Any

import v2v.maps.ground_truth as gt
import v2v.maps.segmentation as segmentation
import v2v.maps.tracking as instance_tracking
from v2v.config import Config, SegmentConfig, to_dict
from v2v.maps.frames import code_fingerprint
from v2v.maps.segmentation import Detectron2Segmenter, TorchvisionSegmenter
from v2v.ops.device import resolve_device
from v2v.parallel import gpu_need
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.stages.maps_common import learned_backend, run_map_stage, weights_tags

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


def segment_task(
    sc: SegmentConfig, frames_root: Path, maps_root: Path, truth_root: Path, video_id: str, fp: str
) -> dict[str, Any]:
    """One video's maps (a task of :func:`for_each_video`, in this process or on a Dask worker): the learned
    backend is built once per process."""
    model = None if sc.backend == "ground_truth" else learned_backend("segment", sc, lambda: build_segmenter(sc))
    return segmentation.segment_video(
        frames_root,
        video_id,
        maps_root / video_id,
        settings(sc),
        truth_root,
        sc.ground_truth_dir,
        model,
        fp,
        batch_size=sc.batch_size,
        track_iou=sc.track_iou,
        track_max_gap=sc.track_max_gap,
    )


def settings(sc: SegmentConfig) -> dict[str, Any]:
    """The settings that decide the maps (recorded in meta.json and the fingerprint)."""
    data = {k: v for k, v in to_dict(sc).items() if k not in NOT_IN_FINGERPRINT}
    if sc.backend == "ground_truth":
        return {"backend": "ground_truth", "ground_truth_dir": sc.ground_truth_dir}
    data.pop("ground_truth_dir")
    return data


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Segment every extracted video; returns the metrics written to ``metrics/segment.json``."""
    sc = cfg.segment
    return run_map_stage(
        "segment",
        cfg,
        paths,
        CODE,
        inputs_of=lambda video_id: {"settings": settings(sc)},
        work=functools.partial(segment_task, sc, paths.frames, paths.segment_maps, paths / sc.ground_truth_dir),
        summary=lambda done: {key: float(sum(m.get(key, 0) for m in done)) for key in ("instances", "detections")},
        tags=lambda done: weights_tags("segment", sc.backend, done),
        gpu=gpu_need(sc.backend != "ground_truth", sc.device),
    )


def main() -> None:
    stage_main("segment", run)


if __name__ == "__main__":
    main()
