"""Does v2v learn video-to-video synthesis on a CPU? Train the street task for a fixed budget, then judge it.

    .venv/bin/python benchmarks/learning.py [--minutes 60] [--work bench-out/learning]

In a fresh project folder, every stage of the pipeline runs as DVC would run it (``python -m
v2v.stages.<name>``): the embedded street sample (``--train-clips`` training and ``--test-clips``
held-out clips of 40 frames at 256x128), ground-truth label and instance maps, DIS flow, the
segmentation judge, the three progressive scales of vid2vid, the per-frame baseline on the same
schedule, generation of the held-out clips and the evaluation. The schedule fits the budget: after
the data stages and the judge, a short probe measures seconds per step of vid2vid and the baseline
at every scale, and the epochs of each scale are set so that training ends with time left for
generation and evaluation (``--schedule FILE`` reuses the schedule of an earlier result instead,
so two code versions train for exactly the same steps).

Printed: segmentation consistency (mIoU, pixel accuracy) of vid2vid, the baseline and the real
frames, warping error (vid2vid, baseline, real) and tOF, then the line
``learning: vid2vid_miou=X baseline_miou=Y real_miou=Z vid2vid_warp=A baseline_warp=B``.
Written: ``--out`` (JSON: those numbers, the commit, the minutes, the schedule and every param
override) and ``--strip`` (PNG: labels | real | vid2vid | baseline at four time points).

``--code DIR`` runs the training and generation stages from another checkout (e.g. an older
commit in a git worktree) with that checkout's own ``params.yaml`` under the same overrides, while
the data stages, the judge and the evaluation stay this checkout's: the before/after comparison of
a change to the objective.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from v2v.data.labels import colorize  # noqa: E402
from v2v.io.frames import frame_name, frame_paths  # noqa: E402
from v2v.io.maps import read_label, read_rgb, write_rgb  # noqa: E402

DATA_STAGES = ("sample", "extract", "segment", "edges", "pose", "flow", "segmenter")
CODE_STAGES = ("train_scale0", "train_scale1", "train_scale2", "train_baseline", "generate")
SHARE = (0.5, 0.25, 0.25)  # of the training time: scales 0, 1, 2 (each with its baseline steps)
# (start_frames, max_frames) per scale: rollouts from 2 real frames that double up to 24 generated frames (the
# held-out clips' first 24 and more), trained train.chunk_frames at a time on the model's own outputs
CLIP = ((6, 26), (6, 26), (6, 26))
DOUBLINGS = 3  # 6 → 12 → 24 (→ the cap of 26) over the first three quarters of a scale's epochs
SAMPLES_PER_VIDEO = 4  # clips per training video per epoch
RESERVE = 0.08  # of the budget, kept for generation and evaluation (at least 3 minutes)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """What the benchmark changes in params.yaml, before the schedule."""
    return {
        "sample": {
            "seed": args.sample_seed,
            "scenes": ["street"],
            "train_clips_per_scene": args.train_clips,
            "test_clips_per_scene": args.test_clips,
        },
        "model": {"feature_channels": 0},  # the method itself; multimodal synthesis is not what is judged here
        "train": {
            "task": "street",
            "clip_prefix": "",
            "log_every": 10,
            "sample_every": 100_000,
            "checkpoint_every": 200,
        },
        "generate": {"clip_prefix": "", "seeds": [], "manipulate": [], "continue_from": 0},
        "evaluate": {"video_backbones": [], "report_videos": 2},
        "tracking": {"enabled": False},
    }


def settings(pairs: list[str]) -> dict[str, Any]:
    """``--set section.key=value`` (YAML values) as a params layer: an A/B of one setting on equal schedules."""
    layer: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot and section and name):
            sys.exit(f"--set {pair!r}: expected section.key=value")
        layer.setdefault(section, {})[name] = yaml.safe_load(value)
    return layer


def merged(base: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def run_stage(name: str, root: Path, params: Path, code: Path) -> float:
    """``python -m v2v.stages.<name>`` with ``code`` first on the path; returns its seconds."""
    env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", f"v2v.stages.{name}", "--root", str(root), "--params", str(params)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"stage {name} failed ({code}):\n{result.stderr[-4000:]}")
    print(f"  {name:16} {seconds:7.1f} s", flush=True)
    return seconds


Times = list[tuple[float, float]]  # (vid2vid, baseline) seconds per scale


def probe(root: Path, params: dict[str, Any], train_videos: int, scales: int = 3) -> tuple[Times, Times]:
    """Seconds per step and extra seconds per clip (vid2vid, baseline) at each of ``scales`` scales, on rollouts of
    two chunks: the median time of the steps inside a clip, and how much longer a clip's first step takes (its
    loading and set-up: +0.37 s on the face profile at 80×64, a quarter of the run's time on 1-window clips, which
    a median of steps alone never saw). The run's first step is left out."""
    from v2v.config import config_from_dict
    from v2v.stages.train import training_dataset
    from v2v.training.loop import train_scale

    per_step: Times = []
    per_clip: Times = []
    previous: dict[bool, Path | None] = {False: None, True: None}
    videos = min(train_videos, 3)
    for scale in range(scales):
        frames = 2 + 2 * params["train"]["chunk_frames"]  # two full chunks per clip: the steps of a rollout
        probe_params = merged(
            params,
            {
                f"train_scale{scale}": {
                    "epochs": 1,
                    "decay_epochs": 0,
                    "samples_per_video": 3,
                    "start_frames": frames,
                    "max_frames": frames,
                    "double_every": 0,
                    "freeze_coarse_epochs": 0,
                }
            },
        )
        probe_params["train"] = {**probe_params["train"], "log_every": 1}
        cfg = config_from_dict(probe_params)
        times, extras = [], []
        for per_frame in (False, True):
            dataset = training_dataset(cfg, _paths(root), scale)
            dataset.videos = dataset.videos[:videos]
            out = root / "probe" / f"{'baseline' if per_frame else 'vid2vid'}{scale}"
            stamps: list[float] = []
            train_scale(
                cfg,
                scale,
                dataset,
                out,
                out / "work",
                previous=previous[per_frame],
                log_metrics=lambda metrics, step, stamps=stamps: stamps.append(time.perf_counter()),
                progress=False,
                per_frame=per_frame,
            )
            previous[per_frame] = out / "model.pt"
            steps = [b - a for a, b in itertools.pairwise(stamps)]  # steps 2, 3, ...
            if params["train"]["chunk_frames"] > 0:  # two steps per clip: its second, then the next clip's first
                times.append(statistics.median(steps[0::2]))
                extras.append(max(0.0, statistics.median(steps[1::2]) - times[-1]))
            else:  # the whole clip in one step: every step starts a clip
                times.append(statistics.median(steps))
                extras.append(0.0)
        per_step.append((times[0], times[1]))
        per_clip.append((extras[0], extras[1]))
        print(
            f"  probe scale {scale}: vid2vid {times[0]:.2f} s/step + {extras[0]:.2f} s/clip, "
            f"baseline {times[1]:.2f} s/step + {extras[1]:.2f} s/clip",
            flush=True,
        )
    shutil.rmtree(root / "probe")
    return per_step, per_clip


