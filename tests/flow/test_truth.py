"""Ground truth follows the frames' resize and crop, and its vectors are scaled with them."""

from pathlib import Path

import numpy as np

from v2v.flow.truth import FlowScore, load_truth, truth_folder
from v2v.io.maps import write_flow, write_mask


def test_truth_is_resized_cropped_and_scaled(tmp_path: Path) -> None:
    flow = np.zeros((32, 64, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.0, 0.5
    write_flow(tmp_path / "clip" / "flow" / "000001.npy", flow)
    write_mask(tmp_path / "clip" / "flow_valid" / "000001.png", np.ones((32, 64), bool))
    meta = {
        "video_id": "clip",
        "source_width": 64,
        "source_height": 32,
        "width": 96,
        "height": 64,
        "resampled": False,
        "geometry": {"scaled_width": 128, "scaled_height": 64, "x0": 16, "y0": 0},
    }
    folder, why = truth_folder(tmp_path, meta)
    assert folder == tmp_path / "clip" and why == ""
    true_flow, valid = load_truth(folder, 1, meta)
    assert true_flow.shape == (64, 96, 2) and valid.shape == (64, 96) and valid.all()
    np.testing.assert_allclose(true_flow[..., 0], 2.0)
    np.testing.assert_allclose(true_flow[..., 1], 1.0)


def test_truth_skipped_with_a_reason() -> None:
    meta = {"video_id": "clip", "resampled": True, "source_fps": 15.0, "fps": 5.0}
    assert truth_folder(None, meta) == (None, "flow.ground_truth_dir is null")
    _, why = truth_folder(Path("/nonexistent"), meta)
    assert "no ground-truth flow" in why


def test_score_summary() -> None:
    score = FlowScore()
    flow = np.zeros((2, 2, 2), np.float32)
    truth = np.zeros((2, 2, 2), np.float32)
    truth[0, 0] = (3, 4)  # EPE 5 at one pixel
    valid = np.array([[False, True], [True, True]])
    truth_valid = np.array([[False, True], [True, False]])
    score.add(flow, truth, valid, truth_valid)
    assert score.summary() == {"epe": 1.25, "epe_valid": 0.0, "occlusion_recall": 0.5}
