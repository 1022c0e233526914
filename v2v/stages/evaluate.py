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
import io
import itertools
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from v2v.config import Config, EvaluateConfig
from v2v.data.clips import ClipDataset
from v2v.data.tasks import get_task
from v2v.dvcfile import dvc_md5
from v2v.eval.features import FeatureNet, i3d_feature_net, image_feature_net, video_feature_net
from v2v.eval.landmarks import landmark_consistency, pooled
from v2v.eval.perceptual import LPIPS
from v2v.eval.preference import Preference
from v2v.eval.report import ReportData, ReportVideo, render
from v2v.eval.scoring import DIMENSIONS, FeatureCache, Scorer, VideoScores, distances, preferences, series
from v2v.eval.segmentation import Segmenter, load_segmenter
from v2v.generation.pictures import condition_to_rgb, to_rgb
from v2v.generation.synthesis import APPEARANCE_SEED, SynthesisModel, generate_stream, load_model
from v2v.io.atomic import atomic_dir, remove_stale_temporaries, write_json, write_text
from v2v.io.frames import frame_paths
from v2v.io.maps import read_label, read_rgb, write_rgb
from v2v.io.video import write_video
from v2v.maps.face import LANDMARKS_FILE, FaceLandmarker, from_json
from v2v.ops.device import resolve_device
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.tracking import stage_run

