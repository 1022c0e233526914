"""``flow`` stage: backward optical flow + confidence of every extracted video → ``data/flow/<video_id>/``.

For every video of ``data/frames/index.json`` the frame pairs are streamed through the backend
(``flow.backend``: OpenCV DIS by default, or torchvision RAFT), each pair's confidence mask is
computed (:mod:`v2v.flow.confidence`), and ``NNNNNN.npy`` + ``NNNNNN_valid.png`` (frame 1 on) and
``meta.json`` are written into a temporary folder renamed into place when the video is complete
(layout and reader: :mod:`v2v.flow.io`). The flow is backward: ``warp(frame_{t-1}, flow_t) ≈
frame_t`` (:mod:`v2v.ops.warp`).

When ``flow.ground_truth_dir`` holds the clip's true flow and the frames were not resampled in
time, the end-point error (all pixels, trusted pixels) and the share of truly hidden pixels that
the mask rejects are measured per clip. Metrics go to ``metrics/flow.json`` and MLflow, with colour
wheel pictures of the flow, the confidence masks and the weights used.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from typing import Any

from v2v.config import Config, FlowConfig, to_dict
from v2v.flow.confidence import ConfidenceSettings
from v2v.flow.dis import DisFlow
from v2v.flow.estimator import FlowEstimator
from v2v.flow.io import META_FILE
from v2v.flow.raft import RaftFlow
from v2v.flow.truth import truth_folder
from v2v.flow.video import VideoFlow, compute_video_flow
from v2v.flow.viz import colour_wheel
from v2v.io.atomic import atomic_dir, remove_stale_temporaries, write_json
from v2v.io.frames import frame_paths, read_index, read_meta
from v2v.mlops.tracking import stage_run
from v2v.ops.device import resolve_device
from v2v.parallel import gpu_need, map_videos, worker_cache
from v2v.paths import ProjectPaths, project_relative
from v2v.stages.common import StageError, stage_main, write_metrics
from v2v.viz import contact_sheet, evenly_spaced

log = logging.getLogger(__name__)

MAX_PREVIEW_VIDEOS = 8
PREVIEW_PAIRS = 4
CONVENTION = "backward: warp(frame_{t-1}, flow_t) ~= frame_t; flow_t stored with frame t, from frame 1 on"


def flow_video(
    cfg: Config, paths: ProjectPaths, video_id: str, estimators: list[FlowEstimator]
) -> tuple[dict[str, Any], VideoFlow]:
    """Compute one video's flow into ``data/flow/<video_id>/`` atomically; returns its meta and results."""
    fc = cfg.flow
    frames_dir = paths.frames / video_id
    frames_meta = read_meta(frames_dir)
    files = frame_paths(frames_dir)
    truth_root = None if fc.ground_truth_dir is None else paths.input_dir(fc.ground_truth_dir)
    truth, why_not = truth_folder(truth_root, frames_meta)
    if truth is None and fc.ground_truth_dir is not None and (truth_root / video_id).is_dir():  # type: ignore[operator]
        log.warning("%s: EPE skipped: %s", video_id, why_not)
    settings = confidence_settings(fc)
    num_pairs = max(len(files) - 1, 0)
    preview_at = [t + 1 for t in evenly_spaced(num_pairs, PREVIEW_PAIRS)]
    with atomic_dir(paths.flow / video_id) as tmp:
        if num_pairs == 0:
            log.warning("%s: a single frame, so no frame pairs: writing an empty flow folder", video_id)
        try:
            result = compute_video_flow(
                files,
                tmp,
                estimators,
                settings,
                batch_size=fc.batch_size,
                truth=truth,
                frames_meta=frames_meta,
                preview_at=preview_at,
            )
        except (ValueError, FileNotFoundError) as exc:
            raise StageError(f"video {video_id}: {exc}") from exc
        meta: dict[str, Any] = {
            "video_id": video_id,
            "convention": CONVENTION,
            "dtype": "float16",
            "width": frames_meta["width"],
            "height": frames_meta["height"],
            "num_frames": len(files),
            "num_pairs": result.num_pairs,
            "backend": estimators[0].name,
            "weights": estimators[0].weights,
            "settings": estimators[0].settings,
            "workers": len(estimators),
            "confidence": to_dict(settings),
            "valid_fraction": result.valid_fraction,
            # no durations: the same frames and settings give the same bytes, so DVC reruns nothing downstream
            "ground_truth": project_relative(truth, paths.root) if truth is not None else None,
            "epe_skipped": why_not or None,
            **(result.score.summary() if result.score is not None else {}),
        }
        write_json(tmp / META_FILE, meta)
    return meta, result


def flow_task(cfg: Config, paths: ProjectPaths, video_id: str) -> tuple[dict[str, Any], VideoFlow]:
    """One video's flow (a task of :func:`v2v.parallel.map_videos`, in this process or on a Dask worker): the
    backend is built once per process."""
    return flow_video(cfg, paths, video_id, estimators_for(cfg.flow))


def estimators_for(cfg: FlowConfig) -> list[FlowEstimator]:
    """:func:`make_estimators`' backends, built once per process (the stage's, or a Dask worker's)."""
    key = json.dumps({"flow": to_dict(cfg)}, sort_keys=True, default=str)
    estimators: list[FlowEstimator] = worker_cache(key, lambda: make_estimators(cfg))
    return estimators


