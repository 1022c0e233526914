"""Generate videos frame by frame with a trained generator, in memory independent of their length.

The generator sees a rolling window of the last ``num_frames`` conditions and its own last
``num_frames - 1`` outputs; nothing else is kept, so a 10 000-frame video needs the memory of a
3-frame one. The first ``num_frames - 1`` frames follow ``generate.first_frames``
(:func:`resolve_first_frames`): made by the per-frame model (``single_g``, the reference's street and
face recipes), given (``real``), or hallucinated by the generator itself from labels alone
(``hallucinate``: with no previous output the frame is hallucinated whole; until the window fills,
the oldest entry repeats).
Semantic manipulation happens in the conditions (:func:`v2v.data.clips.remap_ids`).

A model file holds the trained generator and, with ``train.ema_decay > 0``, its moving average:
generation uses the average when there is one (:attr:`SynthesisModel.weights` says which). A model
with a feature encoder (``model.feature_channels > 0``) also needs per-frame features: the feature
bank's appearance for a seed (:meth:`SynthesisModel.features`), the multimodal synthesis of the paper.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from v2v.data.clips import ClipDataset, VideoEntry
from v2v.data.tasks import get_task
from v2v.io.checkpoint import CheckpointError, read_checkpoint
from v2v.models.encoder import FeatureBank, FeatureEncoder
from v2v.models.generator import Vid2VidGenerator
from v2v.models.layers import use_batch_statistics
from v2v.models.presets import ModelPreset, build_encoder, build_generator
from v2v.ops.device import autocast


@dataclass
class SynthesisModel:
    """What generation needs from a training stage's ``model.pt``."""

    generator: (
        Vid2VidGenerator  # all scales, eval mode but batch norm per generate.batch_norm (averaged weights if any)
    )
    config: dict[str, Any]  # the run configuration the file was trained with
    weights: str  # "ema" (moving average) or "raw" (the last trained weights)
    encoder: FeatureEncoder | None = None  # E (same weights kind), to encode real frames' appearance
    feature_bank: FeatureBank | None = None  # per-class k-means centres of E's training features

    def features(self, instance: torch.Tensor, seed: int, class_map: Mapping[int, int] | None = None) -> torch.Tensor:
        """``(F, H, W)`` features of one frame's ``(H, W)`` instance map: the bank's appearance ``seed``."""
        if self.feature_bank is None:
            raise ValueError("this model has no feature encoder (model.feature_channels 0): it takes no features")
        return self.feature_bank.paint(instance, seed, class_map)


def load_model(model_file: Path, device: torch.device, batch_norm: str = "frame") -> SynthesisModel:
    """Build G (and E, the feature bank) from the configuration inside ``model_file`` and load its weights.

    ``batch_norm`` (``generate.batch_norm``): ``frame`` normalises every frame with its own statistics,
    as G was trained (one frame per batch; the reference never switches G to eval mode); ``running``
    uses the averages gathered in training (eval mode).
    """
    if batch_norm not in ("frame", "running"):
        raise ValueError(f"generate.batch_norm: expected 'frame' or 'running', got {batch_norm!r}")
    payload = read_checkpoint(model_file)
    config = payload["config"]
    modules = payload["modules"]
    fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config["model"].items()}
    fields.setdefault("num_d_growth", 0)  # files from before it existed: it shapes only the Ds, which are not built
    try:
        preset = ModelPreset(**fields)
    except TypeError as exc:
        raise CheckpointError(f"{model_file}: model settings this code does not know ({exc}); retrain it") from None
    weights = "ema" if "generator_ema" in modules else "raw"
    suffix = "_ema" if weights == "ema" else ""
    generator = build_generator(preset, num_scales=config["scale"] + 1, seed=None)
    _load(model_file, generator, modules, "generator" + suffix)
    generator = generator.to(device).eval()
    model = SynthesisModel(
        generator=use_batch_statistics(generator) if batch_norm == "frame" else generator,
        config=config,
        weights=weights,
    )
    if preset.feature_channels:
        bank = payload["extra"].get("feature_bank")
        if not bank:
            raise CheckpointError(
                f"{model_file}: the model has a feature encoder (feature_channels {preset.feature_channels}) but "
                "no feature bank; it was not written by a complete training stage: rerun it (dvc repro)"
            )
        model.feature_bank = FeatureBank.from_state_dict(bank)
        if model.feature_bank.feature_channels != preset.feature_channels:
            raise CheckpointError(
                f"{model_file}: feature bank of {model.feature_bank.feature_channels} channels for an encoder "
                f"of {preset.feature_channels}"
            )
        encoder = build_encoder(preset, seed=None)
        _load(model_file, encoder, modules, "encoder" + suffix)
        encoder = encoder.to(device).eval()
        model.encoder = use_batch_statistics(encoder) if batch_norm == "frame" else encoder
    return model


APPEARANCE_SEED = 0  # the feature bank's appearance of every video but the multimodal ones
FIRST_FRAME_POLICIES = ("single_g", "hallucinate", "real")  # generate.first_frames (v2v.data.tasks.Task.first_frames)


def resolve_first_frames(policy: str, task: str) -> str:
    """``generate.first_frames`` with ``auto`` replaced by the task's policy."""
    resolved = get_task(task).first_frames if policy == "auto" else policy
    if resolved not in FIRST_FRAME_POLICIES:
        raise ValueError(
            f"generate.first_frames: unknown policy {policy!r}; one of auto, {', '.join(FIRST_FRAME_POLICIES)}"
        )
    return resolved