log = logging.getLogger(__name__)
SYSTEMS = ("vid2vid", "baseline")


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


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Evaluate every generated video; returns the metrics of ``metrics/evaluate.json``."""
    ec = cfg.evaluate
    with stage_run("evaluate", cfg, paths, ("evaluate",)) as tracker:
        started = time.perf_counter()
        device = resolve_device(ec.device, "evaluate.device")
        baseline = load_model(paths.baseline_dir / "model.pt", device, cfg.generate.batch_norm)  # as vid2vid
        baseline_config = baseline.config
        if not baseline_config.get("per_frame"):
            raise ValueError(
                f"{paths.baseline_dir / 'model.pt'}: not a per-frame baseline; rerun `dvc repro train_baseline`"
            )
        task = baseline_config["train"]["task"]
        nets = feature_nets(ec, device)
        lpips = LPIPS(ec.lpips_weights).to(device)
        maps = get_task(task).maps
        segmenter = load_segmenter(paths.segmenter_dir / "model.pt", device) if maps == "segment" else None
        landmarker = FaceLandmarker(cfg.face.predictor, upsample=cfg.face.upsample) if maps == "face" else None
        landmarks: dict[str, dict[str, dict[str, Any]]] = {}  # video → system → landmark consistency
        dataset = ClipDataset(paths=paths, split="test", task=task, clip_length=1, with_flow=False)
        entries = {v.video_id: v for v in dataset.videos}
        cache = FeatureCache(paths.eval_cache)
        paths.evaluation.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(paths.evaluation)
        scored: list[VideoScores] = []
        report_videos: list[ReportVideo] = []
        for video_id in tqdm(generated_videos(paths), desc="evaluate", unit="video"):
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
            frames = min(int(meta["frames"]), ec.max_frames or int(meta["frames"]))
            with atomic_dir(paths.evaluation / video_id) as out:
                scores = _evaluate_video(
                    dataset,
                    entries[video_id],
                    frames,
                    float(meta["fps"]),
                    task,
                    baseline,
                    nets,
                    lpips,
                    ec,
                    cache,
                    out,
                    segmenter=segmenter,
                    amp=cfg.generate.amp,  # the baseline in the precision vid2vid was generated in
                )
                if landmarker is not None:
                    landmarks[video_id] = score_landmarks(
                        landmarker,
                        paths,
                        entries[video_id],
                        frames,
                        {"vid2vid": paths.results / video_id / "frames", "baseline": out / "baseline"},
                    )
            scored.append(scores)
            if len(report_videos) < ec.report_videos:
                report_videos.append(
                    ReportVideo(
                        video_id, paths.evaluation / video_id / "compare.webm", "input maps | real | vid2vid | baseline"
                    )
                )
        prefs = preferences(scored, SYSTEMS[0], SYSTEMS[1], ec.segment_frames, ec.tie_tolerance)
        metrics = summarise(scored, nets, prefs) | landmark_metrics(landmarks)
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
        write_json(paths.evaluate_metrics, metrics)
        write_text(paths.evaluate_plots, per_frame_csv(scored))
        write_json(
            paths.evaluation / "summary.json",
            {
                "metrics": metrics,
                "weights": weights,
                "preferences": {k: p.as_dict() for k, p in prefs.items()},
                "models": {"vid2vid": str(paths.model_dir(2) / "model.pt"), "baseline": str(paths.baseline_dir)},
            },
        )
        report = render(
            ReportData(
                title="v2v evaluation: vid2vid vs the per-frame baseline",
                systems=SYSTEMS,
                metrics=metrics,
                weights=weights,
                preferences={k: p.as_dict() for k, p in prefs.items()},
                dimension_text={name: text for name, _, text in DIMENSIONS},
                per_frame=_pooled_series(scored),
                training=_training_curves(paths),
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
        tracker.log_artifact(paths.evaluate_plots, "report")  # per-frame series: `v2v ab RUN_A RUN_B` reads them
        log.info("evaluate: %d videos in %.1f s", len(scored), metrics["seconds"])
    return metrics


def _evaluate_video(
    dataset: ClipDataset,
    video: Any,
    frames: int,
    fps: float,
    task: str,
    baseline: SynthesisModel,
    nets: list[FeatureNet],
    lpips: LPIPS,
    ec: EvaluateConfig,
    cache: FeatureCache,
    out: Path,
    segmenter: Segmenter | None = None,
    amp: bool = False,
) -> VideoScores:
    """Generate the baseline for one video and score both systems, streaming; writes into ``out``."""
    results = dataset.paths.results / video.video_id
    scorer = Scorer(
        nets=nets,
        lpips=lpips,
        systems=SYSTEMS,
        video_id=video.video_id,
        clip_frames=ec.clip_frames,
        clip_stride=ec.clip_stride,
        batch_size=ec.batch_size,
        cache=cache,
        video_hash=dvc_md5(dataset.paths.frames / video.video_id),
        segmenter=segmenter,
    )
    labels = dataset.paths.segment_maps / video.video_id / "label"  # input label ids (segmentation consistency)
    device = next(baseline.generator.parameters()).device
    # every frame's clip is read once: the baseline's inputs and the scoring take it from one stream
    clips = (dataset.load_clip(video, t, 1) for t in range(frames))
    for_conditions, for_features, for_scoring = itertools.tee(clips, 3)  # consumed in step: one frame buffered
    features = None
    if baseline.feature_bank is not None:
        features = (baseline.features(c["instance"][0], APPEARANCE_SEED) for c in for_features)
    conditions = (c["label"][0] for c in for_conditions)
    stream = generate_stream(baseline.generator, conditions, device, per_frame=True, features=features, amp=amp)

    def compare_frames() -> Iterator[np.ndarray]:
        """Score frame by frame; yields the side-by-side frames that compare.webm encodes as they come."""
        for t, (clip, result) in enumerate(zip(for_scoring, stream, strict=True)):
            real = to_rgb(clip["image"][0])
            fake_file = results / "frames" / f"{t:06d}.png"
            if not fake_file.is_file():
                raise FileNotFoundError(f"{fake_file}: missing generated frame; rerun `dvc repro generate`")
            fakes = {"vid2vid": read_rgb(fake_file), "baseline": to_rgb(result["fake"])}
            write_rgb(out / "baseline" / f"{t:06d}.png", fakes["baseline"])
            label_file = labels / f"{t:06d}.png"
            scorer.add(real, fakes, read_label(label_file) if label_file.is_file() else None)
            yield np.concatenate([condition_to_rgb(clip["label"][0], task), real, *fakes.values()], 1)

    frames_iter = tqdm(compare_frames(), total=frames, desc=video.video_id, leave=False)
    write_video(out / "compare.webm", frames_iter, fps=fps, codec="vp9")
    files = sorted((out / "baseline").glob("*.png"))
    write_video(out / "baseline.webm", (read_rgb(f) for f in files), fps=fps, codec="vp9")
    return scorer.finish()


def summarise(videos: list[VideoScores], nets: list[FeatureNet], prefs: dict[str, Preference]) -> dict[str, Any]:
    """The numbers of ``metrics/evaluate.json`` (vid2vid unsuffixed, other systems as ``<metric>_<system>``)."""
    metrics: dict[str, Any] = {"videos": len(videos), "frames": sum(v.frames for v in videos)}
    metrics.update(distances(videos, nets, SYSTEMS))
    for key in ("lpips", "warp_error", "tof", "tlp"):
        for system in (*SYSTEMS, "real"):
            values = [x for v in videos for x in series(v, key, system)]
            if values:
                metrics[key if system == SYSTEMS[0] else f"{key}_{system}"] = float(np.mean(values))
    metrics.update(segmentation_metrics(videos))
    for name, pref in prefs.items():
        metrics[f"preference_{name}"] = pref.rate
        metrics[f"preference_{name}_low"] = pref.low
        metrics[f"preference_{name}_high"] = pref.high
        metrics[f"preference_{name}_questions"] = pref.questions
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in metrics.items()}


def score_landmarks(
    landmarker: FaceLandmarker,  # the face stage's detector + predictor
    paths: ProjectPaths,  # project locations
    video: Any,  # the test video's entry
    frames: int,  # frames evaluated
    generated: dict[str, Path],  # system → folder of its NNNNNN.png frames
) -> dict[str, dict[str, Any]]:
    """Landmark consistency of each system and of the real frames against the landmarks the sketches were drawn from."""
    record = paths.face_maps / video.video_id / LANDMARKS_FILE
    if not record.is_file():
        raise FileNotFoundError(f"{record}: missing; run the face stage (dvc repro face)")
    reference = from_json(json.loads(record.read_text(encoding="utf-8")))[:frames]
    real = (read_rgb(p) for p in frame_paths(paths.frames / video.video_id)[:frames])
    out = {"real": landmark_consistency(landmarker, real, reference)}
    for system, folder in generated.items():
        fakes = (read_rgb(folder / f"{t:06d}.png") for t in range(frames))
        out[system] = landmark_consistency(landmarker, fakes, reference)
    return out


def landmark_metrics(videos: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``landmark_error`` / ``landmark_detected`` of vid2vid, ``_baseline`` and ``_real``, pooled and per video."""
    if not videos:
        return {}
    out: dict[str, Any] = {}
    for system in (*SYSTEMS, "real"):
        suffix = "" if system == SYSTEMS[0] else f"_{system}"
        pooled_scores = pooled([scores[system] for scores in videos.values()])
        for key in ("landmark_error", "landmark_detected"):  # null (not NaN) when no face was found
            value = float(pooled_scores[key])
            out[f"{key}{suffix}"] = round(value, 5) if np.isfinite(value) else None
    out["landmark_per_video"] = {
        video: {
            f"{key}_{system}": round(float(s[key]), 5) if np.isfinite(float(s[key])) else None
            for system, s in scores.items()
            for key in ("landmark_error", "landmark_detected")
        }
        for video, scores in videos.items()
    }
    return out


