"""Temporal-consistency metrics of a generated video against its real counterpart, one frame pair at a time.

* **Warping error** (Lai et al., ECCV 2018): ``E_t = mean over valid p of mean_c (V_t(p) - warp(V_{t-1}, f_t)(p))^2``
  with RGB in [0, 1], ``f_t`` the backward flow of the *real* video (:mod:`v2v.ops.warp`'s
  convention) and the valid pixels those that pass the forward-backward consistency check of
  that flow (occlusions and disocclusions excluded). The real video's own warping error is the
  floor a perfect synthesis would reach with this flow.
* **tOF** (TecoGAN, Chu et al. 2020): ``mean_p |OF(g_{t-1}, g_t)(p) - OF(r_{t-1}, r_t)(p)|_1``,
  the L1 difference of the generated and real videos' own flows (pixels per pixel).
* **tLP** (TecoGAN): ``|LPIPS(g_{t-1}, g_t) - LPIPS(r_{t-1}, r_t)|``: does the generated video change
  perceptually as much as the real one does between frames.

Flows are OpenCV DIS (no weights, the flow stage's default). :class:`TemporalMeter` consumes
frames in order and keeps only the previous frame, so memory does not grow with the video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from v2v.flow.confidence import forward_backward_error
from v2v.flow.dis import DisFlow, to_gray
from v2v.ops.warp import warp

# The metric's own occlusion test (Sundaram et al.'s forward-backward check, |f + w|^2 < alpha (|f|^2 + |w|^2)
# + beta), deliberately not flow.fb_*: those tune the training data's confidence, and tuning them must not
# change what the warping error of a finished model measures.
FB_ALPHA, FB_BETA = 0.01, 0.5


def to_unit(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` or ``(N, H, W, 3)`` uint8 → ``(N, 3, H, W)`` float64 in [0, 1]."""
    batch = rgb if rgb.ndim == 4 else rgb[None]
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).double().div_(255.0)


def to_signed(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` or ``(N, H, W, 3)`` uint8 → ``(N, 3, H, W)`` float32 in [-1, 1] (the LPIPS input)."""
    batch = rgb if rgb.ndim == 4 else rgb[None]
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def warping_errors(prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, valid: np.ndarray) -> list[float]:
    """Warping errors of N videos' frame pairs under one flow: ``(N, H, W, 3)`` uint8 frames, ``(H, W, 2)``
    flow, ``(H, W)`` bool mask → N errors (0 where no pixel is valid). One batched warp for all N."""
    before, after = to_unit(prev), to_unit(cur)
    flow = torch.from_numpy(np.ascontiguousarray(backward)).permute(2, 0, 1)[None].double()
    squared = (after - warp(before, flow.expand(len(before), -1, -1, -1))).square_().mean(1)
    mask = torch.from_numpy(valid)
    if not bool(mask.any()):
        return [0.0] * len(before)
    return squared[:, mask].mean(1).tolist()


def warping_error(prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, valid: np.ndarray) -> float:
    """One frame pair's warping error (uint8 frames, float flow, bool mask); 0 when no pixel is valid."""
    return warping_errors(prev[None], cur[None], backward, valid)[0]


@dataclass
class TemporalMeter:
    """Per-frame temporal metrics of one video: call :meth:`add` with each (real, generated) frame in order."""

    flow: DisFlow = field(default_factory=lambda: DisFlow("medium"))
    lpips: torch.nn.Module | None = None  # v2v.eval.perceptual.LPIPS; None: no tLP
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    _prev_real: np.ndarray | None = None
    _prev_fakes: dict[str, np.ndarray] = field(default_factory=dict)

    def real_flow(self, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward flow ``(H, W, 2)`` of the real pair and its forward-backward-consistent pixels ``(H, W)``."""
        g_prev, g_cur = to_gray(prev), to_gray(cur)
        backward = self.flow.calc_gray(g_cur, g_prev)
        forward = self.flow.calc_gray(g_prev, g_cur)
        mismatch, magnitude = forward_backward_error(backward[None], forward[None])
        return backward, mismatch[0] < FB_ALPHA * magnitude[0] + FB_BETA

    def add(self, real: np.ndarray, fakes: dict[str, np.ndarray]) -> None:
        """The next frame of the real video and of each named system (``{"vid2vid": frame, ...}``)."""
        if self._prev_real is not None:
            backward, valid = self.real_flow(self._prev_real, real)
            before = np.stack([self._prev_real, *(self._prev_fakes[n] for n in fakes)])  # real first
            after = np.stack([real, *fakes.values()])
            for name, error in zip(["real", *fakes], warping_errors(before, after, backward, valid), strict=True):
                self._record(f"warp_error_{name}", error)
            for name, fake in fakes.items():
                fake_flow = self.flow.calc_gray(to_gray(fake), to_gray(self._prev_fakes[name]))
                self._record(f"tof_{name}", float(np.abs(fake_flow - backward).sum(-1).mean()))
            if self.lpips is not None:
                real_lp, *fake_lps = self.lpips(to_signed(before), to_signed(after)).tolist()
                for name, fake_lp in zip(fakes, fake_lps, strict=True):
                    self._record(f"tlp_{name}", abs(fake_lp - real_lp))
            self._record("valid_fraction", float(valid.mean()))
        self._prev_real = real
        self._prev_fakes = dict(fakes)

    def _record(self, key: str, value: float) -> None:
        self.per_frame.setdefault(key, []).append(value)

    def means(self) -> dict[str, float]:
        return {key: float(np.mean(values)) for key, values in self.per_frame.items() if values}
