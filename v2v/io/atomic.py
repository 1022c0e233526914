"""Atomic outputs: write to a temporary sibling, then rename into place.

A crashed or interrupted stage therefore never leaves a half-written file or folder at a path
that a later stage would trust. Temporary siblings start with ``.tmp-`` so they are easy to
recognise and clean up. What is published has the permissions of an ordinary write under the
process's umask (the temporaries are created owner-only).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create owner-only (0600/0700) entries; outputs get the modes of an ordinary write
_UMASK = _umask()
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def _creating(path: Path) -> Iterator[None]:
    """Report a failure to create a temporary next to ``path`` as one about ``path``'s folder (not the temporary's
    random name, which the user never sees)."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, f"{exc.strerror} (writing {path.name} there)", str(path.parent)) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], atomic: bool = True) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    The temporary name keeps ``path``'s suffix so writers that pick a format by suffix work.
    ``atomic=False`` yields ``path`` itself: for files inside a folder that is itself staged by
    :func:`atomic_dir` (published whole, so a file-level rename would only cost time).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not atomic:
        yield path
        return
    with _creating(path):
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.stem + "-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; on success it replaces ``path`` whole.

    An existing ``path`` is only removed after the new folder is complete, so an interrupted
    run keeps the previous good output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _creating(path):
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + path.name + "-", dir=path.parent))
    os.chmod(tmp, DIR_MODE)
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + path.name + "-old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete ``.tmp-*`` leftovers of interrupted runs directly inside ``folder``."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for child in folder.iterdir():
        if child.name.startswith(TMP_PREFIX):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            removed.append(child)
    return removed
