"""``extract`` stage: every video of ``extract.input_dir`` → ``data/frames/<video_id>/`` + ``index.json``.

Per-video outputs: one bad video never blocks the others. Each frame folder appears complete or
not at all; a folder whose ``meta.json`` fingerprint (source bytes + frame settings) matches is
reused, so adding one video to a folder does not re-extract the rest. Folders of videos that left
the input folder are removed. A video that cannot be read is reported by name; with
``extract.on_error: fail`` (default) the stage fails after extracting all the others.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from v2v import parallel
from v2v.config import Config
from v2v.errors import describe_error
from v2v.io.atomic import remove_stale_temporaries, write_json
from v2v.io.decode import Decoder, check_readable
from v2v.io.files import file_sha256, is_up_to_date, write_manifest
from v2v.io.frames import META_FILE, frame_paths, read_meta, split_problem
from v2v.io.video import VideoError
from v2v.mlops.tracking import stage_run
from v2v.paths import ProjectPaths
from v2v.preprocess.extract import FrameSpec, VideoSource, discover_videos, extract_video, fingerprint
from v2v.stages.common import StageError, stage_main, write_metrics
from v2v.viz import contact_sheet, evenly_spaced

log = logging.getLogger(__name__)

MAX_SHEET_ROWS = 8


def frame_spec(cfg: Config) -> FrameSpec:
    ex = cfg.extract
    return FrameSpec(
        fps=ex.fps,
        width=ex.width,
        height=ex.height,
        resize=ex.resize,
        size_multiple=ex.size_multiple,
        frame_format=ex.frame_format,
        jpeg_quality=ex.jpeg_quality,
        png_compression=ex.png_compression,
        max_frames=ex.max_frames,
    )


# How the per-video work is spread: ``map_videos(extract_one, sources, **constants)`` returns one result per
# source, in order. The default is the stage executor of ``orchestrate`` (serial, or a Dask cluster: see
# :mod:`v2v.parallel`); pipelines/fanout.py maps them as Prefect tasks on a Dask cluster instead.
MapVideos = Callable[..., list[dict[str, Any]]]


def map_with(options: dict[str, Any]) -> MapVideos:
    """``map_videos`` on the executor ``options`` (``orchestrate.map_options()``) name."""

    def spread(function: Callable[..., dict[str, Any]], sources: list[VideoSource], **constants: Any) -> Any:
        work = functools.partial(function, **constants)
        return parallel.map_videos(work, sources, names=[s.video_id for s in sources], desc="extract", **options)

    return spread


def extract_one(
    source: VideoSource,  # the video
    frames_dir: Path,  # its frames go to frames_dir/<video_id>/ (atomically)
    spec: FrameSpec,  # what the frames look like
    decoder: Decoder,  # extract.decoder
    writer_threads: int,  # extract.writer_threads
    progress: bool = True,  # per-frame progress bar
) -> dict[str, Any]:
    """Extract one video, or reuse its folder when the fingerprint matches.

    Returns ``{"meta": meta.json content, "reused": bool}``, or ``{"error": {...}}`` naming the video when it
    cannot be read (the other videos go on).
    """
    dest = frames_dir / source.video_id
    try:
        sha = file_sha256(check_readable(source.path))
        reused = is_up_to_date(dest, fingerprint(sha, spec, decoder, source.part))
        meta = read_meta(dest) if reused else extract_video(source, dest, spec, decoder, writer_threads, sha, progress)
        if meta["split"] != source.split:  # the split is not part of the fingerprint
            meta["split"] = source.split
            write_json(dest / META_FILE, meta)
            write_manifest(dest)
        return {"meta": meta, "reused": reused}
    except (VideoError, OSError, ValueError) as exc:
        log.error("%s", describe_error(exc))
        return {"error": {"source": str(source.path), "video_id": source.video_id, "error": describe_error(exc)}}


def _failures(failed: list[dict[str, str]], total: int, frames: Path, done: list[dict[str, Any]]) -> StageError:
    listing = "\n".join(f"  - {f['error']}" for f in failed)
    others = f"the other videos' frames are in {frames}" if done else "no video was extracted"
    return StageError(
        f"{len(failed)} of {total} video(s) could not be extracted ({others}):\n{listing}\n"
        "Fix or remove these files, or set extract.on_error: skip"
    )


def run(cfg: Config, paths: ProjectPaths, map_videos: MapVideos | None = None) -> dict[str, Any]:
    """Extract every input video; returns the metrics written to ``metrics/extract.json``.

    ``map_videos`` spreads the per-video work (default: ``orchestrate.executor``, see :func:`map_with`).
    """
    ex = cfg.extract
    spec = frame_spec(cfg)
    with stage_run("extract", cfg, paths, ("extract",)) as tracker:
        started = time.perf_counter()
        sources, skipped = discover_videos(paths.input_dir(ex.input_dir), ex.test_fraction)
        for path, reason in skipped:
            log.warning("skipping %s: %s", path, reason)
        if not sources:
            raise StageError(f"{paths.input_dir(ex.input_dir)}: no video files found; put videos there")
        paths.frames.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(paths.frames)

        results = (map_videos or map_with(cfg.orchestrate.map_options()))(
            extract_one,
            sources,
            frames_dir=paths.frames,
            spec=spec,
            decoder=ex.decoder,
            writer_threads=ex.writer_threads,
        )
        done: list[dict[str, Any]] = [r["meta"] for r in results if "meta" in r]
        failed: list[dict[str, str]] = [r["error"] for r in results if "error" in r]
        reused = sum(bool(r.get("reused")) for r in results)

        if not done:  # nothing to index: fail before anything (index, metrics, the previous folders) changes
            raise _failures(failed, len(sources), paths.frames, done)
        current = {src.video_id for src in sources}
        for child in paths.frames.iterdir():
            if child.is_dir() and (child / META_FILE).is_file() and child.name not in current:
                log.info("removing %s: its video is no longer in the input folder", child)
                shutil.rmtree(child)

        seconds = time.perf_counter() - started
        frames = sum(m["num_frames"] for m in done)
        extracted = len(done) - reused
        index = {
            "videos": [
                {k: m[k] for k in ("video_id", "source", "split", "num_frames", "fps", "width", "height")} for m in done
            ],
            "failed": failed,
            "skipped": [{"path": str(p), "reason": reason} for p, reason in skipped],
        }
        write_json(paths.frames_index, index)
        metrics = {
            "videos": len(done),
            "videos_train": sum(m["split"] == "train" for m in done),
            "videos_test": sum(m["split"] == "test" for m in done),
            "videos_failed": len(failed),
            "videos_reused": reused,
            "frames": frames,
            "seconds": round(seconds, 3),
            "frames_per_second": round(frames / seconds, 1) if extracted and seconds > 0 else 0.0,
        }
        # how many videos were reused depends on the workspace's history, not on the inputs: MLflow and the log
        # have it, the DVC metrics file does not (a fresh clone writes the same bytes)
        write_metrics(paths.extract_metrics, {k: v for k, v in metrics.items() if k != "videos_reused"})
        tracker.log_metrics(metrics)
        tracker.log_artifact(paths.frames_index)
        if done:
            tracker.log_image(_sheet(paths, done, cfg.tracking.contact_sheet_frames), "previews/frames.png")
        if problem := split_problem([(m["video_id"], m["split"]) for m in done]):
            log.warning("%s", problem)  # an error where it matters: training (no train video), generation (no test)
        if failed and ex.on_error == "fail":
            raise _failures(failed, len(sources), paths.frames, done)
        log.info(
            "extract: %d video(s), %d frames (%d reused, %d failed) in %.1f s",
            len(done),
            frames,
            reused,
            len(failed),
            seconds,
        )
    return metrics


def _sheet(paths: ProjectPaths, metas: list[dict[str, Any]], per_video: int) -> Any:
    rows = []
    for meta in metas[:MAX_SHEET_ROWS]:
        files = frame_paths(paths.frames / meta["video_id"])
        picks = [files[i] for i in evenly_spaced(len(files), per_video)]
        rows.append([cv2.cvtColor(_imread(f), cv2.COLOR_BGR2RGB) for f in picks])
    return contact_sheet(rows, tile_width=min(256, metas[0]["width"]))


def _imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise OSError(f"{path}: cannot decode this frame; delete its folder and re-run the extract stage")
    return image


def main() -> None:
    stage_main("extract", run)


if __name__ == "__main__":
    main()
