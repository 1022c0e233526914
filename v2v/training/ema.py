"""Exponential moving average (EMA) of network weights, the copy that generation uses.

After every generator update the loop calls :func:`update_ema`: each parameter of the averaged copy
moves towards the trained one, ``ema = decay * ema + (1 - decay) * param``; buffers (batch-norm
running statistics) are copied, so the averaged network normalises like the trained one. The
averaged copy is an ordinary module: checkpoints save it as a state dict beside the trained weights,
so an interrupted run resumes it exactly.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def ema_copy(module: M) -> M:
    """A frozen copy of ``module`` to average into (same weights now, never touched by an optimiser)."""
    averaged = copy.deepcopy(module)
    averaged.requires_grad_(False)
    return averaged


@torch.no_grad()
def update_ema(averaged: nn.Module, module: nn.Module, decay: float) -> None:
    """One EMA step of ``averaged`` towards ``module`` (same architecture): parameters averaged, buffers copied."""
    if not 0 <= decay < 1:
        raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
    params = dict(module.named_parameters())
    for name, param in averaged.named_parameters():
        param.lerp_(params[name].detach().to(param.dtype), 1 - decay)
    buffers = dict(module.named_buffers())
    for name, buffer in averaged.named_buffers():
        buffer.copy_(buffers[name])
