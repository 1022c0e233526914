"""One held-out video's result files: the synthesis (``frames/``, ``fake.mp4``), the side-by-side
``compare.mp4`` and the demos (semantic manipulation, future-frame continuation, multimodal seeds)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from v2v.data.clips import ClipDataset, VideoEntry
from v2v.generation.pictures import condition_to_rgb, to_rgb
from v2v.generation.synthesis import SynthesisModel, generate_stream, video_frames, video_inputs
from v2v.io.frames import frame_name
from v2v.io.maps import read_rgb, write_rgb
from v2v.io.video import write_video


def synthesise_video(
    model: SynthesisModel,
    dataset: ClipDataset,
    manipulated: ClipDataset | None,
    video: VideoEntry,
    frames: int,
    fps: float,
    task: str,
    out: Path,
    codec: Any,
    continue_from: int = 0,  # future-frame demo: real frames given before generation continues (0: none)
    seeds: tuple[int, ...] = (),  # multimodal demo: one multimodal_seed<k>.mp4 per seed (feature-bank models)
    remaps: Mapping[int, int] | None = None,  # the manipulation's class remaps (for the features' classes)
    amp: bool = False,  # mixed-precision synthesis (generate.amp)
    first_frames: str = "hallucinate",  # who makes the first frames: single_g | hallucinate | real (resolved)
    first_model: SynthesisModel | None = None,  # the per-frame model that makes them (single_g)
) -> list[np.ndarray]:
    """Write one video's results into ``out``; returns three preview rows (condition | real | fake).

    Frames go to disk as they are generated and the videos are encoded from there, so memory does
    not depend on the video's length.
    """
    device = next(model.generator.parameters()).device

    # the video's synthesised frames from a dataset's conditions (the manipulated ones, another appearance seed)
    stream_of = functools.partial(
        video_frames, model, video=video, frames=frames, first_frames=first_frames, first_model=first_model, amp=amp
    )
    for t, fake in enumerate(tqdm(stream_of(dataset), total=frames, desc=video.video_id, leave=False)):
        write_rgb(out / "frames" / frame_name(t), to_rgb(fake))
    fake_files = [out / "frames" / frame_name(t) for t in range(frames)]
    write_video(out / "fake.mp4", (read_rgb(f) for f in fake_files), fps=fps, codec=codec)

    def compare(t: int) -> np.ndarray:
        clip = dataset.load_clip(video, t, 1)
        parts = [condition_to_rgb(clip["label"][0], task), to_rgb(clip["image"][0]), read_rgb(fake_files[t])]
        return np.concatenate(parts, axis=1)

    write_video(out / "compare.mp4", (compare(t) for t in range(frames)), fps=fps, codec=codec)
    if manipulated is not None:
        stream = stream_of(manipulated, class_map=remaps)
        write_video(out / "manipulated.mp4", (to_rgb(f) for f in stream), fps=fps, codec=codec)
    if 0 < continue_from < frames:
        real = [dataset.load_clip(video, t, 1)["image"][0] for t in range(continue_from)]
        labels, features = video_inputs(model, dataset, video, frames)
        continued = generate_stream(model.generator, labels, device, first_frames=real, features=features, amp=amp)
        seeded = [to_rgb(f) for f in real]
        write_video(out / "continue.mp4", (*seeded, *(to_rgb(o["fake"]) for o in continued)), fps=fps, codec=codec)
    for seed in seeds:
        stream = stream_of(dataset, seed=seed)
        write_video(out / f"multimodal_seed{seed}.mp4", (to_rgb(f) for f in stream), fps=fps, codec=codec)
    return [compare(t) for t in sorted({0, frames // 2, frames - 1})]
