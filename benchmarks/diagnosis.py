"""Why does vid2vid score what it scores? Probe a model the learning benchmark trained, without retraining.

    .venv/bin/python benchmarks/diagnosis.py [--project bench-out/learning/project] [--out benchmarks/results/diagnosis.json]

On the held-out street clips of a finished ``benchmarks/learning.py`` project, every frame judged by
the project's segmenter against its input label map (pooled over the clips, per frame index):

* (a) vid2vid's per-frame segmentation mIoU and its mean occlusion mask (1 = hallucinated, 0 = warped)
  over the clip, for every first-frame policy: ``single_g`` (the per-frame model's frames 0..K-1, the
  reference's street recipe), ``real`` (the real frames 0..K-1) and ``hallucinate`` (vid2vid from labels
  alone) — (b) in the issue's words;
* the per-frame baseline on the same frames;
* (c) the copy ceiling: real frame 0 carried forward with the ground-truth flow (warped t times), judged:
  what a generator that only warps its first frame reaches;
* (d) the scale-1 model's output upsampled ×2 against the scale-2 model's (both ``single_g``).

Printed as a table of mIoU over frame ranges (0-1, 2-9, 10-29, 30+, all) and written as JSON with the
per-frame curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from v2v.data.clips import ClipDataset  # noqa: E402
from v2v.eval.segmentation import ConfusionMeter, confusion_scores, load_segmenter  # noqa: E402
from v2v.generation.pictures import to_rgb  # noqa: E402
from v2v.generation.synthesis import SynthesisModel, generate_stream, load_model, video_frames, video_inputs  # noqa: E402
from v2v.io.frames import frame_name  # noqa: E402
from v2v.io.maps import read_label  # noqa: E402
from v2v.ops.warp import warp  # noqa: E402
from v2v.paths import ProjectPaths  # noqa: E402

RANGES = {"0-1": (0, 2), "2-9": (2, 10), "10-29": (10, 30), "30+": (30, 10**9), "all": (0, 10**9)}


class Judge:
    """Confusion matrices per system and frame index (pooled over the videos)."""

    def __init__(self, paths: ProjectPaths) -> None:
        self.segmenter = load_segmenter(paths.segmenter_dir / "model.pt", torch.device("cpu"))
        self.labels = paths.segment_maps
        self.frames: dict[str, dict[int, np.ndarray]] = {}

    def add(self, system: str, video: str, frames: Iterable[torch.Tensor]) -> None:
        per_frame = self.frames.setdefault(system, {})
        for t, frame in enumerate(frames):
            label = read_label(self.labels / video / "label" / frame_name(t))
            meter = ConfusionMeter(self.segmenter.classes)
            counts = meter.add(system, self.segmenter(to_rgb(frame)), label)
            per_frame[t] = per_frame.get(t, 0) + counts

    def report(self, system: str) -> dict[str, Any]:
        per_frame = self.frames[system]
        curve = [round(confusion_scores(per_frame[t])["miou"], 4) for t in sorted(per_frame)]
        ranges = {}
        for name, (a, b) in RANGES.items():
            picked = [per_frame[t] for t in per_frame if a <= t < b]
            ranges[name] = round(confusion_scores(sum(picked))["miou"], 4) if picked else None
        return {"miou": ranges, "per_frame": curve}


def masks_of(
    model: SynthesisModel, dataset: ClipDataset, video: Any, frames: int, first: list[torch.Tensor]
) -> list[float]:
    """Mean occlusion mask of every frame vid2vid generates after ``first`` (1: hallucinated, 0: warped)."""
    labels, features = video_inputs(model, dataset, video, frames)
    stream = generate_stream(model.generator, labels, torch.device("cpu"), first_frames=first, features=features)
    return [float(out["occlusion_mask"].mean()) for out in stream]


def copy_ceiling(dataset: ClipDataset, video: Any, frames: int) -> list[torch.Tensor]:
    """Real frame 0 warped forward with the ground-truth backward flow of every next frame."""
    current = dataset.load_clip(video, 0, 1)["image"]
    out = [current[0]]
    for t in range(1, frames):
        flow = dataset.load_clip(video, t, 1)["flow"]
        current = warp(current, flow)
        out.append(current[0])
    return out


def upsampled(
    model: SynthesisModel, first_model: SynthesisModel, dataset: ClipDataset, video: Any, frames: int
) -> list[torch.Tensor]:
    """The scale-1 model run at half the size (its training resolution), upsampled ×2."""
    labels, features = video_inputs(model, dataset, video, frames)
    small = (F.avg_pool2d(label[None], 2)[0] for label in labels)  # one-hot → class fractions, as downscale()
    first_labels, _ = video_inputs(first_model, dataset, video, 2)
    head = [
        out["fake"]
        for out in generate_stream(
            first_model.generator,
            (F.avg_pool2d(label[None], 2)[0] for label in first_labels),
            torch.device("cpu"),
            per_frame=True,
        )
    ]
    rest = generate_stream(model.generator, small, torch.device("cpu"), first_frames=head, features=features)
    made = [*head, *(out["fake"] for out in rest)]
    return [F.interpolate(f[None], scale_factor=2, mode="bilinear", align_corners=False)[0].clamp(-1, 1) for f in made]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=REPO / "bench-out" / "learning" / "project")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "diagnosis.json")
    args = parser.parse_args()
    paths = ProjectPaths.at(args.project.resolve())
    cpu = torch.device("cpu")
    torch.set_grad_enabled(False)
    model = load_model(paths.model_dir(2) / "model.pt", cpu)
    coarser = load_model(paths.model_dir(1) / "model.pt", cpu)
    baseline = load_model(paths.baseline_dir / "model.pt", cpu)
    dataset = ClipDataset(paths=paths, split="test", task="street", clip_length=1, with_flow=True)
    judge = Judge(paths)
    masks: dict[str, list[list[float]]] = {}
    for video in dataset.videos:
        frames = video.num_frames
        print(f"{video.video_id}: {frames} frames", flush=True)
        judge.add("real", video.video_id, (dataset.load_clip(video, t, 1)["image"][0] for t in range(frames)))
        labels, features = video_inputs(baseline, dataset, video, frames)
        per_frame = generate_stream(baseline.generator, labels, cpu, per_frame=True, features=features)
        judge.add("baseline", video.video_id, (out["fake"] for out in per_frame))
        for policy in ("single_g", "real", "hallucinate"):
            made = list(video_frames(model, dataset, video, frames, first_frames=policy, first_model=baseline))
            judge.add(f"vid2vid_{policy}", video.video_id, made)
            context = model.generator.num_frames - 1
            first = made[:context] if policy != "hallucinate" else []
            masks.setdefault(policy, []).append(masks_of(model, dataset, video, frames, first))
        judge.add("copy_ceiling", video.video_id, copy_ceiling(dataset, video, frames))
        judge.add("scale1_upsampled", video.video_id, upsampled(coarser, baseline, dataset, video, frames))
    result: dict[str, Any] = {system: judge.report(system) for system in judge.frames}
    for policy, per_video in masks.items():
        length = min(len(m) for m in per_video)
        result[f"vid2vid_{policy}"]["mean_occlusion_mask"] = [
            round(float(np.mean([m[t] for m in per_video])), 4) for t in range(length)
        ]
    learning = REPO / "benchmarks" / "results" / "learning.json"
    result["model"] = {
        "project": str(args.project),
        "learning_result": json.loads(learning.read_text()).get("commit") if learning.is_file() else None,
    }
    print(f"\n{'seg mIoU':22}" + "".join(f"{name:>8}" for name in RANGES))
    for system, values in result.items():
        if "miou" in values:
            print(
                f"{system:22}" + "".join(f"{v:8.3f}" if v is not None else f"{'-':>8}" for v in values["miou"].values())
            )
    for policy in masks:
        curve = result[f"vid2vid_{policy}"]["mean_occlusion_mask"]
        print(f"mean occlusion mask, {policy}: first {np.mean(curve[:8]):.3f}, last {np.mean(curve[-10:]):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
