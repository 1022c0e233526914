"""``face`` stage: every extracted video → per-frame face sketches from dlib's 68 landmarks (train.task face).

Outputs ``data/maps/face/<video_id>/``: ``landmarks.json`` (68 (x, y) points per frame, or null,
``interpolated`` marks filled gaps), ``map/NNNNNN.png`` (the sketch: landmark curves + Canny edges
of the background outside the face, 0 / 255), ``parts/NNNNNN.png`` (which of the 14 part curves
each sketch pixel belongs to, 1..14: the data loader turns it into the distance maps) and
``meta.json`` with the weights used (file name, sha256). Policy for frames without a face: gaps
of up to ``face.max_gap`` frames between two detections are interpolated; other frames get the
background edges only (no face drawn), counted as ``frames_missing``. Runs only when the task
reads face maps (see :mod:`v2v.data.tasks`); needs ``pip install -e ".[face]"``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from tqdm import tqdm

import v2v.maps.face as face_ops
from v2v.config import Config, FaceConfig, to_dict
from v2v.io.atomic import atomic_dir, write_json
from v2v.io.frames import META_FILE, frame_name, frame_pattern
from v2v.io.maps import write_label, write_mask
from v2v.maps.face import LANDMARKS_FILE
from v2v.maps.frames import code_fingerprint, open_video, read_frame
from v2v.parallel import scoped_cache
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.stages.maps_common import learned_backend, run_map_stage

log = logging.getLogger(__name__)

CODE = code_fingerprint([face_ops])


def face_video(
    frames_root: Path,  # data/frames
    video_id: str,  # which video
    dest: Path,  # its output folder (replaced atomically)
    fc: FaceConfig,  # settings
    landmarker: face_ops.FaceLandmarker,  # dlib detector + 68-point predictor
    fingerprint_value: str,  # recorded in meta.json
) -> dict[str, Any]:
    """Landmarks + sketches of one video into ``dest``; returns its ``meta.json`` content."""
    meta, files = open_video(frames_root, video_id)
    h, w = meta["height"], meta["width"]
    found = [landmarker(read_frame(p, meta)) for p in tqdm(files, desc=f"face {video_id}", unit="frame", leave=False)]
    detected = sum(points is not None for points in found)
    filled, interpolated = face_ops.fill_gaps(found, fc.max_gap)
    tracks = face_ops.smooth(filled, fc.smoothing)
    filled_frames = {i for i, (a, b) in enumerate(zip(found, filled, strict=True)) if a is None and b is not None}
    with atomic_dir(dest) as tmp:
        for i, (path, points) in enumerate(zip(files, tracks, strict=True)):
            sketch, parts = face_ops.condition(
                read_frame(path, meta),
                points,
                canny_low=fc.low,
                canny_high=fc.high,
                sigma=fc.sigma,
                thickness=fc.thickness,
            )
            write_mask(tmp / "map" / frame_name(i), sketch > 0)
            write_label(tmp / "parts" / frame_name(i), parts)
        write_json(tmp / LANDMARKS_FILE, face_ops.to_json(tracks, filled_frames))
        out = {
            "video_id": video_id,
            "num_frames": len(files),
            "width": w,
            "height": h,
            "map_pattern": frame_pattern(folder="map"),
            "parts_pattern": frame_pattern(folder="parts"),
            "landmarks": LANDMARKS_FILE,
            **landmarker.info(),
            "settings": to_dict(fc),
            "frames_detected": detected,
            "frames_interpolated": interpolated,
            "frames_missing": len(files) - detected - interpolated,
            "fingerprint": fingerprint_value,
        }
        write_json(tmp / META_FILE, out)
    return out


def landmarker_for(fc: FaceConfig) -> face_ops.FaceLandmarker:
    """dlib's detector + predictor, loaded once per process (the stage's, or a Dask worker's)."""
    settings = {"predictor": fc.predictor, "upsample": fc.upsample}
    return learned_backend("face", settings, lambda: face_ops.FaceLandmarker(fc.predictor, upsample=fc.upsample))


def face_task(fc: FaceConfig, frames_root: Path, maps_root: Path, video_id: str, fp: str) -> dict[str, Any]:
    """One video's sketches (a task of :func:`for_each_video`, in this process or on a Dask worker)."""
    return face_video(frames_root, video_id, maps_root / video_id, fc, landmarker_for(fc), fp)


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Face maps for every extracted video; returns the metrics written to ``metrics/face.json``."""
    fc = cfg.face
    weights = functools.cache(lambda: landmarker_for(fc).weights)  # loaded only when the stage has work

    def tags(done: list[dict[str, Any]]) -> dict[str, str]:
        sha256 = weights().sha256
        named = {"v2v.face.backend": "dlib", "v2v.face.weights": weights().name}
        return named | ({"v2v.face.weights_sha256": sha256} if sha256 else {})

    def summary(done: list[dict[str, Any]]) -> dict[str, float]:
        frames = sum(m["num_frames"] for m in done) or 1
        counts = {
            key: float(sum(m[key] for m in done))
            for key in ("frames_detected", "frames_interpolated", "frames_missing")
        }
        found = (counts["frames_detected"] + counts["frames_interpolated"]) / frames
        return counts | {"face_found_fraction": round(found, 4)}

    with scoped_cache():  # serial tasks reuse the landmarker
        return run_map_stage(
            "face",
            cfg,
            paths,
            CODE,
            inputs_of=lambda video_id: {"settings": {**to_dict(fc), "weights_sha256": weights().sha256}},
            work=functools.partial(face_task, fc, paths.frames, paths.face_maps),
            summary=summary,
            tags=tags,
        )


def main() -> None:
    stage_main("face", run)


if __name__ == "__main__":
    main()
