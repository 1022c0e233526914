"""The training stages ``train_scale0``, ``train_scale1``, ``train_scale2``: one shared implementation.

Each trains one spatial scale (:func:`v2v.training.loop.train_scale`) on the train split and
writes ``models/scale<s>/model.pt``, ``metrics/train_scale<s>.json`` (DVC metrics) and
``plots/train_scale<s>.csv`` (DVC plots: losses per logged step). Resumable checkpoints live in
``checkpoints/train_scale<s>/<config hash>/``; with ``train.resume: auto`` an interrupted run of the
same configuration continues where it stopped. Runs under ``torchrun`` for DDP (rank 0 logs and writes).

MLflow: the model's DVC md5 is a tag of the run, and with ``tracking.log_model`` (default) the model
itself is logged at the end of the scale as a pyfunc (:class:`v2v.mlops.registry.GeneratorModel`: the state dicts
and ``config.json`` as artifacts, a signature, an input example). The last trained scale's model is also
registered as a new version of ``promote.model_name`` (not on MLflow's file store, which has no registry):
every ``dvc repro`` that trains leaves a version; ``v2v retrain`` decides on it and moves the alias.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

import v2v
from v2v.config import Config
from v2v.data.clips import ClipDataset
from v2v.flow.viz import flow_to_rgb, mask_to_rgb
from v2v.generation.pictures import condition_to_rgb, to_rgb
from v2v.io.atomic import write_bytes, write_text
from v2v.io.files import dvc_md5
from v2v.mlops.tracking import MODEL_MD5_TAG, StageRun, stage_run, uri_scheme
from v2v.paths import ProjectPaths
from v2v.stages.common import write_metrics
from v2v.training.loop import config_hash, run_config, train_scale
from v2v.training.resume import inputs_fingerprint
from v2v.viz import contact_sheet

log = logging.getLogger(__name__)


def sample_sheet(tensors: dict[str, torch.Tensor], task: str, frames: int = 4) -> np.ndarray:
    """Rows of real | condition | generated | predicted flow | occlusion mask, for a few frames."""
    rows = []
    for t in range(min(frames, tensors["fake"].shape[0])):
        rows.append(
            [
                to_rgb(tensors["real"][t]),
                condition_to_rgb(tensors["label"][t], task),
                to_rgb(tensors["fake"][t]),
                flow_to_rgb(tensors["flow"][t].float().permute(1, 2, 0).cpu().numpy()),
                mask_to_rgb(tensors["occlusion_mask"][t, 0].float().cpu().numpy() > 0.5),
            ]
        )
    return contact_sheet(rows, tile_width=min(256, rows[0][0].shape[1] * 2))


def training_dataset(cfg: Config, paths: ProjectPaths, scale: int) -> ClipDataset:
    """The training clips of scale ``scale`` (its schedule sets the clip length and samples per video)."""
    sc = getattr(cfg, f"train_scale{scale}")
    return ClipDataset(
        paths=paths,
        split="train",
        task=cfg.train.task,
        clip_length=sc.start_frames,
        samples_per_video=sc.samples_per_video,
        crop=tuple(cfg.train.crop) if cfg.train.crop else None,  # type: ignore[arg-type]
        flip=cfg.train.flip,
        rotate=cfg.train.rotate,
        zoom=cfg.train.zoom,
        seed=cfg.train.seed,
        prefix=cfg.train.clip_prefix,
    )


def training_inputs(paths: ProjectPaths, previous: Path | None) -> str:
    """Fingerprint of what a training stage reads: frames, maps, flow, the previous scale's model and the code.

    Checkpoints written from other inputs are not resumed (DVC re-runs a training stage because
    one of them changed, and a resumed finished run would hand back the old model).
    """
    code = Path(v2v.__file__).parent
    data = (paths.frames, paths.segment_maps, paths.edge_maps, paths.pose_maps, paths.flow)
    return inputs_fingerprint([*data, *([previous] if previous is not None else []), code])


def discard_checkpoints(cfg: Config, work_dirs: list[Path]) -> None:
    """A completed stage's resumable checkpoints go (unless train.keep_checkpoints_when_done): model.pt is its output."""
    if cfg.train.keep_checkpoints_when_done:
        return
    for folder in work_dirs:
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed the finished run's checkpoints %s (train.keep_checkpoints_when_done: false)", folder)


