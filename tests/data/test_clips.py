"""Clip augmentation: rotation and zoom turn the flow's vectors with the pixels (``v2v.data.clips.turned``)."""

from __future__ import annotations

import torch

from v2v.data.clips import turned
from v2v.ops.warp import warp


def _clip(frames: torch.Tensor, flow: torch.Tensor) -> dict[str, torch.Tensor]:
    t, _, h, w = frames.shape
    return {
        "image": frames,
        "label": (frames[:, :1] > 0).float(),
        "instance": torch.zeros(t, h, w, dtype=torch.int64),
        "flow": flow,
        "flow_valid": torch.ones(t, 1, h, w),
    }


def test_no_turn_is_the_identity() -> None:
    frames = torch.rand(2, 3, 24, 40) * 2 - 1
    clip = _clip(frames, torch.randn(2, 2, 24, 40))
    out = turned(clip, 0.0, 1.0)
    for key in clip:
        torch.testing.assert_close(out[key], clip[key], atol=1e-5, rtol=0)


def test_positive_degrees_turn_counter_clockwise_on_screen() -> None:
    image = -torch.ones(1, 3, 41, 41)
    image[0, :, 20, 34:37] = 1.0  # a bar right of the centre
    out = turned(_clip(image, torch.zeros(1, 2, 41, 41)), 90.0, 1.0)["image"][0, 0]
    ys, xs = torch.nonzero(out > 0, as_tuple=True)
    assert ys.float().mean() < 10 and abs(xs.float().mean() - 20) < 1.5  # now above it


def test_turned_flow_still_warps_the_turned_frames() -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=gen), size=(48, 64), mode="bicubic")
    flow = torch.zeros(1, 2, 48, 64)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # frame 1 at p shows frame 0 at p + (2, -1)
    frame1 = warp(base, flow)
    clip = _clip(torch.cat([base, frame1]), torch.cat([torch.zeros_like(flow), flow]))
    out = turned(clip, 25.0, 1.15)
    inner = (slice(None), slice(None), slice(12, 36), slice(16, 48))  # away from the repeated border
    good = (warp(out["image"][:1], out["flow"][1:]) - out["image"][1:])[inner].abs().mean()
    naive = (warp(out["image"][:1], flow) - out["image"][1:])[inner].abs().mean()  # vectors moved, not turned
    assert good < 0.02
    assert good < 0.5 * naive
    assert out["flow_valid"][1].min() == 0 and out["flow_valid"][1].max() == 1  # corners came from outside
