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

FB_ALPHA, FB_BETA = 0.01, 0.5  # forward-backward check (Sundaram et al.): |f + w|^2 < alpha (|f|^2 + |w|^2) + beta


def to_unit(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3) uint8`` → ``(1, 3, H, W)`` float64 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].double() / 255.0


def to_signed(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3) uint8`` → ``(1, 3, H, W)`` float32 in [-1, 1] (the LPIPS input)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


@dataclass
class RealPair:
    """What the real video contributes to frame pair (t-1, t): its flows and validity."""

    backward: np.ndarray  # (H, W, 2) backward flow of real frame t onto t-1
    valid: np.ndarray  # (H, W) bool: forward-backward consistent
    lpips: float | None  # LPIPS(real_{t-1}, real_t)


def warping_error(prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, valid: np.ndarray) -> float:
    """One frame pair's warping error (uint8 frames, float flow, bool mask); 0 when no pixel is valid."""
    warped = warp(to_unit(prev), torch.from_numpy(np.ascontiguousarray(backward)).permute(2, 0, 1)[None].double())
    squared = (to_unit(cur) - warped).square().mean(1)[0].numpy()
    return float(squared[valid].mean()) if valid.any() else 0.0


@dataclass
class TemporalMeter:
    """Per-frame temporal metrics of one video: call :meth:`add` with each (real, generated) frame in order."""

    flow: DisFlow = field(default_factory=lambda: DisFlow("medium"))
    lpips: torch.nn.Module | None = None  # v2v.eval.perceptual.LPIPS; None: no tLP
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    _prev_real: np.ndarray | None = None
    _prev_fakes: dict[str, np.ndarray] = field(default_factory=dict)
    _real_pair: RealPair | None = None
    _real_index: int = -1

    def real_pair(self, index: int, prev: np.ndarray, cur: np.ndarray) -> RealPair:
        """Flows of the real pair ending at frame ``index`` (computed once, shared by every system)."""
        if self._real_pair is None or self._real_index != index:
            g_prev, g_cur = to_gray(prev), to_gray(cur)
            backward = self.flow.calc_gray(g_cur, g_prev)
            forward = self.flow.calc_gray(g_prev, g_cur)
            mismatch, magnitude = forward_backward_error(backward[None], forward[None])
            valid = mismatch[0] < FB_ALPHA * magnitude[0] + FB_BETA
            score = float(self.lpips(to_signed(prev), to_signed(cur))[0]) if self.lpips is not None else None
            self._real_pair, self._real_index = RealPair(backward, valid, score), index
        return self._real_pair

    def add(self, index: int, real: np.ndarray, fakes: dict[str, np.ndarray]) -> None:
        """Frame ``index`` of the real video and of each named system (``{"vid2vid": frame, ...}``)."""
        if self._prev_real is not None:
            pair = self.real_pair(index, self._prev_real, real)
            self._record("warp_error_real", warping_error(self._prev_real, real, pair.backward, pair.valid))
            for name, fake in fakes.items():
                prev = self._prev_fakes[name]
                self._record(f"warp_error_{name}", warping_error(prev, fake, pair.backward, pair.valid))
                fake_flow = self.flow.calc_gray(to_gray(fake), to_gray(prev))
                self._record(f"tof_{name}", float(np.abs(fake_flow - pair.backward).sum(-1).mean()))
                if self.lpips is not None and pair.lpips is not None:
                    fake_lp = float(self.lpips(to_signed(prev), to_signed(fake))[0])
                    self._record(f"tlp_{name}", abs(fake_lp - pair.lpips))
            self._record("valid_fraction", float(pair.valid.mean()))
        self._prev_real = real
        self._prev_fakes = dict(fakes)

    def _record(self, key: str, value: float) -> None:
        self.per_frame.setdefault(key, []).append(value)

    def means(self) -> dict[str, float]:
        return {key: float(np.mean(values)) for key, values in self.per_frame.items() if values}
