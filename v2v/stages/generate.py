"""``generate`` stage: synthesise every held-out video with the final model, as encoded videos.

For each test video (``generate.clip_prefix``): ``results/<video_id>/fake.mp4`` (the synthesis from
the conditions alone: no real frame is given; its first ``num_frames_g - 1`` frames come from the
per-frame model ``models/baseline`` for the street and face tasks, as the reference's ``--use_single_G``,
``generate.first_frames``), ``compare.mp4`` (condition | real | synthesised side
by side), ``frames/NNNNNN.png`` and, for the street task, ``manipulated.mp4`` with the label remaps
of ``generate.manipulate`` (e.g. every building becomes vegetation), and ``continue.mp4``: the
first ``generate.continue_from`` real frames, then generation (future-frame prediction). Generation streams: memory
does not grow with the video's length. Each video's folder is written atomically.

Weights: the model's moving average when it has one (``train.ema_decay > 0``), else the trained
weights; ``meta.json`` and the MLflow tag ``v2v.generator_weights`` say which. Multimodal synthesis
(a model trained with ``model.feature_channels > 0``): every instance takes one appearance from the
model's feature bank, chosen by a seed and the instance's id (so it does not flicker while the
instance is tracked); ``multimodal_seed<k>.mp4`` for each of ``generate.seeds``, and the other videos
use seed 0.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

from v2v.config import Config, GenerateConfig
from v2v.data.clips import ClipDataset, VideoEntry
from v2v.data.labels import BY_NAME
from v2v.data.tasks import get_task
from v2v.generation.results import synthesise_video
from v2v.generation.synthesis import APPEARANCE_SEED, load_model, resolve_first_frames
from v2v.io.atomic import atomic_dir, remove_stale_temporaries, write_json
from v2v.mlops.tracking import stage_run
from v2v.ops.device import amp_dtype, resolve_device
from v2v.parallel import gpu_need, map_videos, scoped_cache, worker_cache
from v2v.paths import ProjectPaths, project_relative
from v2v.stages.common import stage_main, write_metrics
from v2v.viz import contact_sheet

log = logging.getLogger(__name__)


def label_remaps(rules: tuple[str, ...]) -> dict[int, int]:
    """``("building=vegetation",)`` → ``{11: 21}``."""
    pairs = (rule.split("=") for rule in rules)
    return {BY_NAME[a.strip()].id: BY_NAME[b.strip()].id for a, b in pairs}


def loaded(model_file: Path, device_name: str, batch_norm: str) -> Any:
    """A generator file loaded once per process (the stage's, or a Dask worker's)."""
    stat = model_file.stat()  # a retrained model at the same path is another model
    key = f"generate:{model_file}:{stat.st_mtime_ns}:{stat.st_size}:{device_name}:{batch_norm}"
    return worker_cache(key, lambda: load_model(model_file, resolve_device(device_name, "generate.device"), batch_norm))


def datasets(
    paths: ProjectPaths, gc: GenerateConfig, task: str
) -> tuple[ClipDataset, ClipDataset | None, dict[int, int]]:
    """The held-out videos, the same with ``generate.manipulate``'s label remaps (street), and the remaps."""
    common: dict[str, Any] = {"paths": paths, "split": "test", "task": task, "clip_length": 1}
    common |= {"prefix": gc.clip_prefix, "with_flow": False}
    remaps = label_remaps(gc.manipulate) if get_task(task).one_hot_labels else {}
    return ClipDataset(**common), (ClipDataset(**common, label_map=remaps) if remaps else None), remaps


