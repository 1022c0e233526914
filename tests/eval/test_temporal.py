"""Temporal metrics: zero on identical and static videos, rising with flicker, exact warping error of a known shift."""

import numpy as np
import pytest

from v2v.eval.perceptual import LPIPS
from v2v.eval.temporal import TemporalMeter, warping_error


def run(meter: TemporalMeter, real: list[np.ndarray], fakes: dict[str, list[np.ndarray]]) -> dict[str, float]:
    for t, frame in enumerate(real):
        meter.add(frame, {name: frames[t] for name, frames in fakes.items()})
    return meter.means()


@pytest.fixture(scope="module")
def lpips() -> LPIPS:
    return LPIPS("none")


def test_identical_videos_have_zero_tof_and_tlp_and_the_real_warping_error(frames_factory, lpips) -> None:
    real = frames_factory(6, 64, 48)
    means = run(TemporalMeter(lpips=lpips), real, {"same": [f.copy() for f in real]})
    assert means["tof_same"] == 0.0 and means["tlp_same"] == 0.0
    assert means["warp_error_same"] == means["warp_error_real"]
    assert means["warp_error_real"] < 2e-3  # DIS on a clean 2 px/frame pan: nearly exact


def test_a_static_video_has_zero_warping_error(frames_factory) -> None:
    still = [frames_factory(1, 64, 48)[0]] * 5
    means = run(TemporalMeter(), still, {"same": still})
    assert means["warp_error_real"] == pytest.approx(0.0, abs=1e-12)
    assert means["tof_same"] == pytest.approx(0.0, abs=1e-12)


def test_flicker_raises_warping_error_tof_and_tlp(frames_factory, lpips) -> None:
    real = frames_factory(8, 64, 48)
    flicker = [
        np.clip(f.astype(np.int16) + (25 if t % 2 else -25), 0, 255).astype(np.uint8) for t, f in enumerate(real)
    ]
    means = run(TemporalMeter(lpips=lpips), real, {"steady": real, "flicker": flicker})
    assert means["warp_error_flicker"] > 10 * max(means["warp_error_steady"], 1e-6)
    assert means["tlp_flicker"] > means["tlp_steady"]


def test_warping_error_of_a_known_shift_with_the_true_flow_is_zero(frames_factory) -> None:
    a, b = frames_factory(2, 64, 48)  # b is a panned 2 px right: b(x) = a(x + 2)
    flow = np.zeros((48, 64, 2), np.float32)
    flow[..., 0] = 2.0
    valid = np.zeros((48, 64), bool)
    valid[:, :-2] = True  # the last columns sample beyond a's border
    assert warping_error(a, b, flow, valid) == pytest.approx(0.0, abs=1e-12)
    assert warping_error(a, b, np.zeros_like(flow), valid) > 1e-3
