"""Training-loop overhead: seconds per step of the real loop against the bare step on one batch, in one run.

    .venv/bin/python benchmarks/train.py [--preset small --width 256 --height 128 --frames 4 --steps 6]

Builds a sample project (street clips, ground-truth maps, DIS flow), then times
* ``bare step``: the same networks and objective on one fixed, preloaded batch: generator forward,
  generator update, discriminator update — nothing else;
* ``loop step``: :func:`v2v.training.loop.train_scale` step to step (data loading from disk,
  augmentation, downscaling, loss bookkeeping, logging to a callback);
* ``checkpoint``: one resumable checkpoint (weights + optimiser states), paid every ``checkpoint_every`` steps.
Target (issue "Progressive training"): loop overhead under 10 % of the step. Medians; CPU, 2 threads.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch

from v2v.config import config_from_dict
from v2v.data.clips import ClipDataset
from v2v.io.checkpoint import save_checkpoint
from v2v.paths import ProjectPaths
from v2v.stages import get_stage
from v2v.training.loop import build_networks, loss_weights, train_scale
from v2v.training.objective import ClipBatch, Vid2VidObjective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4, help="clip length")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paths = ProjectPaths.at(tmp / "project")
        data = {
            "sample": {"width": args.width, "height": args.height, "num_frames": 12, "scenes": ["street"]},
            "extract": {"width": args.width, "height": args.height},
            "model": {"preset": args.preset},
            "train": {
                "num_scales": 1,
                "loss_vgg": 0.0,
                "device": "cpu",
                "log_every": 1,
                "sample_every": 1000,
                "checkpoint_every": 1000,
                "from_labels_prob": 0.0,
            },
            "train_scale0": {
                "epochs": 1,
                "decay_epochs": 0,
                "samples_per_video": args.steps,
                "start_frames": args.frames,
                "max_frames": args.frames,
                "double_every": 0,
            },
            "tracking": {"enabled": False},
        }
        cfg = config_from_dict(data)
        for stage in ("sample", "extract", "segment", "flow"):
            get_stage(stage)(cfg, paths)
        dataset = ClipDataset(
            paths=paths,
            split="train",
            task="street",
            clip_length=args.frames,
            samples_per_video=args.steps,
            prefix="street_000",
        )

        # bare: one preloaded batch, the same networks and objective
        nets, _ = build_networks(cfg, 0, None)
        objective = Vid2VidObjective(weights=loss_weights(cfg))
        opt_g = torch.optim.Adam(nets.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam([*nets.image_d.parameters(), *nets.video_d.parameters()], lr=2e-4, betas=(0.5, 0.999))
        d_params = [*nets.image_d.parameters(), *nets.video_d.parameters()]
        item = {k: v[None] for k, v in dataset[0].items()}
        context = nets.generator.num_frames - 1
        clip = ClipBatch(item["label"], item["image"], item["flow"], item["flow_valid"], context)

        def bare_step() -> None:  # as the loop: G first (the Ds frozen), then the Ds on the detached outputs
            out = nets.generator(clip.label, prev_fakes=clip.image[:, :context])
            for p in d_params:
                p.requires_grad_(False)
            g_loss = sum(objective.generator(clip, out, nets.image_d, nets.video_d).values())
            opt_g.zero_grad()
            g_loss.backward()  # type: ignore[union-attr]
            opt_g.step()
            for p in d_params:
                p.requires_grad_(True)
            detached = {k: out[k].detach() for k in ("fake", "hallucinated")}
            d_loss = sum(objective.discriminator(clip, detached, nets.image_d, nets.video_d).values())
            opt_d.zero_grad()
            d_loss.backward()  # type: ignore[union-attr]
            opt_d.step()

        bare_step()  # warm-up
        bare = []
        for _ in range(args.steps):
            start = time.perf_counter()
            bare_step()
            bare.append(time.perf_counter() - start)

        stamps: list[float] = []
        train_scale(
            cfg,
            0,
            dataset,
            tmp / "out",
            tmp / "work",
            log_metrics=lambda m, s: stamps.append(time.perf_counter()),
            log_sample=lambda tensors, step: None,
            progress=False,
        )
        loop = [b - a for a, b in itertools.pairwise(stamps)]  # step to step: the first step's set-up is left out
        bare_s, loop_s = statistics.median(bare), statistics.median(loop)
        print(
            f"preset {args.preset}, {args.width}x{args.height}, clips of {args.frames} frames, batch 1, CPU 2 threads"
        )
        print(f"{'bare step (fwd + D and G updates)':40} {bare_s:8.3f} s")
        print(f"{'loop step (data, augmentation, logging)':40} {loop_s:8.3f} s")
        start = time.perf_counter()
        save_checkpoint(tmp / "ckpt.pt", config={}, modules=nets.modules(), optimizers={"g": opt_g, "d": opt_d})
        ckpt_s = time.perf_counter() - start
        print(
            f"{'checkpoint (weights + optimiser states)':40} {ckpt_s:8.3f} s  ({(tmp / 'ckpt.pt').stat().st_size / 1e6:.0f} MB)"
        )
        print(f"loop overhead: {100 * (loop_s - bare_s) / bare_s:+.1f} % of the bare step (target < 10 %)")


if __name__ == "__main__":
    main()
