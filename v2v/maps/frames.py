"""Frame folders as the map stages read them, and the per-video loop they share.

Every map stage writes one folder per video (``<out>/<video_id>/`` + ``meta.json``), built under a
temporary name and renamed into place, so a folder that exists is whole. A folder whose
``meta.json`` fingerprint matches is reused; one video's bad input is recorded and the others
still run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2v.errors import describe_error
from v2v.io.atomic import remove_stale_temporaries
from v2v.io.files import is_up_to_date, write_manifest
from v2v.io.frames import INDEX_FILE, META_FILE, frame_paths, read_index, read_meta
from v2v.io.maps import read_rgb
from v2v.parallel import map_videos

log = logging.getLogger(__name__)

RGB = npt.NDArray[np.uint8]


def list_videos(frames_root: Path) -> list[str]:
    """Video ids of ``data/frames/index.json`` (the extract stage's list of extracted videos)."""
    return [v["video_id"] for v in read_index(frames_root / INDEX_FILE)]


def frames_fingerprint(frames_root: Path, video_id: str) -> str:
    """The extract stage's fingerprint of one video's frames (clear error when the folder is gone)."""
    folder = frames_root / video_id
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: frames folder missing; re-run the extract stage (dvc repro extract)")
    return str(read_meta(folder)["fingerprint"])


def open_video(frames_root: Path, video_id: str) -> tuple[dict[str, Any], list[Path]]:
    """``meta.json`` and frame paths of one extracted video; clear errors for a missing folder or frame."""
    folder = frames_root / video_id
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: frames folder missing; re-run the extract stage (dvc repro extract)")
    meta = read_meta(folder)
    files = frame_paths(folder)
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: frame missing; delete {folder} and re-run the extract stage")
    return meta, files


def read_frame(path: Path, meta: dict[str, Any]) -> RGB:
    """One frame as ``(H, W, 3) uint8`` RGB; a corrupt file or a wrong size is a ``ValueError`` naming it."""
    rgb = read_rgb(path)
    if rgb.shape[:2] != (meta["height"], meta["width"]):
        raise ValueError(
            f"{path}: frame is {rgb.shape[1]}x{rgb.shape[0]}, meta.json says {meta['width']}x{meta['height']}; "
            "re-run the extract stage"
        )
    return rgb


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def code_fingerprint(modules: Sequence[Any]) -> str:
    """Hash of the source files of ``modules``: a code change makes per-video outputs stale."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class VideoLoop:
    """Outcome of :func:`for_each_video`: the metas written or reused, and the failures."""

    done: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0
    computed_frames: int = 0  # frames of the videos (re)computed this time
    failed: list[dict[str, str]] = field(default_factory=list)


def for_each_video(
    video_ids: Sequence[str],  # the videos to process, in order
    out_root: Path,  # the stage's output folder; one sub-folder per video
    fingerprint_of: Callable[[str], str],  # video id → fingerprint of its inputs + settings
    work: Callable[[str, str], dict[str, Any]],  # (video id, fingerprint) → meta written (builds the folder)
    errors: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError, OSError),  # per-video bad input
    *,
    desc: str = "videos",  # the progress bar's label (the stage)
    map_options: Mapping[str, Any] | None = None,  # executor etc. (``orchestrate.map_options()``); None: serial
) -> VideoLoop:
    """Run ``work`` for every video whose output is missing or stale; remove outputs of videos gone.

    The reuse checks run here; the videos to (re)compute go to :func:`v2v.parallel.map_videos`, so with
    ``executor: dask`` ``work`` must pickle (a module-level function or a ``functools.partial`` of one, holding
    settings and paths, never a loaded model: tasks load theirs through :func:`v2v.parallel.worker_cache`) and
    the workers must see the project's folders. A video's bad input comes back as a failure named by its id."""
    out_root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_root)
    result = VideoLoop()
    slots: dict[str, dict[str, Any] | None] = {}  # video id → its meta, in input order (None: failed)
    jobs: list[tuple[str, str]] = []
    for video_id in video_ids:
        try:
            expected = fingerprint_of(video_id)
            folder = out_root / video_id
            if is_up_to_date(folder, expected):
                slots[video_id] = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
                result.reused += 1
                continue
        except errors as exc:
            _failed(result, slots, video_id, describe_error(exc))
            continue
        jobs.append((video_id, expected))
    attempt = functools.partial(_attempt, work, errors, out_root)
    outcomes = map_videos(attempt, jobs, names=[v for v, _ in jobs], desc=desc, **(map_options or {}))
    for (video_id, _), (meta, error) in zip(jobs, outcomes, strict=True):
        if meta is None:
            _failed(result, slots, video_id, str(error))
            continue
        slots[video_id] = meta
        result.computed_frames += int(meta["num_frames"])
    result.done = [meta for meta in slots.values() if meta is not None]
    current = set(video_ids)
    for child in out_root.iterdir():
        if child.is_dir() and (child / META_FILE).is_file() and child.name not in current:
            log.info("removing %s: its video is no longer extracted", child)
            shutil.rmtree(child)
    return result


def _failed(result: VideoLoop, slots: dict[str, Any], video_id: str, error: str) -> None:
    log.error("%s: %s", video_id, error)
    result.failed.append({"video_id": video_id, "error": error})
    slots[video_id] = None


def _attempt(
    work: Callable[[str, str], dict[str, Any]],
    errors: tuple[type[BaseException], ...],
    out_root: Path,
    job: tuple[str, str],
) -> tuple[dict[str, Any] | None, str | None]:
    """One video's task, wherever it runs: ``(meta, None)``, or ``(None, what was wrong)`` for bad input."""
    video_id, expected = job
    try:
        meta = work(video_id, expected)
    except errors as exc:
        return None, describe_error(exc)
    write_manifest(out_root / video_id)  # the folder is complete: record every file for the next reuse
    return meta, None