def make_estimator(cfg: FlowConfig) -> FlowEstimator:
    """Build the backend named by ``flow.backend`` (RAFT loads its weights here, failing loudly)."""
    if cfg.backend == "dis":
        return DisFlow(preset=cfg.dis_preset)
    return RaftFlow(
        model=cfg.raft_model,
        weights=cfg.raft_weights,
        iterations=cfg.raft_iterations,
        device=resolve_device(cfg.device, "flow.device"),
    )


def make_estimators(cfg: FlowConfig) -> list[FlowEstimator]:
    """One estimator per worker thread: ``flow.workers`` independent DIS instances, or a single RAFT."""
    if cfg.backend == "dis":
        return [make_estimator(cfg) for _ in range(cfg.workers)]
    return [make_estimator(cfg)]


def confidence_settings(cfg: FlowConfig) -> ConfidenceSettings:
    """Which pixels of a flow to trust, from ``flow.*``."""
    return ConfidenceSettings(
        photometric_threshold=cfg.photometric_threshold,
        forward_backward=cfg.forward_backward,
        fb_alpha=cfg.fb_alpha,
        fb_beta=cfg.fb_beta,
        out_of_frame=cfg.out_of_frame,
    )


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Compute the flow of every extracted video; returns the metrics written to ``metrics/flow.json``."""
    fc = cfg.flow
    with stage_run("flow", cfg, paths, ("flow",)) as tracker:
        started = time.perf_counter()
        videos = read_index(paths.frames_index)
        paths.flow.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(paths.flow)

        per_video: dict[str, dict[str, Any]] = {}
        sheets: list[tuple[str, list[list[Any]]]] = []
        pairs = 0
        estimate_seconds = 0.0
        video_ids = [video["video_id"] for video in videos]
        outcomes = map_videos(
            functools.partial(flow_task, cfg, paths),
            video_ids,
            names=video_ids,
            desc="flow",
            **cfg.orchestrate.map_options(),
            gpu=gpu_need(fc.backend == "raft", fc.device),
        )
        if outcomes:  # the backend the tasks used (they built it: here, or on the workers)
            first = outcomes[0][0]
            tracker.set_tags({"v2v.flow.backend": first["backend"], "v2v.flow.weights": first["weights"]})
            log.info(
                "flow: backend %s %s, weights: %s, %d worker thread(s) per task",
                first["backend"],
                first["settings"],
                first["weights"],
                first["workers"],
            )
        for video_id, (meta, result) in zip(video_ids, outcomes, strict=True):
            pairs += result.num_pairs
            estimate_seconds += result.estimate_seconds
            per_video[video_id] = {
                k: meta[k] for k in ("num_pairs", "valid_fraction", "epe", "epe_valid", "occlusion_recall") if k in meta
            }
            if result.num_pairs and result.seconds > 0:  # metrics/timing (write_metrics)
                per_video[video_id]["pairs_per_second"] = round(result.num_pairs / result.seconds, 2)
            if result.previews and len(sheets) < MAX_PREVIEW_VIDEOS:
                sheets.append((video_id, result.previews))

        current = {v["video_id"] for v in videos}
        for child in paths.flow.iterdir():
            if child.is_dir() and (child / META_FILE).is_file() and child.name not in current:
                log.info("removing %s: its video is no longer in %s", child, paths.frames_index)
                shutil.rmtree(child)

        seconds = time.perf_counter() - started
        measured = {k: v for k, v in per_video.items() if v.get("epe") is not None}
        metrics: dict[str, Any] = {
            "videos": len(videos),
            "pairs": pairs,
            "seconds": round(seconds, 3),
            "pairs_per_second": round(pairs / seconds, 2) if pairs and seconds > 0 else 0.0,
            # the backend alone, its workers' time summed: what one worker would do with nothing around it
            "backend_pairs_per_second_per_worker": round(pairs / estimate_seconds, 2)
            if pairs and estimate_seconds > 0
            else 0.0,
            "workers": outcomes[0][0]["workers"] if outcomes else 0,
            "clips_with_truth": len(measured),
            "per_video": per_video,
        }
        if measured:  # pixel-weighted over clips of equal size = the mean of the clip EPEs here
            metrics["epe_mean"] = round(sum(v["epe"] for v in measured.values()) / len(measured), 4)
            valid = [v["epe_valid"] for v in measured.values() if v.get("epe_valid") is not None]
            if valid:
                metrics["epe_valid_mean"] = round(sum(valid) / len(valid), 4)
        write_metrics(paths.flow_metrics, metrics)

        flat = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        for video_id, values in per_video.items():
            flat.update({f"{key}.{video_id}": v for key, v in values.items() if isinstance(v, int | float)})
        tracker.log_metrics(flat)
        tracker.log_artifact(paths.flow_metrics)
        tracker.log_image(colour_wheel(96), "previews/flow_colour_wheel.png")
        for video_id, rows in sheets:
            tracker.log_image(
                contact_sheet(rows, tile_width=min(256, rows[0][0].shape[1])), f"previews/flow_{video_id}.png"
            )
        log.info(
            "flow: %d video(s), %d pairs in %.1f s (%.1f pairs/s)%s",
            len(videos),
            pairs,
            seconds,
            metrics["pairs_per_second"],
            f", mean EPE {metrics['epe_mean']:.3f} px over {len(measured)} clip(s)" if measured else "",
        )
    return metrics


def main() -> None:
    stage_main("flow", run)


if __name__ == "__main__":
    main()
