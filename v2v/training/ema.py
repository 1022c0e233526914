"""Exponential moving average (EMA) of network weights, the copy that generation uses.

After every generator update the loop calls :func:`update_ema`: each parameter of the averaged copy
moves towards the trained one, ``ema = decay * ema + (1 - decay) * param``; buffers (batch-norm
running statistics) are copied, so the averaged network normalises like the trained one. The
averaged copy is an ordinary module: checkpoints save it as a state dict beside the trained weights,
so an interrupted run resumes it exactly. At the end of a scale, :func:`recalibrate_batch_norm`
re-estimates the averaged copy's batch-norm statistics for the model file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
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


@torch.no_grad()
def recalibrate_batch_norm(
    modules: Sequence[nn.Module],  # the averaged networks
    forward: Callable[[dict[str, torch.Tensor]], object],  # runs them on one batch
    batches: Iterable[dict[str, torch.Tensor]],  # training batches
) -> int:
    """Re-estimate the batch-norm statistics of averaged networks on ``batches``; returns how many were used.

    The copied running statistics belong to the trained weights, not to their average; evaluated
    with them the averaged network normalises wrongly (on the CPU demo its reconstruction error was
    ~10 % worse than the trained network's, and on a par once re-estimated). Statistics become the
    plain mean over the batches (``momentum=None``); networks without batch norm are left alone.
    """
    norms = [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    modes = [module.training for module in modules]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    for module in modules:
        module.train()
    used = 0
    for batch in batches:
        forward(batch)
        used += 1
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    for module, mode in zip(modules, modes, strict=True):
        module.train(mode)
    return used
