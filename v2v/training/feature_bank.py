"""The per-class feature bank of multimodal synthesis, fitted at the end of a training scale.

The trained feature encoder E (the averaged copy when EMA is on, the one generation pairs with)
encodes every frame of every training video at the scale's resolution; its features are averaged
per instance, and k-means over each class's instance features gives that class's centres
(:class:`v2v.models.encoder.FeatureBank`). Instance ids come from the segment stage (street:
Cityscapes ``class*1000+k`` for objects, the bare class id for stuff, so each stuff class is one
instance per frame); the edges and pose tasks have no instance maps, so the whole frame is one
instance of class 0 and the bank holds whole-frame appearances.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import torch

from v2v.data.clips import ClipDataset
from v2v.models.encoder import FeatureBank, FeatureEncoder, instance_features
from v2v.models.layers import use_batch_statistics


def every_frame(dataset: ClipDataset, chunk: int = 8) -> Iterator[dict[str, torch.Tensor]]:
    """Every frame of every video of ``dataset`` (no augmentation), as ``(1, <= chunk, C, H, W)`` clips."""
    frames_only = copy.copy(dataset)
    frames_only.with_flow = False  # E needs no flow: do not read it
    for video in dataset.videos:
        for start in range(0, video.num_frames, chunk):
            clip = frames_only.load_clip(video, start, min(chunk, video.num_frames - start))
            yield {key: clip[key][None] for key in ("image", "instance")}


@torch.no_grad()
def fit_feature_bank(
    encoder: FeatureEncoder,  # trained E
    clips: Iterable[dict[str, torch.Tensor]],  # "image" (B, T, 3, H, W) and "instance" (B, T, H, W) at E's scale
    num_clusters: int,  # k-means centres per class
    seed: int,  # k-means seed
) -> FeatureBank:
    """k-means centres per class over the instance features of every frame of ``clips``."""
    device = next(encoder.parameters()).device
    # E as G saw it in training: batch norm with each clip's statistics (on a copy: E itself is unchanged)
    encoder = use_batch_statistics(copy.deepcopy(encoder).eval())
    samples: list[tuple[int, torch.Tensor]] = []
    for clip in clips:
        image, instance = clip["image"].to(device), clip["instance"].to(device)
        pooled = encoder(image, instance)
        samples.extend(instance_features(pooled.flatten(0, 1), instance.flatten(0, 1)))
    return FeatureBank.fit(samples, num_clusters=num_clusters, seed=seed)
