"""Which pixels of a backward flow to trust: the confidence (non-occlusion) mask.

A pixel ``p`` of frame t is **valid** when all enabled checks pass:

* **frame** (``flow.out_of_frame``): ``p + flow_t(p)`` lies inside frame t-1 — otherwise the
  surface was outside the previous frame and nothing there can be compared;
* **photometric** (``flow.photometric_threshold``, the reference vid2vid's test): the squared error
  ``sum_c (warp(frame_{t-1}, flow_t)(p) - frame_t(p))^2`` over RGB in [-1, 1] units is below the
  threshold (the reference uses 0.02 on FlowNet2 flow);
* **forward-backward** (``flow.forward_backward``, Sundaram et al. 2010): with the forward flow
  ``f_fwd`` of frame t-1 (its pixels' displacement to frame t) sampled where ``p`` came from,
  ``w = warp(f_fwd, f_bwd)(p)``, the round trip must close:
  ``|f_bwd(p) + w|^2 < fb_alpha * (|f_bwd(p)|^2 + |w|^2) + fb_beta``. It needs a second flow per
  pair (twice the cost).

Pixels that moving objects uncover at t have no match in t-1: their flow is filled in from the
neighbourhood, the warped colour comes from the wrong surface (photometric check) and the round
trip does not close (forward-backward check). Every warp here is :func:`v2v.ops.warp.warp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from v2v.ops.warp import warp


@dataclass(frozen=True)
class ConfidenceSettings:
    """Thresholds of the checks (see the module docstring); ``None`` / ``False`` disables a check."""

    photometric_threshold: float | None = 0.02  # squared RGB error in [-1, 1] units, summed over channels
    forward_backward: bool = False  # needs the forward flow too
    fb_alpha: float = 0.01  # relative tolerance of the round trip (times the squared flow magnitudes)
    fb_beta: float = 0.25  # absolute tolerance of the round trip in px^2 (0.25 = 0.5 px)
    out_of_frame: bool = True  # flows pointing outside frame t-1 are invalid


def _pixels(rgb: np.ndarray) -> torch.Tensor:
    # (N, H, W, 3) uint8 → contiguous (N, 3, H, W) float32 in 0..255: transposed while still 1 byte per
    # value, and contiguous because grid_sample gathers from planar channels ~2x faster than interleaved
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).contiguous().float()


def _flows(flow: np.ndarray) -> torch.Tensor:
    # (N, H, W, 2) → (N, 2, H, W) float32
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(0, 3, 1, 2)


def _check_batch(prev_rgb: np.ndarray, cur_rgb: np.ndarray, backward: np.ndarray) -> None:
    n, h, w = backward.shape[:3]
    if backward.shape != (n, h, w, 2):
        raise ValueError(f"confidence: flow must be (N, H, W, 2), got {backward.shape}")
    for name, rgb in (("prev_rgb", prev_rgb), ("cur_rgb", cur_rgb)):
        if rgb.shape != (n, h, w, 3):
            raise ValueError(f"confidence: {name} must be {(n, h, w, 3)} to match the flow, got {rgb.shape}")


def photometric_error(prev_rgb: np.ndarray, cur_rgb: np.ndarray, backward: np.ndarray) -> npt.NDArray[np.float32]:
    """``(N, H, W)``: squared error of ``warp(prev, backward)`` against ``cur``, summed over RGB in [-1, 1] units."""
    _check_batch(prev_rgb, cur_rgb, backward)
    with torch.inference_mode():  # in 0..255 units, rescaled once at the end (the warp is linear in values)
        difference = warp(_pixels(prev_rgb), _flows(backward)).sub_(_pixels(cur_rgb))
        return difference.square_().sum(1).mul_(1 / 127.5**2).numpy()


def forward_backward_error(
    backward: np.ndarray, forward: np.ndarray
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``(|f_bwd + w|^2, |f_bwd|^2 + |w|^2)``, each ``(N, H, W)``, with ``w = warp(forward, backward)``."""
    if forward.shape != backward.shape:
        raise ValueError(f"confidence: forward flow {forward.shape} and backward flow {backward.shape} differ")
    with torch.inference_mode():
        f_bwd = _flows(backward)
        f_fwd_at_source = warp(_flows(forward), f_bwd)
        mismatch = ((f_bwd + f_fwd_at_source) ** 2).sum(1)
        magnitude = (f_bwd**2).sum(1) + (f_fwd_at_source**2).sum(1)
        return mismatch.numpy(), magnitude.numpy()


def inside_previous_frame(backward: np.ndarray) -> npt.NDArray[np.bool_]:
    """``(N, H, W)``: True where ``p + flow(p)`` lies inside the frame."""
    _, h, w, _ = backward.shape
    xs = np.arange(w, dtype=np.float32)[None, None, :] + backward[..., 0]
    ys = np.arange(h, dtype=np.float32)[None, :, None] + backward[..., 1]
    return np.asarray((xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1))


def confidence_mask(
    prev_rgb: np.ndarray,
    cur_rgb: np.ndarray,
    backward: np.ndarray,
    forward: np.ndarray | None,
    settings: ConfidenceSettings,
) -> npt.NDArray[np.bool_]:
    """``(N, H, W) bool``: True where the backward flow of ``cur`` (frame t) onto ``prev`` (t-1) is trusted.

    Args:
        prev_rgb: ``(N, H, W, 3) uint8`` frames t-1.
        cur_rgb: ``(N, H, W, 3) uint8`` frames t.
        backward: ``(N, H, W, 2)`` backward flow of frame t (``warp(prev, backward) ≈ cur``).
        forward: ``(N, H, W, 2)`` forward flow of frame t-1, required when ``settings.forward_backward``.
        settings: which checks to run, and their thresholds.
    """
    _check_batch(prev_rgb, cur_rgb, backward)
    valid = np.ones(backward.shape[:3], dtype=bool)
    if settings.out_of_frame:
        valid &= inside_previous_frame(backward)
    if settings.photometric_threshold is not None:
        valid &= photometric_error(prev_rgb, cur_rgb, backward) < settings.photometric_threshold
    if settings.forward_backward:
        if forward is None:
            raise ValueError("confidence: the forward-backward check needs the forward flow")
        mismatch, magnitude = forward_backward_error(backward, forward)
        valid &= mismatch < settings.fb_alpha * magnitude + settings.fb_beta
    return valid
