"""Checkpoints: state dicts + config + optimiser/scaler states + RNG states + step, written atomically.

A checkpoint is one ``.pt`` file holding only tensors and plain Python data, so it loads with
``torch.load(weights_only=True)`` (no pickled modules, no code execution on load). Its ``config``
is the JSON-able configuration of the networks that wrote it; loading into networks built from a
different configuration is an error that lists the differing keys, never a silent partial load.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from v2v.io.atomic import TMP_PREFIX, atomic_path, remove_stale_temporaries, write_bytes, write_json

FORMAT = "v2v-checkpoint-1"
log = logging.getLogger(__name__)
STEP_FILE = re.compile(r"step_(\d+)\.pt$")
INPUTS_FILE = "inputs.txt"  # beside the step files: the fingerprint of the inputs that wrote them


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def rng_state() -> dict[str, Any]:
    """Every random generator training touches, as tensors and plain data."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(
        ("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
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
    buffer = io.BytesIO()  # not torch.save(tmp): the archive would be named after the random temporary file
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
    write_json(path.parent / "config.json", payload["config"])
    return path


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


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The ``step_NNNNNNNN.pt`` with the highest step in ``folder`` (None when there is none)."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := STEP_FILE.search(p.name))]
    return max(found)[1] if found else None


def drop_damaged_checkpoints(folder: str | Path) -> list[Path]:
    """Prepare ``folder`` for a resume: delete leftovers of interrupted writes (``.tmp-*``) and, newest first, every
    step file that cannot be read, until an intact one is found (a kill mid-write or a bad disk must not stop the
    run: it resumes from the previous checkpoint). Returns the files deleted."""
    folder = Path(folder)
    removed = remove_stale_temporaries(folder)
    while (last := latest_checkpoint(folder)) is not None:
        try:
            read_checkpoint(last)
            break
        except CheckpointError as exc:
            log.warning("%s; deleting it and resuming from the previous checkpoint", exc)
            last.unlink()
            removed.append(last)
    return removed


def step_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.pt"


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The bare network inside a DistributedDataParallel wrapper."""
    return module.module if hasattr(module, "module") and isinstance(module.module, torch.nn.Module) else module


def inputs_fingerprint(roots: Iterable[Path]) -> str:
    """A hash of every file under ``roots`` (files or folders) by relative path, size and mtime.

    Cheap (one ``stat`` per file, no reading), and it changes whenever a stage rewrites its output,
    even with equal bytes: a resume it wrongly refuses costs a retrain, one it wrongly allows would
    pass a model trained on other data off as new. ``__pycache__`` and staging folders are skipped.
    """
    digest = hashlib.sha256()
    for root in roots:
        root = Path(root)
        found = [root] if root.is_file() else sorted(_files(root)) if root.is_dir() else []
        digest.update(f"{root}:{len(found)}\n".encode())
        for path in found:
            info = path.stat()
            digest.update(
                f"{path.relative_to(root) if path != root else ''}:{info.st_size}:{info.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:16]


def _files(folder: Path) -> Iterable[Path]:
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(TMP_PREFIX)]
        yield from (Path(parent) / name for name in names if not name.startswith(TMP_PREFIX))


def discard_if_inputs_changed(folder: str | Path, inputs: str) -> bool:
    """Delete ``folder``'s step checkpoints when they were written from other inputs; record ``inputs``.

    Returns whether checkpoints were discarded. A folder without a record (older runs) counts as
    other inputs.
    """
    folder = Path(folder)
    record = folder / INPUTS_FILE
    steps = [p for p in folder.glob("step_*.pt") if STEP_FILE.search(p.name)]
    stale = bool(steps) and (not record.is_file() or record.read_text(encoding="utf-8").strip() != inputs)
    if stale:
        for path in steps:
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(record) as tmp:
        tmp.write_text(inputs + "\n", encoding="utf-8")
    return stale
