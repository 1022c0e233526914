"""The confidence mask: true flow reconstructs frame t; uncovered and out-of-frame pixels are flagged."""

import numpy as np

from v2v.data.synthetic import generate_clip
from v2v.flow.confidence import (
    ConfidenceSettings,
    confidence_mask,
    forward_backward_error,
    inside_previous_frame,
    photometric_error,
)
from v2v.flow.dis import DisFlow

DEFAULTS = ConfidenceSettings()


def test_true_flow_reconstructs_frame_t_on_valid_pixels() -> None:
    frames = list(generate_clip("street", width=256, height=128, num_frames=6, seed=2))
    prev = np.stack([f.rgb for f in frames[:-1]])
    cur = np.stack([f.rgb for f in frames[1:]])
    flow = np.stack([f.flow for f in frames[1:]])
    truth_valid = np.stack([f.flow_valid for f in frames[1:]])
    error = photometric_error(prev, cur, flow)
    assert error.shape == truth_valid.shape
    # squared RGB error in [-1, 1] units: 0.001 is about 4/255 per channel
    assert error[truth_valid].mean() < 0.001
    assert (error[truth_valid] < DEFAULTS.photometric_threshold).mean() > 0.99
    assert error[~truth_valid].mean() > 10 * error[truth_valid].mean()


def test_mask_flags_pixels_that_moving_objects_uncover() -> None:
    frames = list(generate_clip("street", width=256, height=128, num_frames=12, seed=5))
    prev = np.stack([f.rgb for f in frames[:-1]])
    cur = np.stack([f.rgb for f in frames[1:]])
    truth_valid = np.stack([f.flow_valid for f in frames[1:]])
    dis = DisFlow("medium")
    backward, forward = dis(cur, prev), dis(prev, cur)
    for settings in (DEFAULTS, ConfidenceSettings(forward_backward=True)):
        valid = confidence_mask(prev, cur, backward, forward, settings)
        hidden = ~truth_valid
        recall = (~valid)[hidden].mean()  # hidden pixels the mask rejects
        chance = (~valid).mean()  # share of all pixels it rejects
        assert recall > 0.5 and recall > 15 * chance, (recall, chance)
        assert valid[truth_valid].mean() > 0.97  # visible pixels are kept


def test_forward_backward_round_trip() -> None:
    backward = np.zeros((1, 16, 24, 2), np.float32)
    backward[..., 0] = 2.0  # every pixel came from 2 px to the right
    forward = -backward  # ... and goes 2 px to the left: consistent
    mismatch, magnitude = forward_backward_error(backward, forward)
    assert np.allclose(mismatch, 0) and np.allclose(magnitude, 8)
    mismatch, _ = forward_backward_error(backward, backward)  # inconsistent: round trip is 4 px off
    assert np.allclose(mismatch, 16)
    rgb = np.zeros((1, 16, 24, 3), np.uint8)
    settings = ConfidenceSettings(photometric_threshold=None, forward_backward=True, out_of_frame=False)
    assert confidence_mask(rgb, rgb, backward, forward, settings).all()
    assert not confidence_mask(rgb, rgb, backward, backward, settings).any()


def test_flow_pointing_outside_the_previous_frame_is_invalid() -> None:
    backward = np.zeros((1, 8, 10, 2), np.float32)
    backward[..., 0] = -3.0  # came from 3 px to the left: the first 3 columns came from outside
    inside = inside_previous_frame(backward)
    assert not inside[0, :, :3].any() and inside[0, :, 3:].all()
    rgb = np.zeros((1, 8, 10, 3), np.uint8)
    settings = ConfidenceSettings(photometric_threshold=None)
    assert (confidence_mask(rgb, rgb, backward, None, settings) == inside).all()