def segmentation_metrics(videos: list[VideoScores]) -> dict[str, Any]:
    """``seg_miou`` / ``seg_accuracy`` of vid2vid, ``_baseline`` and ``_real`` over all videos, and per video."""
    meters = [v.confusion for v in videos if v.confusion is not None and v.confusion.matrices]
    if not meters:
        return {}
    pooled = meters[0]
    for meter in meters[1:]:
        pooled = pooled.merged(meter)
    out: dict[str, Any] = {}
    for system in (*SYSTEMS, "real"):
        suffix = "" if system == SYSTEMS[0] else f"_{system}"
        if system in pooled.matrices:
            scores = pooled.scores(system)
            out[f"seg_miou{suffix}"], out[f"seg_accuracy{suffix}"] = scores["miou"], scores["accuracy"]
    out["seg_per_video"] = {
        v.video_id: {
            f"{name}_{system}": round(value, 5)
            for system in v.confusion.matrices
            for name, value in v.confusion.scores(system).items()
        }
        for v in videos
        if v.confusion is not None and v.confusion.matrices
    }
    return out


def per_frame_csv(videos: list[VideoScores]) -> str:
    """One row per evaluated frame: ``index, video, frame`` and every per-frame series (blank where undefined)."""
    keys = sorted(
        {f"lpips_{s}" for v in videos for s in v.lpips}
        | {f"seg_error_{s}" for v in videos for s in v.segmentation}
        | {k for v in videos for k in v.temporal}
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "video", "frame", *keys])
    index = 0
    for v in videos:
        columns = {
            **{f"lpips_{s}": values for s, values in v.lpips.items()},
            **{f"seg_error_{s}": values for s, values in v.segmentation.items()},
            **v.temporal,
        }
        for t in range(v.frames):
            row: list[Any] = [index, v.video_id, t]
            for key in keys:
                values = columns.get(key, [])
                per_frame = key.startswith(("lpips_", "seg_error_"))
                offset = t if per_frame else t - 1  # temporal series start at the pair (0, 1)
                row.append(f"{values[offset]:.6g}" if 0 <= offset < len(values) else "")
            writer.writerow(row)
            index += 1
    return buffer.getvalue()


def _pooled_series(videos: list[VideoScores]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for v in videos:
        for system, values in v.lpips.items():
            out.setdefault(f"lpips_{system}", []).extend(values)
        for key, values in v.temporal.items():
            if key != "valid_fraction":
                out.setdefault(key, []).extend(values)
    return out


def _training_curves(paths: ProjectPaths) -> dict[str, dict[str, list[float]]]:
    runs: dict[str, dict[str, list[float]]] = {}
    files = {f"vid2vid scale {s}": paths.train_plots(s) for s in range(3)} | {"baseline": paths.baseline_plots}
    for name, path in files.items():
        if not path.is_file():
            continue
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        rows = [r for r in rows if r.get("loss/g_total")]
        runs[name] = {"step": [float(r["step"]) for r in rows], "loss": [float(r["loss/g_total"]) for r in rows]}
    return runs


def main() -> None:
    stage_main("evaluate", run)


if __name__ == "__main__":
    main()
