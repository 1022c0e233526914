"""Scorer bookkeeping (batches, clip windows, cache), segment questions and A/B between two evaluations."""

from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.eval.features import FeatureNet
from v2v.eval.scoring import REAL, FeatureCache, Scorer, VideoScores, ab_preferences, distances, segment_means
from v2v.eval.summary import per_frame_csv
from v2v.io.weights import WeightsInfo


class MeanColour(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1) if x.ndim == 4 else x.flatten(3).mean((-1, 2))


def net(kind: str) -> FeatureNet:
    info = WeightsInfo("mean", "none", "random-init", None)
    return FeatureNet(f"fd_{kind}", MeanColour(), info, 3, "none", kind, 8, (0.0,) * 3, (1.0,) * 3)


def frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(n)]


def score(cache: FeatureCache | None, n: int = 10) -> VideoScores:
    scorer = Scorer(
        nets=[net("image"), net("video")],
        lpips=None,
        systems=["a"],
        video_id="v",
        clip_frames=4,
        clip_stride=3,
        batch_size=3,
        cache=cache,
        video_hash="hash",
    )
    for real, fake in zip(frames(n, 0), frames(n, 1), strict=True):
        scorer.add(real, {"a": fake})
    return scorer.finish()


def test_every_frame_and_clip_window_is_featurised(tmp_path: Path) -> None:
    scores = score(None)
    assert scores.frames == 10
    assert scores.stacked("fd_image", REAL).shape == (10, 3) and scores.stacked("fd_image", "a").shape == (10, 3)
    assert scores.stacked("fd_video", "a").shape == (3, 3)  # windows starting at frames 0, 3, 6
    assert len(scores.temporal["warp_error_a"]) == 9
    out = distances([scores], [net("image"), net("video")], ["a"])
    assert out["fd_image"] > 0 and out["fd_image_samples"] == 10 and out["fd_video_samples"] == 3


def test_real_features_come_from_the_cache_the_second_time(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    first = score(cache)
    assert len(list(tmp_path.glob("*.npz"))) == 2 and not first.cached_real
    second = score(cache)
    assert second.cached_real == {"fd_image", "fd_video"}
    np.testing.assert_array_equal(first.stacked("fd_image", REAL), second.stacked("fd_image", REAL))
    next(tmp_path.glob("*.npz")).write_bytes(b"damaged")
    assert len(score(cache).cached_real) == 1  # a damaged entry is recomputed, not trusted


def test_mismatched_frames_are_errors() -> None:
    scorer = Scorer(nets=[], lpips=None, systems=["a"], video_id="v", clip_frames=4, clip_stride=2, batch_size=2)
    with pytest.raises(ValueError, match="expected frames of"):
        scorer.add(frames(1, 0)[0], {"b": frames(1, 0)[0]})
    with pytest.raises(ValueError, match="a frame is"):
        scorer.add(frames(1, 0)[0], {"a": np.zeros((8, 8, 3), np.uint8)})


def test_segments_are_non_overlapping_and_short_tails_count_from_half() -> None:
    assert segment_means([1, 1, 3, 3, 5], 2) == [1.0, 3.0, 5.0]  # a 1-frame tail is half a 2-frame segment
    assert segment_means(list(range(9)), 4) == [1.5, 5.5]
    assert segment_means(list(range(10)), 4) == [1.5, 5.5, 8.5]


def test_ab_between_two_evaluations_of_the_same_videos() -> None:
    def evaluation(offset: float) -> str:
        v = VideoScores("clip", frames=9)
        v.lpips = {"vid2vid": [0.2 + offset] * 9}
        v.temporal = {"warp_error_vid2vid": [0.01 + offset] * 8, "tlp_vid2vid": [0.05] * 8}
        return per_frame_csv([v])

    better, worse = evaluation(0.0), evaluation(0.1)
    prefs = ab_preferences(better, worse, segment=4, tolerance=0.01)
    assert prefs["realism"].rate == 1.0 and prefs["temporal_warp"].rate == 1.0
    assert prefs["temporal_tlp"].rate == 0.5 and prefs["temporal_tlp"].ties == prefs["temporal_tlp"].questions
    assert ab_preferences(better, better, 4, 0.01)["combined"].rate == 0.5
    reverse = ab_preferences(worse, better, 4, 0.01)
    assert reverse["combined"].rate == pytest.approx(1 - prefs["combined"].rate)
