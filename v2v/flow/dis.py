"""OpenCV DIS optical flow (Kroeger et al. 2016): CPU, no weights, the offline default backend."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from v2v.flow.common import check_pair_batch

DisPreset = Literal["ultrafast", "fast", "medium"]

PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_gray(rgb: np.ndarray) -> npt.NDArray[np.uint8]:
    """``(H, W, 3) uint8`` RGB → ``(H, W) uint8`` luma, the input DIS works on."""
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


class DisFlow:
    """Dense Inverse Search flow on grey frames, one pair at a time (OpenCV threads inside a pair).

    ``cv2.DISOpticalFlow.calc(I0, I1)`` returns, for every pixel of ``I0``, its displacement to
    ``I1`` (``I0(p) ≈ I1(p + flow(p))``), so ``calc(frame_t, frame_{t-1})`` is backward flow;
    ``tests/flow/test_dis.py`` checks the direction against exact synthetic flow.
    """

    name = "dis"
    weights = "none needed (DIS is not learned)"

    def __init__(self, preset: DisPreset = "medium") -> None:
        if preset not in PRESETS:
            raise ValueError(f"flow.dis_preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
        self.preset = preset
        self.settings: dict[str, object] = {"preset": preset}
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])  # type: ignore[attr-defined]

    def calc_gray(self, source: np.ndarray, target: np.ndarray) -> npt.NDArray[np.float32]:
        """Flow from one grey frame to another: ``(H, W) uint8`` each → ``(H, W, 2) float32``."""
        flow = self._dis.calc(source, target, None)
        return np.asarray(flow, dtype=np.float32)

    def __call__(self, sources: np.ndarray, targets: np.ndarray) -> npt.NDArray[np.float32]:
        n, h, w = check_pair_batch(sources, targets)
        out = np.empty((n, h, w, 2), np.float32)
        for i in range(n):
            out[i] = self.calc_gray(to_gray(sources[i]), to_gray(targets[i]))
        return out
