"""Distributed data parallel set-up for ``torchrun``: one entry point for 1 process or many.

``torchrun --nproc_per_node N -m v2v.stages.train_scale0`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
:func:`init` then joins the process group (``gloo`` on CPU, ``nccl`` on CUDA). Without those
variables everything runs as a single process and the helpers are no-ops. Only rank 0 logs and
writes files (:func:`is_main`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from v2v.config import TrainConfig
from v2v.ops.device import resolve_device

LOCK_HELD_ENV = "V2V_STAGE_LOCK_HELD"  # set by a stage that relaunched itself: its ranks do not take its lock


@dataclass(frozen=True)
class DistInfo:
    rank: int  # global rank of this process
    world_size: int  # number of processes
    local_rank: int  # rank on this machine (selects the GPU)
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(requested_device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, "train.device")
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over all processes (a no-op for one process).

    What DDP does for a wrapped module, for modules that take several forward calls per backward
    (the discriminators judge real and fake frames separately); one flat all-reduce per call.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def launch_command(tc: TrainConfig, stage: str, stage_args: list[str]) -> list[str] | None:
    """The ``torch.distributed.run`` command that runs ``python -m v2v.stages.<stage> <stage_args>`` as
    ``train.nproc_per_node`` processes on each of ``train.nnodes`` machines; None when one process trains or this
    process is already a rank of a launcher (``torchrun`` by hand, or the relaunched stage itself)."""
    if tc.nproc_per_node * tc.nnodes == 1 or "LOCAL_RANK" in os.environ:
        return None
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(tc.nproc_per_node)]
    if tc.nnodes == 1:
        command.append("--standalone")  # a free local port, no rendezvous server to name
    else:
        command += ["--nnodes", str(tc.nnodes), "--rdzv_backend", "c10d", "--rdzv_endpoint", str(tc.rdzv_endpoint)]
        command += ["--rdzv_id", f"v2v-{stage}"]
    return [*command, "-m", f"v2v.stages.{stage}", *stage_args]


def takes_stage_lock(stage: str) -> bool:
    """Whether this process holds the stage's lock: a plain run does; under a launcher only global rank 0, and no
    rank of a stage that relaunched itself (its launching process holds the lock)."""
    return os.environ.get(LOCK_HELD_ENV) != stage and int(os.environ.get("RANK", "0")) == 0
