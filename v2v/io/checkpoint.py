"""The checkpoint format (model files and resumable steps alike): state dicts + config + optimiser/scaler states + RNG states + step, written atomically.

A checkpoint is one ``.pt`` file holding only tensors and plain Python data, so it loads with
``torch.load(weights_only=True)`` (no pickled modules, no code execution on load). Its ``config``
is the JSON-able configuration of the networks that wrote it; loading into networks built from a
different configuration is an error that lists the differing keys, never a silent partial load.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from v2v.io.atomic import write_bytes, write_json

FORMAT = "v2v-checkpoint-1"
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def rng_state() -> dict[str, Any]:
    """The generators training draws from: torch's (and CUDA's). Python's and NumPy's global generators are left
    out: training draws only from its own seeded instances, while other threads of the process (a Prefect or
    MLflow client, a Dask worker) may draw from the globals at any time, which would make identical runs write
    different bytes."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore :func:`rng_state` (older checkpoints' Python and NumPy states are ignored)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path,
    *,
    config: Mapping[str, Any],  # JSON-able description of the networks (and anything a resume must match)
    modules: Mapping[str, torch.nn.Module],  # e.g. {"generator": G, "image_discriminator": D_I}
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,  # anything with state_dict()
    scaler: torch.amp.GradScaler | None = None,
    step: int = 0,
    epoch: int = 0,
    extra: Mapping[str, Any] | None = None,  # plain data: losses, schedule position, ...
) -> Path:
    """Write a checkpoint atomically (plus ``config.json`` beside it for people); returns its path."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "config": json.loads(json.dumps(config)),
        "step": int(step),
        "epoch": int(epoch),
        "modules": {name: _unwrap(module).state_dict() for name, module in modules.items()},
        "optimizers": {name: opt.state_dict() for name, opt in (optimizers or {}).items()},
        "schedulers": {name: s.state_dict() for name, s in (schedulers or {}).items()},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "extra": dict(extra or {}),
    }
    write_torch(path, payload)
    write_json(path.parent / "config.json", payload["config"])
    return path


def write_torch(path: str | Path, payload: Any) -> None:
    """``torch.save`` atomically and reproducibly: same payload, same bytes."""
    buffer = io.BytesIO()  # not torch.save(tmp): the archive would be named after the random temporary file
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint's payload (``weights_only=True``), or raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train the earlier stage first or fix the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise CheckpointError(
            f"{path}: cannot read this checkpoint ({type(exc).__name__}: {str(exc)[:200]}); the file is damaged "
            "or not a v2v checkpoint: delete it to start over (a stage's output model.pt: `dvc checkout` restores it)"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a v2v checkpoint (expected format {FORMAT!r})")
    return payload


def config_differences(expected: Mapping[str, Any], found: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config mappings."""
    diffs = []
    for key in sorted(set(expected) | set(found)):
        a, b = expected.get(key, "<missing>"), found.get(key, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs.extend(config_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            diffs.append(f"{prefix}{key}: checkpoint has {b!r}, this run has {a!r}")
    return diffs


def load_checkpoint(
    path: str | Path,
    *,
    modules: Mapping[str, torch.nn.Module],
    config: Mapping[str, Any] | None = None,  # when given, must equal the checkpoint's config
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore modules (strictly) and, when given, optimisers/schedulers/scaler/RNG; returns the payload."""
    path = Path(path)
    payload = read_checkpoint(path)
    if config is not None:
        diffs = config_differences(json.loads(json.dumps(config)), payload["config"])
        if diffs:
            raise CheckpointError(
                f"{path}: written by a different configuration:\n  "
                + "\n  ".join(diffs)
                + "\nUse the params it was trained with, or start this stage from scratch (delete the checkpoint)"
            )
    for name, module in modules.items():
        if name not in payload["modules"]:
            raise CheckpointError(f"{path}: has no {name!r} weights (it holds {sorted(payload['modules'])})")
        try:
            _unwrap(module).load_state_dict(payload["modules"][name], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: {name} weights do not fit this network: {str(exc)[:500]}") from None
    for group, objects in (("optimizers", optimizers), ("schedulers", schedulers)):
        for name, obj in (objects or {}).items():
            if name not in payload[group]:
                raise CheckpointError(f"{path}: has no state for {group[:-1]} {name!r}")
            obj.load_state_dict(payload[group][name])
    if scaler is not None and payload["scaler"] is not None:
        scaler.load_state_dict(payload["scaler"])
    if restore_rng:
        set_rng_state(payload["rng"])
    return payload


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The bare network inside a DistributedDataParallel wrapper."""
    return module.module if hasattr(module, "module") and isinstance(module.module, torch.nn.Module) else module
