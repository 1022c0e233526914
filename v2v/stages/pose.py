"""``pose`` stage: every extracted video → per-frame keypoints JSON + rendered pose map.

Outputs ``data/maps/pose/<video_id>/keypoints/NNNNNN.json`` (OpenPose-like: ``people`` with
BODY_25 ``pose_keypoints_2d`` and the COCO-17 original, confidences in [0, 1], tracked
``person_id``), ``map/NNNNNN.png`` (RGB sticks, one colour per limb) and ``meta.json``. Backends:
``ground_truth`` (the sample's keypoints.json, the offline default), ``torchvision`` (Keypoint
R-CNN) and ``detectron2``. Optional exponential smoothing of tracked keypoints.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import v2v.maps.ground_truth as gt
import v2v.maps.pose as pose_ops
import v2v.maps.tracking as instance_tracking
from v2v.config import Config, PoseConfig, to_dict
from v2v.data.labels import INSTANCE_DIVISOR, label_id
from v2v.io.atomic import atomic_dir, write_json
from v2v.io.frames import META_FILE, frame_name, frame_pattern
from v2v.io.maps import write_rgb
from v2v.maps.frames import batches, code_fingerprint, open_video, read_frame
from v2v.maps.pose import Detectron2Pose, Person, TorchvisionPose
from v2v.ops.device import resolve_device
from v2v.parallel import gpu_need
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.stages.maps_common import learned_backend, run_map_stage, weights_tags

log = logging.getLogger(__name__)

CODE = code_fingerprint([gt, pose_ops, instance_tracking])
NOT_IN_FINGERPRINT = ("batch_size", "device")
PERSON = label_id("person")

PoseModel = TorchvisionPose | Detectron2Pose


def build_pose_model(pc: PoseConfig) -> PoseModel:
    """The learned backend the params ask for (raises :class:`WeightsError` with what to do)."""
    device = resolve_device(pc.device, "pose.device")
    if pc.backend == "torchvision":
        return TorchvisionPose(
            weights=pc.weights,
            score_threshold=pc.score_threshold,
            min_size=pc.min_size,
            max_detections=pc.max_detections,
            device=device,
        )
    if pc.backend == "detectron2":
        return Detectron2Pose(
            config=pc.detectron2_config or "", weights=pc.weights, score_threshold=pc.score_threshold, device=device
        )
    raise ValueError(f"pose.backend: {pc.backend!r} has no learned model")


def settings(pc: PoseConfig) -> dict[str, Any]:
    data = {k: v for k, v in to_dict(pc).items() if k not in NOT_IN_FINGERPRINT}
    if pc.backend == "ground_truth":
        for key in ("weights", "detectron2_config", "score_threshold", "min_size", "max_detections", "track_iou"):
            data.pop(key)
    else:
        data.pop("ground_truth_dir")
    return data


def track_people(frames: list[list[Person]], height: int, width: int, pc: PoseConfig) -> list[list[Person]]:
    """Give each detected person an id kept across frames (IoU of keypoint boxes)."""
    tracker = instance_tracking.InstanceTracker(iou_threshold=pc.track_iou, max_gap=5)
    for people in frames:
        boxes = [pose_ops.keypoint_box(p.keypoints, pc.keypoint_threshold) for p in people]
        kept = [i for i, b in enumerate(boxes) if b is not None]
        masks = np.zeros((len(kept), height, width), bool)
        for row, i in enumerate(kept):
            x0, y0, x1, y1 = boxes[i]  # type: ignore[misc]
            masks[row, max(0, int(y0)) : max(0, int(y1) + 1), max(0, int(x0)) : max(0, int(x1) + 1)] = True
        ids = tracker.update(np.full(len(kept), PERSON, np.int64), masks)
        for row, i in enumerate(kept):
            people[i].person_id = int(ids[row]) - PERSON * INSTANCE_DIVISOR
            people[i].extra = {**people[i].extra, "instance_id": int(ids[row])}
    return frames


def pose_video(
    frames_root: Path,  # data/frames
    video_id: str,  # which video
    dest: Path,  # its output folder (replaced atomically)
    pc: PoseConfig,  # settings
    truth_root: Path,  # ground_truth backend: folder of <video_id>/keypoints.json
    model: PoseModel | None,  # learned backend (None for ground_truth)
    fingerprint_value: str,  # recorded in meta.json
) -> dict[str, Any]:
    """Keypoints + pose maps of one video into ``dest``; returns its ``meta.json`` content."""
    meta, files = open_video(frames_root, video_id)
    h, w = meta["height"], meta["width"]
    if model is None:
        folder = gt.truth_folder(truth_root, video_id, "pose")
        frames = gt.keypoints(folder, meta)
        info: dict[str, Any] = {
            "backend": "ground_truth",
            "truth": f"{pc.ground_truth_dir}/{video_id}/keypoints.json",
            "weights": None,
        }
    else:
        frames = []
        for chunk in tqdm(list(batches(files, pc.batch_size)), desc=f"pose {video_id}", unit="batch", leave=False):
            frames.extend(model([read_frame(p, meta) for p in chunk]))
        frames = track_people(frames, h, w, pc)
        info = model.info()
    frames = pose_ops.smooth_tracks(frames, pc.smoothing)
    with atomic_dir(dest) as tmp:
        for i, people in enumerate(frames):
            write_json(tmp / "keypoints" / frame_name(i, ".json"), pose_ops.people_json(people, h, w))
            canvas = pose_ops.render_pose(people, h, w, threshold=pc.keypoint_threshold, line_width=pc.line_width)
            write_rgb(tmp / "map" / frame_name(i), canvas)
        out = {
            "video_id": video_id,
            "num_frames": len(files),
            "width": w,
            "height": h,
            "frame_pattern": frame_pattern(),
            "keypoints_pattern": frame_pattern(".json", "keypoints"),
            "map_pattern": frame_pattern(folder="map"),
            "keypoint_format": "OpenPose BODY_25 pose_keypoints_2d (x, y, c) + coco17_keypoints_2d",
            **info,
            "settings": settings(pc),
            "people_frames": sum(len(p) for p in frames),
            "people": len({p.person_id for people in frames for p in people if p.person_id >= 0}),
            "line_thickness_px": pose_ops.line_thickness(h, w, pc.line_width),
            "fingerprint": fingerprint_value,
        }
        write_json(tmp / META_FILE, out)
    return out


def pose_task(
    pc: PoseConfig, frames_root: Path, maps_root: Path, truth_root: Path, video_id: str, fp: str
) -> dict[str, Any]:
    """One video's keypoints and maps (a task of :func:`for_each_video`, in this process or on a Dask worker): the
    learned backend is built once per process."""
    model = None if pc.backend == "ground_truth" else learned_backend("pose", pc, lambda: build_pose_model(pc))
    return pose_video(frames_root, video_id, maps_root / video_id, pc, truth_root, model, fp)


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Pose maps for every extracted video; returns the metrics written to ``metrics/pose.json``."""
    pc = cfg.pose
    return run_map_stage(
        "pose",
        cfg,
        paths,
        CODE,
        inputs_of=lambda video_id: {"settings": settings(pc)},
        work=functools.partial(pose_task, pc, paths.frames, paths.pose_maps, paths / pc.ground_truth_dir),
        summary=lambda done: {"people_frames": float(sum(m.get("people_frames", 0) for m in done))},
        tags=lambda done: weights_tags("pose", pc.backend, done),
        gpu=gpu_need(pc.backend != "ground_truth", pc.device),
    )


def main() -> None:
    stage_main("pose", run)


if __name__ == "__main__":
    main()
