"""What the map stages (segment, edges, pose, face) share: their one template (:func:`run_map_stage`: skip the maps
the task does not need, else the per-video loop in an MLflow run, its report and the contact sheet)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from v2v.config import Config, to_dict
from v2v.data.tasks import MapStage, needed_maps
from v2v.io.atomic import write_json
from v2v.io.frames import frame_paths
from v2v.io.weights import WeightsError
from v2v.maps.frames import VideoLoop, fingerprint, for_each_video, frames_fingerprint, list_videos
from v2v.maps.preview import preview_row
from v2v.mlops.tracking import StageRun, stage_run
from v2v.parallel import worker_cache
from v2v.paths import ProjectPaths
from v2v.stages.common import StageError, write_metrics
from v2v.viz import contact_sheet, evenly_spaced

log = logging.getLogger(__name__)

Backend = TypeVar("Backend")

MAX_SHEET_VIDEOS = 4
FRAMES_PER_VIDEO = 3


STATUS_FILE = "status.json"  # the whole output of a stage whose maps the task does not read
MAPS = {"segment": "segment_maps", "edges": "edge_maps", "pose": "pose_maps", "face": "face_maps"}  # ProjectPaths


Metas = list[dict[str, Any]]  # the meta.json of each video done, in input order


def run_map_stage(
    stage: MapStage,
    cfg: Config,
    paths: ProjectPaths,
    code: str,  # the fingerprint of the code that makes the maps (:func:`v2v.maps.frames.code_fingerprint`)
    inputs_of: Callable[[str], dict[str, Any]],  # video id → what decides its maps besides its frames and the code
    work: Callable[[str, str], dict[str, Any]],  # (video id, fingerprint) → its meta (a task of ``for_each_video``)
    summary: Callable[[Metas], dict[str, float]],  # the stage's own metrics, from the videos' metas
    tags: Callable[[Metas], dict[str, str]] | None = None,  # MLflow tags (backend, weights), from the metas
    gpu: str | None = None,  # the tasks' GPU need (:func:`v2v.parallel.gpu_need`); None: CPU work
) -> dict[str, Any]:
    """A map stage: nothing when the task does not read its maps (:func:`skip_unneeded`), else ``work`` for every
    video whose output is missing or stale, metrics, tags and the contact sheet; returns the DVC metrics."""
    out_root, metrics_path = getattr(paths, MAPS[stage]), getattr(paths, f"{stage}_metrics")
    if (skipped := skip_unneeded(stage, cfg, paths, out_root, metrics_path)) is not None:
        return skipped
    with stage_run(stage, cfg, paths, (stage,)) as tracker:
        started = time.perf_counter()

        def fingerprint_of(video_id: str) -> str:
            return fingerprint(
                {"frames": frames_fingerprint(paths.frames, video_id), **inputs_of(video_id), "code": code}
            )

        options = cfg.orchestrate.map_options() | ({} if gpu is None else {"gpu": gpu})
        loop = for_each_video(
            list_videos(paths.frames), out_root, fingerprint_of, work, desc=stage, map_options=options
        )
        if tags is not None:
            tracker.set_tags(tags(loop.done))
        return finish(stage, tracker, paths, loop, started, metrics_path, summary(loop.done))


def skip_unneeded(
    stage: MapStage, cfg: Config, paths: ProjectPaths, out_root: Path, metrics_path: Path
) -> dict[str, Any] | None:
    """When ``train.task`` does not read this stage's maps, compute nothing: the output is one ``status.json``
    saying so (the same bytes whatever ran before: maps of earlier runs are parked under ``cache/maps/<stage>``,
    outside DVC, and come back if the task reads them again) and metrics saying so; no MLflow run (nothing to log:
    the stage is called before the tracker opens, so a skipped stage costs the interpreter's start and its
    imports, under 2 s). None otherwise (parked maps are moved back first: the stage's per-video fingerprints
    then decide which it can reuse)."""
    out_root.mkdir(parents=True, exist_ok=True)
    status = out_root / STATUS_FILE
    parked = paths.parked_maps / stage
    if stage in needed_maps(cfg.train.task, cfg.edges.instance_boundaries):
        status.unlink(missing_ok=True)
        _move_videos(parked, out_root, replace=False)
        return None
    _move_videos(out_root, parked, replace=True)
    reason = f"train.task {cfg.train.task!r} does not use {stage} maps"
    write_json(status, {"needed": False, "reason": reason})
    metrics = {"needed": 0, "videos": 0, "frames": 0, "seconds": 0.0}
    write_metrics(metrics_path, metrics)
    log.info("%s: nothing to do: %s (set train.task to use them)", stage, reason)
    return metrics


def learned_backend(stage: str, settings: Any, build: Callable[[], Backend]) -> Backend:
    """A map stage's learned model, built once per process (the stage's, or a Dask worker's) for these settings;
    weights that cannot be loaded fail the stage with what to do."""
    key = json.dumps({stage: to_dict(settings)}, sort_keys=True, default=str)
    try:
        backend: Backend = worker_cache(key, build)
    except WeightsError as exc:
        raise StageError(str(exc)) from exc
    return backend


def weights_tags(stage: str, backend: str, metas: list[dict[str, Any]]) -> dict[str, str]:
    """MLflow tags naming the backend and the weights a map stage's videos were made with (from their
    ``meta.json``: the tasks that loaded the weights may have run on other machines)."""
    if backend == "ground_truth":
        return {f"v2v.{stage}.backend": "ground_truth", f"v2v.{stage}.weights": "none (dataset truth)"}
    tags = {f"v2v.{stage}.backend": backend}
    weights = next((m["weights"] for m in metas if isinstance(m.get("weights"), dict)), None)
    if weights is not None:
        tags[f"v2v.{stage}.weights"] = str(weights["name"])
        if weights.get("sha256"):
            tags[f"v2v.{stage}.weights_sha256"] = str(weights["sha256"])
    return tags


def _move_videos(source: Path, dest: Path, replace: bool) -> None:
    """Move ``source``'s per-video folders into ``dest`` by renaming (nothing is copied). For a video both have,
    ``replace`` keeps ``source``'s (parking the output's newer maps), else ``dest``'s (the output's maps win)."""
    if not source.is_dir():
        return
    for child in sorted(source.iterdir()):
        if not child.is_dir():
            continue
        target = dest / child.name
        if target.exists():
            if not replace:
                shutil.rmtree(child)
                continue
            shutil.rmtree(target)
        dest.mkdir(parents=True, exist_ok=True)
        child.rename(target)


def sheet(paths: ProjectPaths, video_ids: list[str]) -> Any:
    """Contact sheet: one row per (video, frame): frame | label colours | instance boundaries | edges | pose map |
    face sketch."""
    rows = []
    for video_id in video_ids[:MAX_SHEET_VIDEOS]:
        files = frame_paths(paths.frames / video_id)
        for i in evenly_spaced(len(files), FRAMES_PER_VIDEO):
            rows.append(
                preview_row(
                    files[i],
                    paths.segment_maps / video_id,
                    paths.edge_maps / video_id,
                    paths.pose_maps / video_id,
                    i,
                    paths.face_maps / video_id,
                )
            )
    return contact_sheet(rows, tile_width=min(256, rows[0][0].shape[1]))


def finish(
    stage: str,  # stage name (for messages and the artifact name)
    tracker: StageRun,  # the stage's MLflow run
    paths: ProjectPaths,  # project locations
    loop: VideoLoop,  # what the per-video loop did
    started: float,  # perf_counter at the start of the work
    metrics_path: Path,  # where the DVC metrics go
    extra: dict[str, float],  # stage-specific metrics
) -> dict[str, Any]:
    """Write and log metrics and the contact sheet; fail (after the other videos) if a video failed."""
    seconds = time.perf_counter() - started
    frames = sum(m["num_frames"] for m in loop.done)
    metrics = {
        "needed": 1,
        "videos": len(loop.done),
        "videos_reused": loop.reused,
        "videos_failed": len(loop.failed),
        "frames": frames,
        "seconds": round(seconds, 3),
        "frames_per_second": round(loop.computed_frames / seconds, 2) if seconds > 0 else 0.0,
        **extra,
    }
    # reuse depends on the workspace's history, not on the inputs: in MLflow and the log, not in the DVC metrics
    write_metrics(metrics_path, {k: v for k, v in metrics.items() if k != "videos_reused"})
    tracker.log_metrics(metrics)
    if loop.done:
        try:
            tracker.log_image(sheet(paths, [m["video_id"] for m in loop.done]), f"previews/{stage}.png")
        except (OSError, ValueError) as exc:  # a preview never fails the stage
            log.warning("%s: no contact sheet: %s", stage, exc)
    if loop.failed:
        listing = "\n".join(f"  - {f['video_id']}: {f['error']}" for f in loop.failed)
        written = (
            f"the other {len(loop.done)} video(s)' maps are written" if loop.done else "no video's maps were written"
        )
        raise StageError(f"{len(loop.failed)} video(s) failed in the {stage} stage ({written}):\n{listing}")
    log.info("%s: %d video(s), %d frames (%d reused) in %.1f s", stage, len(loop.done), frames, loop.reused, seconds)
    return metrics
