"""One video's flow: pairs side by side on several estimators give what one estimator gives, in order."""

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
import torch

from v2v.data.synthetic import generate_clip
from v2v.flow.confidence import ConfidenceSettings
from v2v.flow.dis import DisFlow
from v2v.flow.io import read_flow_pair
from v2v.flow.video import compute_video_flow
from v2v.io.maps import write_rgb


def frame_files(folder: Path, num_frames: int) -> list[Path]:
    folder.mkdir()
    files = []
    for t, frame in enumerate(generate_clip("street", width=96, height=64, num_frames=num_frames, seed=3)):
        files.append(folder / f"{t:06d}.png")
        write_rgb(files[-1], frame.rgb)
    return files


def test_parallel_workers_match_one_worker_in_frame_order(tmp_path: Path) -> None:
    files = frame_files(tmp_path / "frames", 8)
    settings = ConfidenceSettings()
    threads = cv2.getNumThreads(), torch.get_num_threads()
    one = compute_video_flow(files, tmp_path / "one", DisFlow("fast"), settings, batch_size=1, preview_at=(2, 6))
    two = compute_video_flow(
        files, tmp_path / "two", [DisFlow("fast") for _ in range(3)], settings, batch_size=2, preview_at=(2, 6)
    )
    assert (cv2.getNumThreads(), torch.get_num_threads()) == threads  # single-threaded kernels only meanwhile
    assert one.num_pairs == two.num_pairs == 7 and one.valid_pixels == two.valid_pixels
    for t in range(1, 8):
        flow_one, valid_one = read_flow_pair(tmp_path / "one", t)
        flow_two, valid_two = read_flow_pair(tmp_path / "two", t)
        np.testing.assert_array_equal(flow_two, flow_one)  # DIS does not depend on OpenCV's thread count
        np.testing.assert_array_equal(valid_two, valid_one)
    assert sorted(p.name for p in (tmp_path / "two").glob("*.npy")) == [f"{t:06d}.npy" for t in range(1, 8)]
    # previews come back in frame order, whichever worker finished first
    for row_one, row_two in zip(one.previews, two.previews, strict=True):
        np.testing.assert_array_equal(row_two[0], row_one[0])


class Failing:
    name = "failing"
    weights = "none"
    settings: ClassVar[dict[str, object]] = {}

    def __init__(self, fail_at: int) -> None:
        self.calls, self.fail_at = 0, fail_at

    def __call__(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ValueError("backend broke")
        return np.zeros((*sources.shape[:3], 2), np.float32)


def test_a_worker_error_reaches_the_caller_and_threads_are_restored(tmp_path: Path) -> None:
    files = frame_files(tmp_path / "frames", 10)
    threads = cv2.getNumThreads(), torch.get_num_threads()
    with pytest.raises(ValueError, match="backend broke"):
        compute_video_flow(files, tmp_path / "out", [Failing(2), Failing(2)], ConfidenceSettings(), batch_size=1)
    assert (cv2.getNumThreads(), torch.get_num_threads()) == threads
    with pytest.raises(ValueError, match="no estimator"):
        compute_video_flow(files, tmp_path / "out", [], ConfidenceSettings())
