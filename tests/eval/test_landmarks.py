"""Landmark consistency: normalised error against reference landmarks, detection rate, pooling over videos."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2v.eval.landmarks import landmark_consistency, pooled


def reference_face(seed: int = 0, ocular: float = 40.0) -> np.ndarray:
    """Random (68, 2) landmarks whose outer eye corners (36, 45) are ``ocular`` pixels apart."""
    points = np.random.default_rng(seed).uniform(20, 100, (68, 2)).astype(np.float32)
    points[36], points[45] = (40.0, 50.0), (40.0 + ocular, 50.0)
    return points


def frames(count: int) -> list[np.ndarray]:
    return [np.full((8, 8, 3), i, np.uint8) for i in range(count)]  # the frame index is its pixel value


def test_error_is_the_offset_over_the_inter_ocular_distance() -> None:
    reference = [reference_face(i) for i in range(4)]
    offset = np.array([3.0, 4.0], np.float32)  # 5 px for every point
    result = landmark_consistency(lambda rgb: reference[int(rgb[0, 0, 0])] + offset, frames(4), reference)
    assert result["landmark_error"] == pytest.approx(5.0 / 40.0)
    assert result["landmark_detected"] == 1.0 and result["landmark_frames"] == 4
    assert result["per_frame"] == pytest.approx([0.125] * 4)
    exact = landmark_consistency(lambda rgb: reference[int(rgb[0, 0, 0])], frames(4), reference)
    assert exact["landmark_error"] == 0.0


def test_missed_faces_lower_the_detection_rate_not_the_error() -> None:
    reference: list[np.ndarray | None] = [reference_face(i, ocular=20.0) for i in range(5)]
    reference[4] = None  # not scored: the detector must not even be asked
    asked: list[int] = []

    def detect(rgb: np.ndarray) -> np.ndarray | None:
        index = int(rgb[0, 0, 0])
        asked.append(index)
        target = reference[index]
        return None if index in (1, 2) or target is None else target + np.float32(2.0)

    result = landmark_consistency(detect, frames(5), reference)
    assert asked == [0, 1, 2, 3]
    assert result["landmark_frames"] == 4
    assert result["landmark_detected"] == pytest.approx(0.5)
    assert result["landmark_error"] == pytest.approx(math.hypot(2, 2) / 20.0)
    per_frame = result["per_frame"]
    assert len(per_frame) == 5 and [math.isnan(e) for e in per_frame] == [False, True, True, False, True]
    nothing = landmark_consistency(lambda rgb: None, frames(2), reference[:2])
    assert math.isnan(nothing["landmark_error"]) and nothing["landmark_detected"] == 0.0
    empty = landmark_consistency(lambda rgb: None, frames(2), [None, None])
    assert math.isnan(empty["landmark_detected"]) and empty["landmark_frames"] == 0


def test_frame_count_must_match_the_reference() -> None:
    reference = [reference_face(i) for i in range(3)]
    with pytest.raises(ValueError, match=r"2 frames but 3"):
        landmark_consistency(lambda rgb: None, frames(2), reference)
    with pytest.raises(ValueError, match=r"5 frames but 3"):
        landmark_consistency(lambda rgb: None, iter(frames(5)), reference)


def test_pooling_weights_errors_by_detections_and_rates_by_frames() -> None:
    videos = [
        {"landmark_error": 0.1, "landmark_detected": 1.0, "landmark_frames": 10},  # 10 detections
        {"landmark_error": 0.4, "landmark_detected": 0.5, "landmark_frames": 40},  # 20 detections
        {"landmark_error": math.nan, "landmark_detected": 0.0, "landmark_frames": 50},  # none
        {"landmark_error": math.nan, "landmark_detected": math.nan, "landmark_frames": 0},  # no reference faces
    ]
    result = pooled(videos)
    assert result["landmark_error"] == pytest.approx((0.1 * 10 + 0.4 * 20) / 30)
    assert result["landmark_detected"] == pytest.approx(30 / 100)
    assert result["landmark_frames"] == 100
    assert all(math.isnan(v) for k, v in pooled([]).items() if k != "landmark_frames")
