"""The one warp of the project, and the flow convention everything follows.

**Flow convention (backward flow).** ``flow_t`` is stored with frame t and has, for every pixel
``p = (x, y)`` of frame t, the displacement ``(dx, dy)`` in pixels to where that surface point was in
frame t-1. Hence ``frame_t(p) ≈ frame_{t-1}(p + flow_t(p))`` and::

    warp(frame_{t-1}, flow_t) ≈ frame_t

This is the direction the vid2vid generator uses (it warps its previous output onto the current
frame), the direction the flow stage writes, and the direction of the synthetic ground truth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def base_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Pixel coordinates ``(1, 2, H, W)``: channel 0 is x (column), channel 1 is y (row)."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y)).unsqueeze(0)


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``image`` at ``p + flow(p)``: ``out[n, :, y, x] = image[n, :, y + dy, x + dx]``.

    Args:
        image: ``(N, C, H, W)`` (any float dtype).
        flow: ``(N, 2, H, W)`` backward flow in pixels, channel 0 = dx, channel 1 = dy.
        mode: ``"bilinear"`` or ``"nearest"``.

    Pixels that sample outside the image take the nearest border value (``padding_mode="border"``);
    coordinates are pixel centres (``align_corners=True``), so a zero flow is an identity and an
    integer flow a shift, up to the rounding of the normalised grid (exact in float64).
    """
    if image.ndim != 4 or flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"warp expects image (N, C, H, W) and flow (N, 2, H, W), got {tuple(image.shape)} and {tuple(flow.shape)}"
        )
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"warp: image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    h, w = image.shape[-2:]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=image.device, dtype=image.dtype)
    # normalised sampling grid (N, H, W, 2) in [-1, 1]: (base + flow) * scale - 1, in one fused pass
    base = (base_grid(h, w, image.device, image.dtype) * scale.view(1, 2, 1, 1) - 1.0).permute(0, 2, 3, 1)
    grid = torch.addcmul(base, flow.to(image.dtype).permute(0, 2, 3, 1), scale)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)
