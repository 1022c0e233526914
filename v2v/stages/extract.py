"""``extract`` stage: every video of ``extract.input_dir`` → ``data/frames/<video_id>/`` + ``index.json``.

Per-video outputs: one bad video never blocks the others. Each frame folder appears complete or
not at all; a folder whose ``meta.json`` fingerprint (source bytes + frame settings) matches is
reused, so adding one video to a folder does not re-extract the rest. Folders of videos that left
the input folder are removed. A video that cannot be read is reported by name; with
``extract.on_error: fail`` (default) the stage fails after extracting all the others.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from v2v.config import Config
from v2v.io.atomic import remove_stale_temporaries, write_json
from v2v.io.files import file_sha256
from v2v.io.video import VideoError, check_readable
from v2v.paths import ProjectPaths
from v2v.preprocess.extract import (
    META_FILE,
    FrameSpec,
    discover_videos,
    extract_video,
    fingerprint,
    frame_paths,
    is_up_to_date,
    read_meta,
)
from v2v.stages.common import StageError, stage_main
from v2v.tracking import stage_run
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


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Extract every input video; returns the metrics written to ``metrics/extract.json``."""
    ex = cfg.extract
    spec = frame_spec(cfg)
    with stage_run("extract", cfg, paths, ("extract",)) as tracker:
        started = time.perf_counter()
        sources, ignored = discover_videos(paths.input_dir(ex.input_dir), ex.test_fraction)
        for path in ignored:
            log.warning("ignoring %s: not a video file name (known suffixes: .mp4, .mov, .avi, .mkv, ...)", path)
        if not sources:
            raise StageError(f"{paths.input_dir(ex.input_dir)}: no video files found; put videos there")
        paths.frames.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(paths.frames)

        done: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        reused = 0
        for src in tqdm(sources, desc="extract", unit="video"):
            dest = paths.frames / src.video_id
            try:
                sha = file_sha256(check_readable(src.path))
                if is_up_to_date(dest, fingerprint(sha, spec, ex.decoder)):
                    meta = read_meta(dest)
                    reused += 1
                else:
                    meta = extract_video(src, dest, spec, ex.decoder, ex.writer_threads, sha)
                if meta["split"] != src.split:  # the split is not part of the fingerprint
                    meta["split"] = src.split
                    write_json(dest / META_FILE, meta)
                done.append(meta)
            except (VideoError, OSError, ValueError) as exc:
                log.error("%s", exc)
                failed.append({"source": str(src.path), "video_id": src.video_id, "error": str(exc)})

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
            "ignored": [str(p) for p in ignored],
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
        write_json(paths.extract_metrics, metrics)
        tracker.log_metrics(metrics)
        tracker.log_artifact(paths.frames_index)
        if done:
            tracker.log_image(_sheet(paths, done, cfg.tracking.contact_sheet_frames), "previews/frames.png")
        if failed and ex.on_error == "fail":
            listing = "\n".join(f"  - {f['error']}" for f in failed)
            raise StageError(
                f"{len(failed)} of {len(sources)} video(s) could not be extracted (the other videos' frames are "
                f"in {paths.frames}):\n{listing}\nFix or remove these files, or set extract.on_error: skip"
            )
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
