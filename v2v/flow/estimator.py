"""The interface every flow backend implements (the flow stage builds the configured one: :mod:`v2v.stages.flow`)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt


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
