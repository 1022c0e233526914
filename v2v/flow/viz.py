"""Flow pictures: the usual colour wheel (hue = direction, saturation = speed, white = still)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> npt.NDArray[np.uint8]:
    """``(H, W, 2)`` flow → ``(H, W, 3) uint8`` RGB.

    Hue is the direction of ``(dx, dy)`` (0° = right = red, going through yellow (down, since y
    grows downwards) and round), saturation is ``|flow| / max_magnitude`` (clipped at 1), value is 1,
    so zero flow is white. ``max_magnitude`` defaults to the largest magnitude in ``flow``; pass a
    fixed value to compare pictures.
    """
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow_to_rgb expects (H, W, 2), got {flow.shape}")
    dx, dy = flow[..., 0], flow[..., 1]
    magnitude = np.sqrt(dx * dx + dy * dy)
    scale = float(magnitude.max()) if max_magnitude is None else float(max_magnitude)
    angle = np.degrees(np.arctan2(dy, dx)) % 360.0
    hsv = np.empty((*flow.shape[:2], 3), np.float32)
    hsv[..., 0] = angle  # OpenCV float HSV: hue in degrees [0, 360)
    hsv[..., 1] = np.clip(magnitude / scale, 0.0, 1.0) if scale > 0 else 0.0
    hsv[..., 2] = 1.0
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def colour_wheel(size: int = 64) -> npt.NDArray[np.uint8]:
    """A ``(size, size, 3)`` legend: the colour of each direction and speed (edge = ``max_magnitude``)."""
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack(((xs - c) / c, (ys - c) / c), axis=-1)
    rgb = flow_to_rgb(flow, max_magnitude=1.0)
    rgb[np.hypot(flow[..., 0], flow[..., 1]) > 1.0] = 255
    return rgb


def mask_to_rgb(mask: np.ndarray) -> npt.NDArray[np.uint8]:
    """``(H, W) bool`` → RGB: trusted pixels white, untrusted red."""
    rgb = np.full((*mask.shape, 3), 255, np.uint8)
    rgb[~mask] = (220, 30, 30)
    return rgb
