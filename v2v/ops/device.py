"""Where computation runs: ``device: auto | cpu | cuda`` resolved once, at a stage's entry."""

from __future__ import annotations

import torch


class DeviceError(RuntimeError):
    """A device that is not available here; the message names the params key."""


def resolve_device(requested: str, key: str = "device") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error naming ``key``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"{key}: {requested!r} was requested but no CUDA GPU is available; set it to auto or cpu")
    return torch.device(requested)
