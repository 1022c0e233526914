"""Resumable training runs: the step files of one configuration, the newest intact one, and whether
the inputs that wrote them are still the inputs (the file format is :mod:`v2v.io.checkpoint`)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from v2v.io.atomic import TMP_PREFIX, atomic_path, remove_stale_temporaries
from v2v.io.checkpoint import CheckpointError, read_checkpoint

log = logging.getLogger(__name__)
STEP_FILE = re.compile(r"step_(\d+)\.pt$")
INPUTS_FILE = "inputs.txt"  # beside the step files: the fingerprint of the inputs that wrote them


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
