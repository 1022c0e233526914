"""Edge consistency (the edges task's verdict): tolerance matching, pooling, and the real frames' ceiling."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from v2v.eval.edges import EdgeCounts, edge_consistency, match_edges, score_edges
from v2v.eval.summary import edge_metrics
from v2v.io.maps import write_mask, write_rgb
from v2v.maps.edges import canny

SETTINGS = {"sigma": 1.0, "thresholds": "fixed", "low": 100.0, "high": 200.0, "auto_spread": 0.33}


def line(shift: int = 0) -> np.ndarray:
    mask = np.zeros((32, 48), bool)
    mask[16 + shift, 4:44] = True
    return mask


def test_a_shifted_edge_matches_within_the_tolerance_only() -> None:
    near = match_edges(line(1), line(0), tolerance=2.0).scores()
    assert near == {"edge_precision": 1.0, "edge_recall": 1.0, "edge_f": 1.0}
    far = match_edges(line(3), line(0), tolerance=2.0).scores()
    assert far == {"edge_precision": 0.0, "edge_recall": 0.0, "edge_f": 0.0}
    half = match_edges(line(0) | line(8), line(0), tolerance=2.0).scores()  # a spurious second edge
    assert half["edge_precision"] == 0.5 and half["edge_recall"] == 1.0 and half["edge_f"] == pytest.approx(2 / 3)


def test_blank_frames_score_zero_and_empty_inputs_are_undefined() -> None:
    blank = match_edges(np.zeros((32, 48), bool), line(0), tolerance=2.0).scores()
    assert blank == {"edge_precision": None, "edge_recall": 0.0, "edge_f": 0.0}
    assert match_edges(line(0), np.zeros((32, 48), bool), tolerance=2.0).scores()["edge_f"] is None
    with pytest.raises(ValueError, match="detected edges"):
        match_edges(np.zeros((8, 8), bool), line(0), tolerance=2.0)


def test_counts_pool_over_frames_not_over_frame_scores() -> None:
    a = match_edges(line(0), line(0), 2.0)  # 40 edge pixels, all right
    b = match_edges(np.pad(line(5)[:, :12], ((0, 0), (0, 36))), line(0), 2.0)  # 8 pixels, 5 px off
    pooled = a.add(b)
    assert pooled == EdgeCounts(
        a.detected + b.detected, a.correct + b.correct, a.target + b.target, a.recovered + b.recovered
    )
    assert pooled.scores()["edge_precision"] == pytest.approx(40 / (40 + b.detected))


def frames(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(3):
        frame = np.full((64, 96, 3), 40, np.uint8)
        x, y = 10 + 5 * t + int(rng.integers(0, 4)), 12 + int(rng.integers(0, 4))
        cv2.rectangle(frame, (x, y), (x + 40, y + 30), (220, 200, 180), -1)
        cv2.circle(frame, (70, 40 - t), 10, (250, 250, 250), -1)
        out.append(frame)
    return out


def test_real_frames_are_the_ceiling_and_a_wrong_video_scores_lower(tmp_path: Path) -> None:
    real = frames(0)
    edge_dir, real_dir, fake_dir = tmp_path / "edges", tmp_path / "real", tmp_path / "fake"
    for t, frame in enumerate(real):
        low, high = SETTINGS["low"], SETTINGS["high"]
        write_mask(edge_dir / f"{t:06d}.png", canny(frame, sigma=1.0, low=low, high=high))
        write_rgb(real_dir / f"{t:06d}.png", frame)
        write_rgb(fake_dir / f"{t:06d}.png", np.roll(frame, 6, axis=1))  # the right shapes, 6 px off
    (edge_dir / "meta.json").write_text(json.dumps({"settings": SETTINGS}))
    (real_dir / "meta.json").write_text(json.dumps({"frame_pattern": "%06d.png", "num_frames": 3}))
    counts = score_edges(edge_dir, real_dir, 3, {"vid2vid": fake_dir, "baseline": real_dir}, tolerance=2.0)
    assert counts["real"].scores()["edge_f"] == 1.0 and counts["baseline"] == counts["real"]
    assert counts["vid2vid"].scores()["edge_f"] < 0.7  # vertical edges missed (horizontal ones slide along)
    metrics = edge_metrics({"clip": counts})
    assert metrics["edge_f_real"] == 1.0 and metrics["edge_f"] < 0.7 and metrics["edge_f_baseline"] == 1.0
    assert set(metrics["edge_per_video"]["clip"]) >= {"edge_f_vid2vid", "edge_recall_real"}
    with pytest.raises(FileNotFoundError, match="dvc repro edges"):
        score_edges(tmp_path / "none", real_dir, 3, {}, tolerance=2.0)


def test_the_settings_recorded_by_the_edge_stage_are_used() -> None:
    frame = frames(1)[0]
    auto = {**SETTINGS, "thresholds": "auto"}
    target = canny(frame, sigma=1.0, low=None, high=None, auto_spread=0.33)
    same = edge_consistency([frame], [target], auto, tolerance=0.5).scores()
    assert same["edge_f"] == 1.0
