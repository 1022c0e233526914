"""One held-out video through the evaluation: the per-frame baseline synthesises its conditions while the
scorer compares real | vid2vid | baseline frame by frame, streaming; writes the baseline's frames and videos
and the side-by-side ``compare.webm``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from v2v.config import EvaluateConfig
from v2v.data.clips import ClipDataset
from v2v.eval.features import FeatureNet
from v2v.eval.perceptual import LPIPS
from v2v.eval.scoring import FeatureCache, Scorer, VideoScores
from v2v.eval.segmentation import Segmenter
from v2v.eval.summary import SYSTEMS
from v2v.generation.pictures import condition_to_rgb, to_rgb
from v2v.generation.synthesis import APPEARANCE_SEED, SynthesisModel, generate_stream
from v2v.io.files import dvc_md5
from v2v.io.frames import frame_name
from v2v.io.maps import read_label, read_rgb, write_rgb
from v2v.io.video import write_video


def evaluate_video(
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
            fake_file = results / "frames" / frame_name(t)
            if not fake_file.is_file():
                raise FileNotFoundError(f"{fake_file}: missing generated frame; rerun `dvc repro generate`")
            fakes = {"vid2vid": read_rgb(fake_file), "baseline": to_rgb(result["fake"])}
            write_rgb(out / "baseline" / frame_name(t), fakes["baseline"])
            label_file = labels / frame_name(t)
            scorer.add(real, fakes, read_label(label_file) if label_file.is_file() else None)
            yield np.concatenate([condition_to_rgb(clip["label"][0], task), real, *fakes.values()], 1)

    frames_iter = tqdm(compare_frames(), total=frames, desc=video.video_id, leave=False)
    write_video(out / "compare.webm", frames_iter, fps=fps, codec="vp9")
    files = sorted((out / "baseline").glob("*.png"))
    write_video(out / "baseline.webm", (read_rgb(f) for f in files), fps=fps, codec="vp9")
    return scorer.finish()
