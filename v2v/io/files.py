"""File fingerprints, and the manifest that lets a stage trust a per-video folder it reuses.

A stage that reuses a video's output folder (extract, segment, edges, pose) checks more than the
fingerprint of its inputs in ``meta.json``: ``manifest.json`` lists every file of the folder with
its size and a BLAKE2b hash, written last when the folder is built. On reuse every file is checked
against it (:func:`damaged_files`); a truncated, rewritten or missing file makes the stage rebuild
that video and say which file was wrong, so nothing damaged is ever recorded as good.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
META_FILE = "meta.json"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dvc_md5(path: Path) -> str:
    """The md5 DVC 3 records for a file or folder (folders: md5 of the sorted entry list + ``.dir``)."""
    if path.is_file():
        return _file_md5(path)
    entries = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != ".dvc"]
        for filename in filenames:
            full = Path(dirpath) / filename
            entries.append({"md5": _file_md5(full), "relpath": full.relative_to(path).as_posix()})
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _blake2b(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def folder_manifest(folder: Path) -> dict[str, list[Any]]:
    """``{relative path: [size, blake2b]}`` of every file under ``folder`` but the manifest itself."""
    return {
        path.relative_to(folder).as_posix(): [path.stat().st_size, _blake2b(path)]
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }


def write_manifest(folder: Path) -> None:
    """Record every file of ``folder`` (call it last, when the folder is complete)."""
    from v2v.io.atomic import write_json

    write_json(folder / MANIFEST_FILE, {"format": 1, "files": folder_manifest(folder)})


def damaged_files(folder: Path) -> list[str]:
    """Files of ``folder`` that are missing or differ from its manifest (all of them when there is no manifest)."""
    try:
        listed = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [MANIFEST_FILE]
    damaged = []
    for name, (size, digest) in listed.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size or _blake2b(path) != digest:
            damaged.append(name)
    return damaged


def is_up_to_date(folder: Path, expected_fingerprint: str) -> bool:
    """``folder`` was built from the inputs of ``expected_fingerprint`` and every file is intact."""
    meta = folder / META_FILE
    if not meta.is_file():
        return False
    try:
        if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") != expected_fingerprint:
            return False
    except (json.JSONDecodeError, OSError):
        return False
    damaged = damaged_files(folder)
    if damaged:
        shown = ", ".join(damaged[:5]) + (f" and {len(damaged) - 5} more" if len(damaged) > 5 else "")
        log.warning("%s: %s missing or changed since it was written; rebuilding this video", folder, shown)
        return False
    return True