def video_inputs(
    model: SynthesisModel,
    dataset: ClipDataset,
    video: VideoEntry,
    frames: int,
    seed: int = APPEARANCE_SEED,  # feature-bank appearance (models with a feature encoder)
    class_map: Mapping[int, int] | None = None,  # class remaps of the features (manipulation)
) -> tuple[Iterator[torch.Tensor], Iterator[torch.Tensor] | None]:
    """Per-frame conditions and, for a model with a feature encoder, features: read once per frame, lazily."""
    clips = (dataset.load_clip(video, t, 1) for t in range(frames))
    if model.feature_bank is None:
        return (clip["label"][0] for clip in clips), None
    for_labels, for_features = itertools.tee(clips)  # consumed in step: holds one frame at most
    features = (model.features(clip["instance"][0], seed, class_map) for clip in for_features)
    return (clip["label"][0] for clip in for_labels), features


def _load(model_file: Path, module: torch.nn.Module, modules: Mapping[str, Any], name: str) -> None:
    if name not in modules:
        raise CheckpointError(f"{model_file}: has no {name!r} weights (it holds {sorted(modules)})")
    try:
        module.load_state_dict(modules[name])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{model_file}: {name} weights do not fit the configuration stored with them: {str(exc)[:300]}"
        ) from None


@torch.no_grad()
def generate_stream(
    generator: Vid2VidGenerator,
    conditions: Iterable[torch.Tensor],  # per frame (C, H, W) generator conditions, in order
    device: torch.device,
    first_frames: Iterable[torch.Tensor] = (),  # optional real frames (3, H, W) of the first conditions
    per_frame: bool = False,  # a per-frame model (the baseline): each frame from its own condition only
    features: Iterable[torch.Tensor] | None = None,  # per frame (F, H, W) features, one per condition (E models)
    amp: bool = False,  # mixed precision (generate.amp): bfloat16 autocast on CPU, float16 on CUDA
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the generator's outputs (``fake``, ``flow``, ``occlusion_mask``, ... as float32 ``(C, H, W)``) frame by frame.

    With ``amp`` the generator runs under :func:`v2v.ops.device.autocast`; outputs are float32 either way.

    With ``first_frames`` (K real frames), the first K conditions are their context and generation
    continues from frame K (future-frame prediction from real frames).
    """
    if (features is None) != (generator.feature_channels == 0):
        raise ValueError(
            f"the generator takes {generator.feature_channels} feature channels; pass features exactly when it takes some"
        )
    feature_iter = iter(features) if features is not None else None
    if per_frame:
        for condition in conditions:
            with autocast(device, amp):
                out = generator.per_frame_step(
                    condition.to(device)[None, None],
                    next(feature_iter)[None, None].to(device) if feature_iter else None,
                )
            yield {key: value[0, 0].float() for key, value in out.items()}
        return
    labels: deque[torch.Tensor] = deque(maxlen=generator.num_frames)
    feats: deque[torch.Tensor] = deque(maxlen=generator.num_frames)
    history: deque[torch.Tensor] = deque(maxlen=generator.num_frames - 1)
    conditions = iter(conditions)

    def take(condition: torch.Tensor) -> None:
        labels.append(condition.to(device))
        if feature_iter is not None:
            feats.append(next(feature_iter).to(device))

    for frame in first_frames:
        history.append(frame.to(device))
        take(next(conditions))
    for condition in conditions:
        take(condition)
        pad = generator.num_frames - len(labels)
        window = [labels[0]] * pad + list(labels)
        feature_window = torch.stack([feats[0]] * pad + list(feats))[None] if feature_iter is not None else None
        prev = None
        if history:
            recent = list(history)
            prev = torch.stack([recent[0]] * (generator.num_frames - 1 - len(recent)) + recent)[None]
        with autocast(device, amp):
            out = generator.step(torch.stack(window)[None], prev, feature_window)
        history.append(out["fake"][0])
        yield {key: value[0].float() for key, value in out.items()}


def video_frames(
    model: SynthesisModel,
    dataset: ClipDataset,
    video: VideoEntry,
    frames: int,
    *,
    first_frames: str,  # resolved generate.first_frames: single_g | hallucinate | real
    first_model: SynthesisModel | None = None,  # the per-frame model that makes the first frames (single_g)
    seed: int = APPEARANCE_SEED,  # feature-bank appearance (models with a feature encoder)
    class_map: Mapping[int, int] | None = None,  # class remaps of the features (manipulation)
    amp: bool = False,  # mixed precision (generate.amp)
) -> Iterator[torch.Tensor]:
    """The video's ``frames`` synthesised frames ``(3, H, W)``, lazily; the first ``num_frames - 1`` of them made
    as ``first_frames`` says, and the generator continuing from them (``hallucinate``: from nothing)."""
    device = next(model.generator.parameters()).device
    head = min(model.generator.num_frames - 1, frames)
    given: list[torch.Tensor] = []
    if first_frames == "real":
        given = [dataset.load_clip(video, t, 1)["image"][0] for t in range(head)]
    elif first_frames == "single_g":
        if first_model is None:
            raise ValueError("generate.first_frames single_g needs the per-frame model (models/baseline)")
        labels, features = video_inputs(first_model, dataset, video, head, seed, class_map)
        made = generate_stream(first_model.generator, labels, device, per_frame=True, features=features, amp=amp)
        given = [out["fake"] for out in made]
    elif first_frames != "hallucinate":
        raise ValueError(f"first_frames: unknown policy {first_frames!r}; one of {', '.join(FIRST_FRAME_POLICIES)}")
    labels, features = video_inputs(model, dataset, video, frames, seed, class_map)
    rest = generate_stream(model.generator, labels, device, first_frames=given, features=features, amp=amp)
    return itertools.chain(given, (out["fake"] for out in rest))
