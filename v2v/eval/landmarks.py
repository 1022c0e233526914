"""Landmark consistency of a (generated) face video: do its frames show the face the conditioning asked for?

A landmark detector (e.g. :class:`v2v.maps.face.FaceLandmarker`) runs on every frame that has
reference landmarks (those the conditioning was drawn from). Per such frame the error is the mean
Euclidean distance over the 68 points between detected and reference landmarks, divided by the
reference's inter-ocular distance (outer eye corners), the usual normalised mean error (NME) of
300-W. Frames where the detector finds no face count against ``landmark_detected``, not the error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from v2v.io.frames import frame_name, frame_paths
from v2v.io.maps import read_rgb
from v2v.maps.face import LANDMARKS_FILE, FaceLandmarker, from_json, inter_ocular
from v2v.paths import ProjectPaths


def landmark_consistency(
    detect: Callable[[np.ndarray], np.ndarray | None],  # (H, W, 3) uint8 RGB → (68, 2) (x, y) pixels or None
    frames: Iterable[np.ndarray],  # the video's RGB frames, in order
    reference: Sequence[np.ndarray | None],  # per frame, the (68, 2) reference landmarks or None (not scored)
) -> dict[str, Any]:
    """Scores of one video.

    * ``landmark_error``: mean normalised error over the frames where both the reference and the detector have
      landmarks (nan if none);
    * ``landmark_detected``: fraction of the frames with reference landmarks where the detector found a face
      (nan if no frame has reference landmarks);
    * ``landmark_frames``: number of frames with reference landmarks (int);
    * ``per_frame``: list of per-frame normalised errors, one per frame, nan where the reference has no
      landmarks (the detector is not run there) or the detector found no face.

    Raises ValueError when the number of frames differs from ``len(reference)``.
    """
    per_frame: list[float] = []
    scored = detected = 0
    stream = iter(frames)
    for index, frame in enumerate(stream):
        if index >= len(reference):
            total = index + 1 + sum(1 for _ in stream)
            raise ValueError(f"landmark consistency: {total} frames but {len(reference)} reference landmark entries")
        target = reference[index]
        if target is None:
            per_frame.append(math.nan)
            continue
        scored += 1
        found = detect(frame)
        if found is None:
            per_frame.append(math.nan)
            continue
        if found.shape != target.shape:
            raise ValueError(f"landmark consistency: frame {index}: detected {found.shape} vs reference {target.shape}")
        detected += 1
        distances = np.linalg.norm(found.astype(np.float64) - target.astype(np.float64), axis=1)
        per_frame.append(float(distances.mean()) / inter_ocular(target))
    if len(per_frame) != len(reference):
        raise ValueError(
            f"landmark consistency: {len(per_frame)} frames but {len(reference)} reference landmark entries"
        )
    errors = [e for e in per_frame if not math.isnan(e)]
    return {
        "landmark_error": float(np.mean(errors)) if errors else math.nan,
        "landmark_detected": detected / scored if scored else math.nan,
        "landmark_frames": scored,
        "per_frame": per_frame,
    }


def pooled(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Frame-weighted pooling over videos of :func:`landmark_consistency` results: ``landmark_error`` weighted by
    each video's detected frames, ``landmark_detected`` by its frames with reference landmarks (nan when the
    weights sum to 0); ``landmark_frames`` is the total."""
    frames = detected = error_sum = 0.0
    for result in results:
        count = float(result["landmark_frames"])
        if count == 0:
            continue
        hits = float(result["landmark_detected"]) * count
        frames += count
        detected += hits
        if hits > 0:
            error_sum += float(result["landmark_error"]) * hits
    return {
        "landmark_error": error_sum / detected if detected > 0 else math.nan,
        "landmark_detected": detected / frames if frames > 0 else math.nan,
        "landmark_frames": int(frames),
    }


def score_landmarks(
    landmarker: FaceLandmarker,  # the face stage's detector + predictor
    paths: ProjectPaths,  # project locations
    video: Any,  # the test video's entry
    frames: int,  # frames evaluated
    generated: dict[str, Path],  # system → folder of its NNNNNN.png frames
) -> dict[str, dict[str, Any]]:
    """Landmark consistency of each system and of the real frames against the landmarks the sketches were drawn from."""
    record = paths.face_maps / video.video_id / LANDMARKS_FILE
    if not record.is_file():
        raise FileNotFoundError(f"{record}: missing; run the face stage (dvc repro face)")
    reference = from_json(json.loads(record.read_text(encoding="utf-8")))[:frames]
    real = (read_rgb(p) for p in frame_paths(paths.frames / video.video_id)[:frames])
    out = {"real": landmark_consistency(landmarker, real, reference)}
    for system, folder in generated.items():
        fakes = (read_rgb(folder / frame_name(t)) for t in range(frames))
        out[system] = landmark_consistency(landmarker, fakes, reference)
    return out
