"""The interface every flow backend implements, and the factory that builds one from params."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from v2v.config import FlowConfig
from v2v.flow.dis import DisFlow
from v2v.flow.raft import RaftFlow
from v2v.ops.device import resolve_device


class FlowEstimator(Protocol):
    """A dense optical flow method.

    ``estimator(sources, targets)`` takes two ``(N, H, W, 3) uint8`` RGB batches and returns
    ``(N, H, W, 2) float32``: for every pixel ``p`` of ``sources[n]``, the displacement ``(dx, dy)``
    in pixels to where the same surface point is in ``targets[n]``, i.e.
    ``sources[n](p) ≈ targets[n](p + flow(p))``. The backward flow of frame t (the project's
    convention, see :mod:`v2v.ops.warp`) is therefore ``estimator(frame_t, frame_{t-1})``.
    """

    name: str  # backend name, e.g. "dis" or "raft"
    weights: str  # which weights were used, in words ("none needed" for DIS); recorded by the stage
    settings: dict[str, object]  # the backend's own settings, recorded in each video's meta.json

    def __call__(self, sources: np.ndarray, targets: np.ndarray) -> npt.NDArray[np.float32]: ...


def make_estimator(cfg: FlowConfig) -> FlowEstimator:
    """Build the backend named by ``flow.backend`` (RAFT loads its weights here, failing loudly)."""
    if cfg.backend == "dis":
        return DisFlow(preset=cfg.dis_preset)
    return RaftFlow(
        model=cfg.raft_model,
        weights=cfg.raft_weights,
        iterations=cfg.raft_iterations,
        device=resolve_device(cfg.device, "flow.device"),
    )


def make_estimators(cfg: FlowConfig) -> list[FlowEstimator]:
    """One estimator per worker thread: ``flow.workers`` independent DIS instances, or a single RAFT."""
    if cfg.backend == "dis":
        return [make_estimator(cfg) for _ in range(cfg.workers)]
    return [make_estimator(cfg)]
