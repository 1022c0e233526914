"""``train_baseline`` stage: the per-frame image-to-image baseline the evaluation compares vid2vid against.

The paper's main comparison is vid2vid vs pix2pixHD, an image model applied frame by frame. Our
baseline is the same generator in per-frame mode (:class:`v2v.models.generator.Vid2VidGenerator`,
``per_frame=True``: each frame from its own label map, no previous frames, no flow), trained with
the image discriminator alone on the *same budget*: the same scales, epochs, clips and learning-rate
schedule as ``train_scale0..2``, in one stage. It writes ``models/baseline/model.pt``,
``metrics/train_baseline.json`` and ``plots/train_baseline.csv``; the coarser scales' models stay in
``checkpoints/train_baseline/``, and interrupted runs resume like the vid2vid stages. Like them it trains with
DDP when ``train.nproc_per_node`` / ``train.nnodes`` ask for several processes (its scales in one process group).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from functools import partial
from typing import Any

import torch

from v2v.config import Config
from v2v.io.atomic import write_text
from v2v.mlops.tracking import StageRun, stage_run
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main, write_metrics
from v2v.stages.train import (
    discard_checkpoints,
    history_csv,
    no_tracking,
    sample_sheet,
    training_dataset,
    training_inputs,
)
from v2v.training.loop import MODEL_FILE, config_hash, run_config, train_scale

log = logging.getLogger(__name__)
SECTIONS = ("model", "train", "train_scale0", "train_scale1", "train_scale2", "train_baseline")


def budgeted(cfg: Config) -> Config:
    """``cfg`` with every scale's epochs scaled by ``train_baseline.budget`` (unchanged at 1.0)."""
    budget = cfg.train_baseline.budget
    if budget == 1.0:
        return cfg
    scales = {}
    for name in ("train_scale0", "train_scale1", "train_scale2"):
        sc = getattr(cfg, name)
        epochs = max(1, round(sc.epochs * budget))
        scales[name] = replace(sc, epochs=epochs, decay_epochs=min(epochs, round(sc.decay_epochs * budget)))
    return replace(cfg, **scales)


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Train the per-frame baseline through every scale; returns the metrics of its metrics file."""
    cfg = budgeted(cfg)
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 logs and writes
    world = int(os.environ.get("WORLD_SIZE", "1"))
    with stage_run("train_baseline", cfg, paths, SECTIONS) if is_main else no_tracking() as tracker:
        previous = None
        history: list[dict[str, float]] = []
        steps, seconds, final = 0, 0.0, {}
        last = cfg.train.num_scales - 1
        work_dirs = []
        tracker.log_dataset(paths.frames, "frames", "training")
        with tracker.system_metrics(cfg.tracking.system_metrics_seconds):
            for scale in range(cfg.train.num_scales):
                work_dir = (
                    paths.checkpoints / "train_baseline" / config_hash(run_config(cfg, scale, world, per_frame=True))
                )
                work_dirs.append(work_dir)
                out_dir = paths.baseline_dir if scale == last else work_dir / "model"
                summary = train_scale(
                    cfg,
                    scale,
                    training_dataset(cfg, paths, scale),
                    out_dir=out_dir,
                    work_dir=work_dir,
                    previous=previous,
                    per_frame=True,
                    inputs=training_inputs(paths, previous),
                    log_metrics=partial(_log_metrics, tracker, scale, steps),
                    log_sample=partial(_log_sample, tracker, cfg.train.task, scale),
                )
                history += [{**row, "step": steps + row["step"], "scale": float(scale)} for row in summary["history"]]
                steps += summary["steps"]
                seconds += summary["seconds"]
                final = summary["final"]
                previous = out_dir / MODEL_FILE
        if not is_main:
            return {}
        metrics = {
            "steps": steps,
            "seconds": round(seconds, 2),
            **{k.replace("/", "_"): round(v, 5) for k, v in final.items()},
        }
        write_metrics(paths.baseline_metrics, metrics)
        write_text(paths.baseline_plots, history_csv(history))
        tracker.set_tags({"v2v.baseline": "per-frame generator (no previous frames, no flow, no D_V), same schedule"})
        tracker.log_artifact(paths.baseline_dir / "config.json", "model")
        discard_checkpoints(cfg, work_dirs)
        log.info("train_baseline: %d steps over %d scales in %.0f s", steps, cfg.train.num_scales, seconds)
    return metrics


def _log_metrics(tracker: StageRun, scale: int, offset: int, metrics: dict[str, float], step: int) -> None:
    tracker.log_metrics({**metrics, "scale": float(scale)}, offset + step)  # one step axis over all scales


def _log_sample(tracker: StageRun, task: str, scale: int, tensors: dict[str, torch.Tensor], step: int) -> None:
    tracker.log_image(sample_sheet(tensors, task), f"samples/scale{scale}_step_{step:08d}.png")


def main() -> None:
    stage_main("train_baseline", run, distributed=True)


if __name__ == "__main__":
    main()
