"""Edge consistency of a (generated) video: do its frames have the edges the conditioning asked for?

The edges task draws frames from Canny edge maps, so its verdict is the same detector run again: the
edge stage's own Canny (the settings recorded in the video's ``meta.json``) on every synthesised
frame, matched against the input edge map with a small distance tolerance, as edge benchmarks score a
detector (BSDS's boundary precision/recall, here with a distance transform instead of a bipartite
matching). Per frame, a detected edge pixel is correct when an input edge pixel lies within
``tolerance`` pixels (precision) and an input edge pixel is recovered when a detected one lies within
``tolerance`` (recall); counts pool over frames and videos, and the F-score is their harmonic mean.
The real frames, scored the same way, are the ceiling (the input maps are the real frames' edges, plus
instance boundaries when ``edges.instance_boundaries`` is on).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from v2v.io.frames import META_FILE, frame_name, frame_paths
from v2v.io.maps import read_mask, read_rgb
from v2v.maps.edges import canny


@dataclass
class EdgeCounts:
    """Pooled matches of detected against input edges."""

    detected: int = 0  # edge pixels found in the frames
    correct: int = 0  # of those, within the tolerance of an input edge
    target: int = 0  # input edge pixels
    recovered: int = 0  # of those, within the tolerance of a detected edge

    def add(self, other: EdgeCounts) -> EdgeCounts:
        return EdgeCounts(
            self.detected + other.detected,
            self.correct + other.correct,
            self.target + other.target,
            self.recovered + other.recovered,
        )

    def scores(self) -> dict[str, float | None]:
        """``edge_precision``, ``edge_recall``, ``edge_f``. Precision is None when nothing was detected and recall
        when the input has no edge; F is 0 when either is 0 (a blank frame recovers nothing), None when recall is
        undefined."""
        precision = self.correct / self.detected if self.detected else None
        recall = self.recovered / self.target if self.target else None
        if recall is None:
            f_score = None
        elif not recall or not precision:
            f_score = 0.0
        else:
            f_score = 2 * precision * recall / (precision + recall)
        return {"edge_precision": precision, "edge_recall": recall, "edge_f": f_score}


def _near(mask: npt.NDArray[np.bool_], tolerance: float) -> npt.NDArray[np.bool_]:
    """Pixels within ``tolerance`` (Euclidean) of a True pixel of ``mask``."""
    if not mask.any():
        return np.zeros_like(mask)
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= tolerance


def match_edges(detected: npt.NDArray[np.bool_], target: npt.NDArray[np.bool_], tolerance: float) -> EdgeCounts:
    """Counts of one frame: ``detected`` and ``target`` are ``(H, W)`` boolean edge maps of the same size."""
    if detected.shape != target.shape:
        raise ValueError(f"edge consistency: detected edges {detected.shape} vs input edges {target.shape}")
    return EdgeCounts(
        detected=int(detected.sum()),
        correct=int((detected & _near(target, tolerance)).sum()),
        target=int(target.sum()),
        recovered=int((target & _near(detected, tolerance)).sum()),
    )


def edge_consistency(
    frames: Iterable[npt.NDArray[np.uint8]],  # the video's RGB frames, in order
    targets: Iterable[npt.NDArray[np.bool_]],  # the input edge map of each frame
    settings: Mapping[str, Any],  # the edge stage's settings (sigma, thresholds, low, high, auto_spread)
    tolerance: float,  # pixels
) -> EdgeCounts:
    """Pooled counts of a whole video, its frames' Canny edges against the input maps."""
    low, high = (settings["low"], settings["high"]) if settings["thresholds"] == "fixed" else (None, None)
    total = EdgeCounts()
    for frame, target in zip(frames, targets, strict=True):
        found = canny(frame, sigma=settings["sigma"], low=low, high=high, auto_spread=settings["auto_spread"])
        total = total.add(match_edges(found, target, tolerance))
    return total


def score_edges(
    edge_dir: Path,  # data/maps/edges/<video_id>: the input maps and their meta.json
    real_dir: Path,  # data/frames/<video_id>
    frames: int,  # frames evaluated
    generated: Mapping[str, Path],  # system → folder of its NNNNNN.png frames
    tolerance: float,
) -> dict[str, EdgeCounts]:
    """Edge counts of each system and of the real frames (key ``real``) against the video's input edge maps."""
    meta_path = edge_dir / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: missing; run the edges stage (dvc repro edges)")
    settings = json.loads(meta_path.read_text(encoding="utf-8"))["settings"]

    def targets() -> Iterable[npt.NDArray[np.bool_]]:
        return (read_mask(edge_dir / frame_name(t)) for t in range(frames))

    real = (read_rgb(p) for p in frame_paths(real_dir)[:frames])
    out = {"real": edge_consistency(real, targets(), settings, tolerance)}
    for system, folder in generated.items():
        fakes = (read_rgb(folder / frame_name(t)) for t in range(frames))
        out[system] = edge_consistency(fakes, targets(), settings, tolerance)
    return out
