"""Where computation runs: ``device: auto | cpu | cuda`` resolved once, at a stage's entry."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    import torch

# torch is imported where it is used, not here: the map stages import this module, and a stage with nothing to do
# (maps its task does not read) must finish before torch's ~2 s import (tests/stages/test_startup.py)

P = ParamSpec("P")
R = TypeVar("R")


class DeviceError(RuntimeError):
    """A device that is not available here; the message names the params key."""


def resolve_device(requested: str, key: str = "device") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error naming ``key``."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"{key}: {requested!r} was requested but no CUDA GPU is available; set it to auto or cpu")
    return torch.device(requested)


def amp_dtype(device: torch.device) -> torch.dtype:
    """The mixed-precision dtype of ``amp`` params: float16 on CUDA (with a GradScaler when training),
    bfloat16 on CPU (no scaler needed; about 2.5x faster convolutions where the CPU has AVX-512 BF16 or
    AMX, see ``benchmarks/model.py``)."""
    import torch

    return torch.float16 if device.type == "cuda" else torch.bfloat16


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """``torch.autocast`` in the project's mixed-precision dtype for ``device`` (a no-op when not enabled)."""
    import torch

    return torch.autocast(device.type, dtype=amp_dtype(device), enabled=enabled)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Torch's deterministic algorithms while ``enabled`` (the previous setting is restored afterwards).

    On CPU, two runs of the demo's scale-1 training with 2 threads parted after 17-46 of 48 steps by
    float rounding, which GAN training then amplifies; with this they give equal losses at every step,
    at no measured cost. On CUDA, cuBLAS needs a fixed workspace (set here unless the user set one)
    and ops without a deterministic version only warn (``warn_only``) rather than stop training.
    """
    if not enabled:
        yield
        return
    import torch

    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def inference_mode(method: Callable[P, R]) -> Callable[P, R]:
    """``torch.inference_mode()`` as a decorator that imports torch on the first call, not at the definition."""

    @functools.wraps(method)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        import torch

        with torch.inference_mode():
            return method(*args, **kwargs)

    return wrapped