def scale_schedule(scale: int, epochs: int) -> dict[str, Any]:
    start, cap = CLIP[scale]
    return {
        "epochs": epochs,
        "decay_epochs": epochs // 2,  # the reference: as many decay epochs as constant ones
        "samples_per_video": SAMPLES_PER_VIDEO,
        "start_frames": start,
        "max_frames": cap,
        "double_every": max(1, epochs // (DOUBLINGS + 1)) if cap > start else 0,
        "freeze_coarse_epochs": epochs // 4 if scale else 0,  # the reference fixes the coarse scales first
    }


def steps_of(schedule: dict[str, Any], train_videos: int, context: int, chunk: int) -> int:
    """Optimiser steps of one scale's schedule: every clip is a rollout of ``rollout_windows`` chunks."""
    from v2v.training.loop import rollout_windows
    from v2v.training.schedule import ClipSchedule

    clips = ClipSchedule(schedule["start_frames"], schedule["double_every"], schedule["max_frames"])
    per_epoch = train_videos * schedule["samples_per_video"]
    return sum(per_epoch * len(rollout_windows(clips.frames_at(e), context, chunk)) for e in range(schedule["epochs"]))


def seconds_of(
    scale: int, epochs: int, per_step: float, per_clip: float, train_videos: int, context: int, chunk: int
) -> float:
    """Training seconds of ``epochs`` of one scale's schedule: its steps, plus the extra time of each clip's start."""
    schedule = scale_schedule(scale, epochs)
    clips = epochs * train_videos * schedule["samples_per_video"]
    return steps_of(schedule, train_videos, context, chunk) * per_step + clips * per_clip


def plan(
    seconds: float,
    per_step: Times,
    per_clip: Times,
    train_videos: int,
    context: int,
    chunk: int,
    equal_steps: bool = False,
) -> dict[str, Any]:
    """Epochs per probed scale so that vid2vid plus the baseline (same epochs, same steps and clips) fill ``seconds``;
    the scales share the time as ``SHARE`` does (renormalised when there are fewer than three), or, with
    ``equal_steps``, in proportion to their step times: every scale then trains as many steps, as the reference's
    progressive recipe trains each scale for the same epochs. Epochs are whole, so what a scale leaves of its share
    passes on to the next (a 60-minute run planned 38 minutes of training in 49 without that)."""
    schedule: dict[str, Any] = {}
    weights = [v + b for v, b in per_step] if equal_steps else SHARE[: len(per_step)]
    shares = [weight / sum(weights) for weight in weights]
    left = 0.0  # of the earlier scales' shares
    for scale, (share, step, clip) in enumerate(zip(shares, per_step, per_clip, strict=True)):
        allowed = share * seconds + left
        epochs = 2
        while seconds_of(scale, epochs + 1, sum(step), sum(clip), train_videos, context, chunk) <= allowed:
            epochs += 1
        left = allowed - seconds_of(scale, epochs, sum(step), sum(clip), train_videos, context, chunk)
        schedule[f"train_scale{scale}"] = scale_schedule(scale, epochs)
    return schedule


def _paths(root: Path) -> Any:
    from v2v.paths import ProjectPaths

    return ProjectPaths.at(root)


def strip(root: Path, out: Path, times: int = 4) -> None:
    """labels | real | vid2vid | baseline, one row per time point, for the first held-out video."""
    paths = _paths(root)
    video = sorted(p.parent.name for p in paths.results.glob("*/meta.json"))[0]
    frames = frame_paths(paths.frames / video)
    picks = np.linspace(0, len(frames) - 1, times).round().astype(int)
    rows = []
    for t in picks:
        tiles = [
            colorize(read_label(paths.segment_maps / video / "label" / frame_name(t))),
            read_rgb(frames[t]),
            read_rgb(paths.results / video / "frames" / frame_name(t)),
            read_rgb(paths.evaluation / video / "baseline" / frame_name(t)),
        ]
        rows.append(np.concatenate(tiles, axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rgb(out, np.concatenate(rows, axis=0))


def commit_of(code: Path) -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "v2v"], cwd=code, capture_output=True, text=True
    ).stdout.strip()
    return head + ("-dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of the whole run")
    parser.add_argument("--work", type=Path, default=REPO / "bench-out" / "learning", help="scratch project folder")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose training and generation run")
    parser.add_argument("--schedule", type=Path, help="reuse the schedule of this earlier result JSON")
    parser.add_argument("--train-clips", type=int, default=6, help="training clips of the street sample")
    parser.add_argument("--test-clips", type=int, default=2, help="held-out clips")
    parser.add_argument(
        "--sample-seed", type=int, default=0, help="seed of the street sample (another seed: other clips, held out)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="change a param")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "learning.json")
    parser.add_argument("--strip", type=Path, default=REPO / "benchmarks" / "results" / "learning.png")
    args = parser.parse_args()
    started = time.perf_counter()
    budget = args.minutes * 60
    code = args.code.resolve()
    root = args.work.resolve() / "project"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    own = merged(yaml.safe_load((REPO / "params.yaml").read_text()), overrides(args), settings(args.set))
    if code != REPO:  # the other code's generation ran without this option: its baseline as it would have
        own["generate"]["batch_norm"] = "running"
    (root / "params.yaml").write_text(yaml.safe_dump(own, sort_keys=False))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    print(f"learning benchmark: {args.minutes:g} min budget, project {root}, training code {code}", flush=True)
    for name in DATA_STAGES:
        run_stage(name, root, root / "params.yaml", REPO)

    if args.schedule:
        schedule = json.loads(args.schedule.read_text())["schedule"]
    else:
        per_step, per_clip = probe(root, own, args.train_clips)
        left = budget - (time.perf_counter() - started) - max(180.0, RESERVE * budget)
        schedule = plan(left, per_step, per_clip, args.train_clips, context=2, chunk=own["train"]["chunk_frames"])
    code_params = merged(
        yaml.safe_load((code / "params.yaml").read_text()), overrides(args), settings(args.set), schedule
    )
    (root / "params.code.yaml").write_text(yaml.safe_dump(code_params, sort_keys=False))
    for name in CODE_STAGES:
        run_stage(name, root, root / "params.code.yaml", code)
    run_stage("evaluate", root, root / "params.yaml", REPO)
    minutes = (time.perf_counter() - started) / 60

    paths = _paths(root)
    metrics = json.loads(paths.evaluate_metrics.read_text())
    steps = {s: json.loads(paths.train_metrics(s).read_text())["steps"] for s in range(3)}
    timing = paths.root / "metrics" / "timing"
    seconds = sum(json.loads((timing / f"train_scale{s}.json").read_text())["seconds"] for s in range(3))
    baseline_steps = json.loads(paths.baseline_metrics.read_text())["steps"]
    baseline_seconds = json.loads((timing / "train_baseline.json").read_text())["seconds"]
    first_frames = {
        json.loads(meta.read_text()).get("first_frames", "hallucinate") for meta in paths.results.glob("*/meta.json")
    }
    result = {
        "vid2vid_miou": metrics["seg_miou"],
        "baseline_miou": metrics["seg_miou_baseline"],
        "real_miou": metrics["seg_miou_real"],
        "vid2vid_warp": metrics["warp_error"],
        "baseline_warp": metrics["warp_error_baseline"],
        "real_warp": metrics["warp_error_real"],
        "vid2vid_accuracy": metrics["seg_accuracy"],
        "baseline_accuracy": metrics["seg_accuracy_baseline"],
        "real_accuracy": metrics["seg_accuracy_real"],
        "vid2vid_tof": metrics["tof"],
        "baseline_tof": metrics["tof_baseline"],
        "commit": commit_of(code),
        "minutes": round(minutes, 1),
        "budget_minutes": args.minutes,
        "steps": steps,
        "steps_per_minute": {
            "vid2vid": round(60 * sum(steps.values()) / seconds, 2),
            "baseline": round(60 * baseline_steps / baseline_seconds, 2),
        },
        "generated_frames_per_step": code_params["train"].get("chunk_frames", 0) or "whole clip",
        "first_frames": ",".join(sorted(first_frames)),
        "schedule": schedule,
        "params": merged(overrides(args), settings(args.set), schedule),
    }
    rows = [
        ("seg mIoU (higher is better)", "miou"),
        ("seg pixel accuracy", "accuracy"),
        ("warping error (lower is better)", "warp"),
    ]
    print(f"\n{'':34}{'vid2vid':>10}{'baseline':>10}{'real':>10}")
    for title, key in rows:
        print(f"{title:34}" + "".join(f"{result[f'{s}_{key}']:10.4g}" for s in ("vid2vid", "baseline", "real")))
    print(f"{'tOF (lower is better)':34}{result['vid2vid_tof']:10.4f}{result['baseline_tof']:10.4f}{'':>10}")
    print(f"steps per scale {steps}, {minutes:.1f} min in all, training code {result['commit']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    strip(root, args.strip)
    print(
        f"learning: vid2vid_miou={result['vid2vid_miou']:.4f} baseline_miou={result['baseline_miou']:.4f} "
        f"real_miou={result['real_miou']:.4f} vid2vid_warp={result['vid2vid_warp']:.4g} "
        f"baseline_warp={result['baseline_warp']:.4g}"
    )


if __name__ == "__main__":
    main()
