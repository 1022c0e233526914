"""Tensors as pictures: generated frames and generator conditions as RGB uint8 arrays."""

from __future__ import annotations

import numpy as np
import torch

from v2v.data.labels import colorize
from v2v.data.tasks import get_task


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [-1, 1] → ``(H, W, 3)`` uint8."""
    return ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def condition_to_rgb(label: torch.Tensor, task: str) -> np.ndarray:
    """One frame's generator condition ``(C, H, W)`` as a picture."""
    picture = get_task(task).picture
    if picture == "labels":
        return colorize(label[:-1].argmax(0).byte().cpu().numpy())
    if picture == "grey":
        return np.repeat((label[0].clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    return to_rgb(label)