def generate_task(gc: GenerateConfig, paths: ProjectPaths, task: str, first_frames: str, video_id: str) -> Any:
    """One held-out video into ``results/<video_id>/`` atomically (a task of :func:`v2v.parallel.map_videos`, in
    this process or on a Dask worker); returns ``(frames, preview row)``."""
    model_file = paths.model_dir(2) / "model.pt"
    model = loaded(model_file, gc.device, gc.batch_norm)
    first_model = (
        loaded(paths.baseline_dir / "model.pt", gc.device, gc.batch_norm) if first_frames == "single_g" else None
    )
    dataset, manipulated, remaps = datasets(paths, gc, task)
    (video,) = [v for v in dataset.videos if v.video_id == video_id]
    frames = min(video.num_frames, gc.max_frames or video.num_frames)
    fps = _video_fps(paths, video)
    device = next(model.generator.parameters()).device
    with atomic_dir(paths.results / video.video_id) as tmp:
        preview = synthesise_video(
            model,
            dataset,
            manipulated,
            video,
            frames,
            fps,
            task,
            tmp,
            gc.codec,
            gc.continue_from,
            seeds=gc.seeds,
            remaps=remaps,
            amp=gc.amp,
            first_frames=first_frames,
            first_model=first_model,
        )
        write_json(
            tmp / "meta.json",
            {
                "video_id": video.video_id,
                "frames": frames,
                "fps": fps,
                "model": project_relative(model_file, paths.root),
                "task": task,
                "manipulate": list(gc.manipulate) if manipulated else [],
                "generator_weights": model.weights,
                "first_frames": first_frames,
                "precision": str(amp_dtype(device)).removeprefix("torch.") if gc.amp else "float32",
                "multimodal_seeds": list(gc.seeds),
                "appearance_seed": APPEARANCE_SEED if model.feature_bank is not None else None,
            },
        )
    return frames, preview


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Generate every selected test video; returns the metrics of ``metrics/generate.json``."""
    gc = cfg.generate
    with stage_run("generate", cfg, paths, ("generate",)) as tracker, scoped_cache():  # serial tasks reuse the model
        model_file = paths.model_dir(2) / "model.pt"
        model = loaded(model_file, gc.device, gc.batch_norm)
        if gc.seeds and model.feature_bank is None:
            raise ValueError(
                f"generate.seeds: {model_file} has no feature encoder (trained with model.feature_channels 0), so it "
                "has one appearance only; set model.feature_channels (e.g. 3) and retrain, or set generate.seeds: []"
            )
        task = model.config["train"]["task"]
        first_frames = resolve_first_frames(gc.first_frames, task)
        if first_frames == "single_g":  # the per-frame model makes the frames generation continues from
            baseline_file = paths.baseline_dir / "model.pt"
            if not baseline_file.is_file():
                raise FileNotFoundError(
                    f"{baseline_file}: generate.first_frames {gc.first_frames} needs the per-frame model for the first "
                    "frames; run `dvc repro train_baseline` first, or set generate.first_frames: hallucinate"
                )
        dataset, _, _ = datasets(paths, gc, task)
        paths.results.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(paths.results)
        started = time.perf_counter()
        video_ids = [video.video_id for video in dataset.videos]
        outcomes = map_videos(
            functools.partial(generate_task, gc, paths, task, first_frames),
            video_ids,
            names=video_ids,
            desc="generate",
            **cfg.orchestrate.map_options(),
            gpu=gpu_need(True, gc.device),
        )
        total = sum(frames for frames, _ in outcomes)
        previews = [preview for _, preview in outcomes]
        seconds = time.perf_counter() - started
        metrics = {
            "videos": len(dataset.videos),
            "frames": total,
            "seconds": round(seconds, 2),
            "frames_per_second": round(total / seconds, 2) if seconds else 0.0,
        }
        write_metrics(paths.generate_metrics, metrics)
        tracker.log_metrics(metrics)
        tracker.set_tags(
            {
                "v2v.model": model_file,
                "v2v.task": task,
                "v2v.generator_weights": model.weights,
                "v2v.first_frames": first_frames,
            }
        )
        if previews:
            tracker.log_image(
                contact_sheet(previews[:6], tile_width=min(768, previews[0][0].shape[1])), "previews/generated.png"
            )
        for video in dataset.videos[:4]:
            tracker.log_artifact(paths.results / video.video_id / "compare.mp4", f"videos/{video.video_id}")
            for seed in gc.seeds:
                tracker.log_artifact(
                    paths.results / video.video_id / f"multimodal_seed{seed}.mp4", f"videos/{video.video_id}"
                )
        log.info("generate: %d videos, %d frames in %.1f s", len(dataset.videos), total, seconds)
    return metrics


def _video_fps(paths: ProjectPaths, video: VideoEntry) -> float:
    from v2v.io.frames import read_meta

    return float(read_meta(paths.frames / video.video_id)["fps"])


def main() -> None:
    stage_main("generate", run)


if __name__ == "__main__":
    main()
