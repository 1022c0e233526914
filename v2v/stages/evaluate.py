"""``evaluate`` stage: score the generated videos against the real ones and the per-frame baseline.

For every video the ``generate`` stage wrote (``results/<video_id>/``), the per-frame baseline
(``models/baseline``) synthesises the same conditions, then :class:`v2v.eval.scoring.Scorer`
measures real | vid2vid | baseline frame by frame. Outputs:

* ``metrics/evaluate.json`` (DVC metrics): FIDs and video FDs of each system, LPIPS, warping error
  (also the real video's own), tOF, tLP, and the preference proxies ``P(vid2vid ≻ baseline)`` per
  dimension with their Wilson intervals;
* ``plots/evaluate_frames.csv`` (DVC plots): the per-frame series;
* ``evaluation/``: ``report.html`` (self-contained), ``summary.json`` (the metrics plus which
  weights and preprocessing produced them), and per video ``baseline/`` frames, ``baseline.webm``
  and ``compare.webm`` (input maps | real | vid2vid | baseline).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from v2v.config import Config, EvaluateConfig, to_dict
from v2v.data.clips import ClipDataset
from v2v.data.tasks import get_task
from v2v.eval.edges import EdgeCounts, score_edges
from v2v.eval.features import FeatureNet, i3d_feature_net, image_feature_net, video_feature_net
from v2v.eval.landmarks import score_landmarks
from v2v.eval.perceptual import LPIPS
from v2v.eval.report import TRAINING_PNG, ReportData, ReportVideo, render, training_png
from v2v.eval.scoring import DIMENSIONS, FeatureCache, VideoScores, preferences
from v2v.eval.segmentation import load_segmenter
from v2v.eval.summary import SYSTEMS, edge_metrics, landmark_metrics, per_frame_csv, pooled_series, summarise
from v2v.eval.video import evaluate_video
from v2v.generation.synthesis import load_model
from v2v.io.atomic import atomic_dir, remove_stale_temporaries, write_bytes, write_json, write_text
from v2v.maps.face import FaceLandmarker
from v2v.mlops.tracking import stage_run
from v2v.ops.device import resolve_device
from v2v.parallel import gpu_need, map_videos, scoped_cache, worker_cache
from v2v.paths import ProjectPaths, project_relative
from v2v.stages.common import split_timing, stage_main, write_metrics

log = logging.getLogger(__name__)


def feature_nets(ec: EvaluateConfig, device: torch.device) -> list[FeatureNet]:
    """The Fréchet-distance networks the params ask for, on ``device``."""
    nets = [image_feature_net(ec.image_backbone, ec.image_weights)]
    for backbone in ec.video_backbones:
        weights = ec.video_weights
        if weights not in ("default", "none"):
            weights = str(Path(weights) / f"{backbone}.pth")
        nets.append(video_feature_net(backbone, weights))
    if ec.i3d_torchscript:
        nets.append(i3d_feature_net(ec.i3d_torchscript))
    return [net.to(device) for net in nets]


def generated_videos(paths: ProjectPaths) -> list[str]:
    """Ids of the videos the generate stage wrote (folders of ``results/`` with a ``meta.json``)."""
    if not paths.results.is_dir():
        raise FileNotFoundError(f"{paths.results}: missing; run the generate stage first (`dvc repro generate`)")
    found = sorted(p.parent.name for p in paths.results.glob("*/meta.json"))
    if not found:
        raise FileNotFoundError(f"{paths.results}: no generated videos (no */meta.json); rerun `dvc repro generate`")
    return found


@dataclass
class Scorers:
    """What evaluate scores with: the per-frame baseline it synthesises, the feature networks, LPIPS and the task's
    own judge (segmenter, landmarker or none)."""

    task: str
    baseline: Any  # SynthesisModel
    nets: list[FeatureNet]
    lpips: LPIPS
    segmenter: Any | None
    landmarker: FaceLandmarker | None


def scorers(cfg: Config, paths: ProjectPaths) -> Scorers:
    """:class:`Scorers`, built once per process (the stage's, or a Dask worker's) for these settings and files."""
    ec = cfg.evaluate
    files = [paths.baseline_dir / "model.pt", paths.segmenter_dir / "model.pt"]
    stamps = [f"{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}" if f.is_file() else str(f) for f in files]
    settings = {"evaluate": to_dict(ec), "batch_norm": cfg.generate.batch_norm, "face": to_dict(cfg.face)}
    key = json.dumps({"scorers": settings, "files": stamps}, sort_keys=True, default=str)
    return worker_cache(key, lambda: _build_scorers(cfg, paths))


def _build_scorers(cfg: Config, paths: ProjectPaths) -> Scorers:
    ec = cfg.evaluate
    device = resolve_device(ec.device, "evaluate.device")
    baseline = load_model(paths.baseline_dir / "model.pt", device, cfg.generate.batch_norm)  # as vid2vid
    if not baseline.config.get("per_frame"):
        raise ValueError(
            f"{paths.baseline_dir / 'model.pt'}: not a per-frame baseline; rerun `dvc repro train_baseline`"
        )
    task = baseline.config["train"]["task"]
    maps = get_task(task).maps
    return Scorers(
        task=task,
        baseline=baseline,
        nets=feature_nets(ec, device),
        lpips=LPIPS(ec.lpips_weights).to(device),
        segmenter=load_segmenter(paths.segmenter_dir / "model.pt", device) if maps == "segment" else None,
        landmarker=FaceLandmarker(cfg.face.predictor, upsample=cfg.face.upsample) if maps == "face" else None,
    )


VideoOutcome = tuple[VideoScores, dict[str, dict[str, Any]] | None, dict[str, EdgeCounts] | None]


def evaluate_task(cfg: Config, paths: ProjectPaths, item: tuple[str, int, float]) -> VideoOutcome:
    """One generated video ``(video_id, frames, fps)`` scored into ``evaluation/<video_id>/`` atomically (a task of
    :func:`v2v.parallel.map_videos`, in this process or on a Dask worker): its scores, and its landmark or edge
    figures when the task has them."""
    video_id, frames, fps = item
    s = scorers(cfg, paths)
    dataset = ClipDataset(paths=paths, split="test", task=s.task, clip_length=1, with_flow=False)
    (video,) = [v for v in dataset.videos if v.video_id == video_id]
    landmarks = edges = None
    with atomic_dir(paths.evaluation / video_id) as out:
        scores = evaluate_video(
            dataset,
            video,
            frames,
            fps,
            s.task,
            s.baseline,
            s.nets,
            s.lpips,
            cfg.evaluate,
            FeatureCache(paths.eval_cache),
            out,
            segmenter=s.segmenter,
            amp=cfg.generate.amp,  # the baseline in the precision vid2vid was generated in
        )
        systems = {"vid2vid": paths.results / video_id / "frames", "baseline": out / "baseline"}
        if s.landmarker is not None:
            landmarks = score_landmarks(s.landmarker, paths, video, frames, systems)
        maps = get_task(s.task).maps
        if maps == "edges":
            edge_folder = paths.edge_maps / video_id
            edges = score_edges(edge_folder, paths.frames / video_id, frames, systems, cfg.evaluate.edge_tolerance)
    return scores, landmarks, edges


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Evaluate every generated video; returns the metrics of ``metrics/evaluate.json``."""
    ec = cfg.evaluate
    with stage_run("evaluate", cfg, paths, ("evaluate",)) as tracker, scoped_cache():  # serial tasks reuse the nets
        started = time.perf_counter()
        s = scorers(cfg, paths)
        task, nets, lpips, segmenter, landmarker = s.task, s.nets, s.lpips, s.segmenter, s.landmarker
        dataset = ClipDataset(paths=paths, split="test", task=task, clip_length=1, with_flow=False)
        entries = {v.video_id: v for v in dataset.videos}
        paths.evaluation.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(paths.evaluation)
        items: list[tuple[str, int, float]] = []
        for video_id in generated_videos(paths):
            if video_id not in entries:
                raise ValueError(
                    f"{paths.results / video_id}: no test video {video_id!r} in {paths.frames_index}; "
                    "results/ is stale: rerun `dvc repro generate`"
                )
            meta = json.loads((paths.results / video_id / "meta.json").read_text(encoding="utf-8"))
            if meta.get("task", task) != task:
                raise ValueError(
                    f"{paths.results / video_id}: generated for task {meta['task']!r}, but the baseline was trained "
                    f"for {task!r}; rerun `dvc repro` so both use train.task"
                )
            items.append((video_id, min(int(meta["frames"]), ec.max_frames or int(meta["frames"])), float(meta["fps"])))
        outcomes = map_videos(
            functools.partial(evaluate_task, cfg, paths),
            items,
            names=[video_id for video_id, _, _ in items],
            desc="evaluate",
            **cfg.orchestrate.map_options(),
            gpu=gpu_need(True, ec.device),
        )
        scored = [scores for scores, _, _ in outcomes]
        landmarks = {item[0]: marks for item, (_, marks, _) in zip(items, outcomes, strict=True) if marks is not None}
        edge_counts = {
            item[0]: counts for item, (_, _, counts) in zip(items, outcomes, strict=True) if counts is not None
        }
        report_videos = [
            ReportVideo(
                video_id, paths.evaluation / video_id / "compare.webm", "input maps | real | vid2vid | baseline"
            )
            for video_id, _, _ in items[: ec.report_videos]
        ]
        prefs = preferences(scored, SYSTEMS[0], SYSTEMS[1], ec.segment_frames, ec.tie_tolerance)
        metrics = summarise(scored, nets, prefs) | landmark_metrics(landmarks) | edge_metrics(edge_counts)
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        weights = {net.metric: {**net.weights.as_dict(), "preprocess": net.preprocess} for net in nets}
        weights["lpips"] = {**lpips.weights.as_dict(), "preprocess": "frames in [-1, 1] at their own size"}
        if segmenter is not None:
            weights["segmenter"] = {
                **segmenter.weights,
                "preprocess": "frames at their own size; label maps of segment",
            }
        if landmarker is not None:
            weights["landmarks"] = {**landmarker.weights.as_dict(), "preprocess": "frames at their own size"}
        if edge_counts:
            weights["edges"] = {
                "name": "OpenCV Canny (no weights)",
                "preprocess": f"the edges stage's settings (meta.json); match within {ec.edge_tolerance} px",
            }
        write_metrics(paths.evaluate_metrics, metrics)
        write_text(paths.evaluate_plots, per_frame_csv(scored))
        write_json(
            paths.evaluation / "summary.json",
            {
                "metrics": split_timing(metrics)[0],  # durations: metrics/timing (same run, same bytes)
                "weights": weights,
                "preferences": {k: p.as_dict() for k, p in prefs.items()},
                "models": {
                    "vid2vid": project_relative(paths.model_dir(2) / "model.pt", paths.root),
                    "baseline": project_relative(paths.baseline_dir, paths.root),
                },
            },
        )
        training = _training_curves(paths)
        write_bytes(paths.evaluation / TRAINING_PNG, training_png(training))
        report = render(
            ReportData(
                title="v2v evaluation: vid2vid vs the per-frame baseline",
                systems=SYSTEMS,
                metrics=metrics,
                weights=weights,
                preferences={k: p.as_dict() for k, p in prefs.items()},
                dimension_text={name: text for name, _, text in DIMENSIONS},
                per_frame=pooled_series(scored),
                training=training,
                videos=report_videos,
                notes=[
                    f"{len(scored)} held-out videos, {metrics['frames']} frames; preference questions are "
                    f"{ec.segment_frames}-frame segments, ties within {ec.tie_tolerance:.0%}.",
                    "FD of clips uses every window of "
                    f"{ec.clip_frames} frames every {ec.clip_stride}; with fewer samples than feature dimensions "
                    "the distances are biased upward (compare runs with equal sample counts only).",
                ],
            )
        )
        write_text(paths.evaluation / "report.html", report)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)}, on_parent=True)
        tracker.set_tags({f"v2v.weights.{name}": info["name"] for name, info in weights.items()})
        tracker.log_artifact(paths.evaluation / "report.html", "report")
        tracker.log_artifact(paths.evaluation / "summary.json", "report")
        tracker.log_artifact(paths.evaluation / TRAINING_PNG, "report")
        tracker.log_artifact(paths.evaluate_plots, "report")  # per-frame series: `v2v ab RUN_A RUN_B` reads them
        log.info("evaluate: %d videos in %.1f s", len(scored), metrics["seconds"])
    return metrics


def _training_curves(paths: ProjectPaths) -> dict[str, dict[str, list[float]]]:
    runs: dict[str, dict[str, list[float]]] = {}
    files = {f"vid2vid scale {s}": paths.train_plots(s) for s in range(3)} | {"baseline": paths.baseline_plots}
    for name, path in files.items():
        if not path.is_file():
            continue
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        rows = [r for r in rows if r.get("loss/g_total") and r.get("loss/d_total")]
        runs[name] = {
            "step": [float(r["step"]) for r in rows],
            "loss": [float(r["loss/g_total"]) for r in rows],
            "d_loss": [float(r["loss/d_total"]) for r in rows],
        }
    return runs


def main() -> None:
    stage_main("evaluate", run)


if __name__ == "__main__":
    main()
