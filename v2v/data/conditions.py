"""Generator/discriminator condition maps: one-hot semantic labels plus the instance-boundary channel (street),
and the per-part distance maps of the face sketch (face). The data side builds them; the networks only read them."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from v2v.data.tasks import FACE_PART_EDGES


def instance_boundaries(instance: torch.Tensor) -> torch.Tensor:
    """``(..., H, W)`` integer instance ids → float map, 1 on both sides of every change of id
    between horizontal or vertical neighbours, else 0 (the reference's use of instance maps)."""
    edge = torch.zeros(instance.shape, dtype=torch.bool, device=instance.device)
    dx = instance[..., :, 1:] != instance[..., :, :-1]
    dy = instance[..., 1:, :] != instance[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def condition_maps(
    label: torch.Tensor,  # (B, T, H, W) integer label ids in [0, num_classes)
    instance: torch.Tensor | None,  # (B, T, H, W) integer instance ids, or None (no boundary channel)
    num_classes: int,  # one-hot channels (Cityscapes: 35)
) -> torch.Tensor:
    """``(B, T, num_classes [+ 1], H, W)``: one-hot labels, then the instance-boundary channel."""
    b, t, h, w = label.shape
    if int(label.min()) < 0 or int(label.max()) >= num_classes:
        raise ValueError(f"label ids must lie in [0, {num_classes}), got [{int(label.min())}, {int(label.max())}]")
    maps = F.one_hot(label.long(), num_classes).permute(0, 1, 4, 2, 3).float()
    if instance is None:
        return maps
    if tuple(instance.shape) != (b, t, h, w):
        raise ValueError(f"instance: expected shape {(b, t, h, w)} like the labels, got {tuple(instance.shape)}")
    return torch.cat([maps, instance_boundaries(instance).unsqueeze(2)], dim=2)


def distance_maps(parts: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``(H, W)`` part labels → ``(14, H, W)`` float32 in [0, 1]: per curve, the L1 distance (3x3 mask) to its
    pixels / 3, clipped at 255, / 255 (the reference's scaling); a curve with no pixels is all ones."""
    assert parts.ndim == 2, parts.shape
    out = np.ones((FACE_PART_EDGES, *parts.shape), np.float32)
    for k in range(FACE_PART_EDGES):
        outside = np.asarray(parts != k + 1, np.uint8)
        if outside.all():
            continue
        distance = cv2.distanceTransform(outside, cv2.DIST_L1, 3)
        np.multiply(np.minimum(distance, 3.0 * 255.0), 1.0 / (3.0 * 255.0), out=out[k])
    return out