def run_scale(cfg: Config, paths: ProjectPaths, scale: int) -> dict[str, Any]:
    """Train scale ``scale``; returns the summary written to the metrics file."""
    name = f"train_scale{scale}"
    is_main = int(os.environ.get("RANK", "0")) == 0
    with stage_run(name, cfg, paths, ("model", "train", name)) if is_main else no_tracking() as tracker:
        if scale >= cfg.train.num_scales:
            return _pass_through(paths, scale, tracker)
        dataset = training_dataset(cfg, paths, scale)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        work_dir = paths.checkpoints / name / config_hash(run_config(cfg, scale, world))
        previous = paths.model_dir(scale - 1) / "model.pt" if scale > 0 else None
        tracker.set_tags({"v2v.checkpoints": work_dir, "v2v.initialised_from": previous or "random"})
        tracker.log_dataset(paths.frames, "frames", "training")
        with tracker.system_metrics(cfg.tracking.system_metrics_seconds):
            summary = train_scale(
                cfg,
                scale,
                dataset,
                out_dir=paths.model_dir(scale),
                work_dir=work_dir,
                previous=previous,
                inputs=training_inputs(paths, previous),
                log_metrics=lambda metrics, step: tracker.log_metrics(metrics, step),
                log_sample=lambda tensors, step: tracker.log_image(
                    sample_sheet(tensors, cfg.train.task), f"samples/step_{step:08d}.png"
                ),
            )
        if is_main:
            metrics = {
                "steps": summary["steps"],
                "seconds": round(summary["seconds"], 2),
                **{k.replace("/", "_"): round(v, 5) for k, v in summary["final"].items()},
            }
            write_metrics(paths.train_metrics(scale), metrics)
            write_text(paths.train_plots(scale), history_csv(summary["history"]))
            model_md5 = dvc_md5(paths.model_dir(scale))
            tracker.set_tags(
                {
                    "v2v.vgg_weights": summary["vgg_weights"],
                    "v2v.generator_weights": summary["generator_weights"],  # what generation will use
                    "v2v.feature_bank": (
                        f"{summary['feature_bank_classes']} classes, up to {summary['feature_clusters']} centres each"
                        if "feature_bank_classes" in summary
                        else "none (model.feature_channels 0)"
                    ),
                    # the model itself is a DVC output; its md5 identifies it (`dvc get`, `dvc checkout`, retrain)
                    f"v2v.out.{paths.model_dir(scale).relative_to(paths.root).as_posix()}": model_md5,
                    MODEL_MD5_TAG: model_md5,
                }
            )
            if cfg.tracking.log_model and tracker.client is not None and tracker.uri and tracker.run_id:
                from v2v.mlops.registry import log_generator  # MLflow's model plumbing, loaded only when logging

                # the last trained scale's model is the pipeline's: a registry version of its own (promotion and the
                # alias stay `v2v retrain`'s, which decides on this version)
                final = scale == cfg.train.num_scales - 1
                registered = cfg.promote.model_name if final and uri_scheme(tracker.uri) != "file" else None
                log_generator(tracker.uri, tracker.run_id, paths.model_dir(scale), registered_name=registered)
            else:
                tracker.log_artifact(paths.model_dir(scale) / "config.json", "model")
            tracker.log_artifact(paths.train_plots(scale))
            discard_checkpoints(cfg, [work_dir])
            log.info("%s: %d steps in %.0f s", name, summary["steps"], summary["seconds"])
            return metrics
    return {}


def _pass_through(paths: ProjectPaths, scale: int, tracker: StageRun) -> dict[str, Any]:
    """``train.num_scales`` ends below this scale: its model is the previous scale's, unchanged."""
    source = paths.model_dir(scale - 1)
    for file in ("model.pt", "config.json"):
        data = (source / file).read_bytes()
        write_bytes(paths.model_dir(scale) / file, data)
    metrics = {"steps": 0, "seconds": 0.0, "skipped": 1}
    write_metrics(paths.train_metrics(scale), metrics)
    write_text(paths.train_plots(scale), "step\n")
    tracker.set_tags({"v2v.skipped": f"train.num_scales < {scale + 1}: the model of scale {scale - 1} is passed on"})
    log.info("train_scale%d: train.num_scales ends below this scale; passing scale %d's model on", scale, scale - 1)
    return metrics


def history_csv(history: list[dict[str, float]]) -> str:
    if not history:
        return "step\n"
    keys = ["step", *sorted(k for k in history[-1] if k != "step")]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


class no_tracking:
    """Non-zero ranks under torchrun log nothing."""

    def __enter__(self) -> StageRun:
        return StageRun(None, None)

    def __exit__(self, *exc: object) -> None:
        return None
