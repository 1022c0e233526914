"""Checks shared by the flow backends."""

from __future__ import annotations

import numpy as np


def check_pair_batch(sources: np.ndarray, targets: np.ndarray) -> tuple[int, int, int]:
    """Validate two RGB batches of equal shape; returns ``(N, H, W)``."""
    if sources.ndim != 4 or sources.shape[-1] != 3 or sources.dtype != np.uint8:
        raise ValueError(f"flow: expected (N, H, W, 3) uint8 RGB frames, got {sources.shape} {sources.dtype}")
    if targets.shape != sources.shape or targets.dtype != np.uint8:
        raise ValueError(f"flow: source and target frames differ: {sources.shape} vs {targets.shape} {targets.dtype}")
    n, h, w, _ = sources.shape
    return n, h, w
