"""Named model configurations (``tiny`` for tests, ``small`` for CPU work, ``reference`` = official Cityscapes 512)
and the builders that turn one into networks.

``resolve_preset("small", ngf=32)`` returns the preset with overrides applied (``None`` keeps the
preset's value); the ``build_*`` functions construct seeded networks from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

from v2v.data.tasks import CITYSCAPES_FOREGROUND_IDS
from v2v.models.discriminators import ImageDiscriminator, VideoDiscriminator
from v2v.models.encoder import FeatureEncoder
from v2v.models.generator import Vid2VidGenerator
from v2v.models.layers import Norm, count_parameters

PresetName = Literal["tiny", "small", "reference"]


@dataclass(frozen=True)
class ModelPreset:
    """Every architecture knob of G, E, D_I and D_V."""

    # inputs
    label_classes: int  # one-hot semantic channels per frame (Cityscapes: 35 label ids)
    instance_boundary: bool  # one extra channel per frame: instance boundaries
    image_channels: int  # output image channels
    # generator
    num_frames_g: int  # label frames per step (previous outputs: num_frames_g - 1)
    ngf: int  # scale-0 width
    n_downsample_g: int  # scale-0 downsamplings
    n_blocks: int  # scale-0 ResBlocks
    n_blocks_local: int  # ResBlocks per local enhancer
    num_scales: int  # spatial scales of the generator
    foreground_ids: tuple[int, ...]  # label ids always hallucinated by the foreground branch; () = no branch
    norm: Norm  # batch | instance, all networks
    # feature encoder (multimodal synthesis); feature_channels 0 = no encoder
    feature_channels: int
    ngf_e: int
    n_downsample_e: int
    # discriminators
    ndf: int
    n_layers_d: int
    num_d: int  # spatial scales of D_I and of each D_V at generator scale 0
    num_d_growth: int  # spatial scales added to them per generator scale (the reference: 2, 3, 4 at 512, 1024, 2048)
    num_frames_d: int  # frames per D_V window
    num_temporal_scales: int  # D_V temporal scales (strides temporal_stride_base^s)
    temporal_stride_base: int
    # the paper's ablations (defaults: the full method; older model files lack these fields)
    flow: bool = True  # G warps the previous frame by its predicted flow (False: the reference's --no_flow)
    foreground: bool = True  # a foreground branch for foreground_ids (False: one image branch for every class)
    video_discriminator: bool = True  # D_V judges the clips (False: image discriminator only)
    # scales s >= 1 refine the coarser scale's flow and mask (False: predicted afresh, the reference; older files)
    flow_from_coarse: bool = False
    # scales s >= 1 refine the coarser scale's image (False: drawn afresh, the reference; older files)
    image_from_coarse: bool = False

    def num_d_at(self, scale: int) -> int:
        """Spatial scales of the discriminators while generator scale ``scale`` trains."""
        return self.num_d + self.num_d_growth * scale

    @property
    def label_channels(self) -> int:
        """Per-frame generator/discriminator condition channels (without encoder features)."""
        return self.label_classes + int(self.instance_boundary)


PRESETS: dict[str, ModelPreset] = {
    "reference": ModelPreset(
        label_classes=35,
        instance_boundary=True,
        image_channels=3,
        num_frames_g=3,
        ngf=128,
        n_downsample_g=3,
        n_blocks=9,
        n_blocks_local=3,
        num_scales=1,
        foreground_ids=CITYSCAPES_FOREGROUND_IDS,
        norm="batch",
        feature_channels=0,
        ngf_e=16,
        n_downsample_e=4,
        ndf=64,
        n_layers_d=3,
        num_d=2,
        num_d_growth=1,
        num_frames_d=3,
        num_temporal_scales=2,
        temporal_stride_base=3,
    ),
    "small": ModelPreset(
        label_classes=35,
        instance_boundary=True,
        image_channels=3,
        num_frames_g=3,
        ngf=32,
        n_downsample_g=3,
        n_blocks=6,
        n_blocks_local=2,
        num_scales=1,
        foreground_ids=CITYSCAPES_FOREGROUND_IDS,
        norm="batch",
        feature_channels=0,
        ngf_e=16,
        n_downsample_e=3,
        ndf=32,
        n_layers_d=3,
        num_d=2,
        num_d_growth=1,
        num_frames_d=3,
        num_temporal_scales=2,
        temporal_stride_base=3,
    ),
    "tiny": ModelPreset(
        label_classes=6,
        instance_boundary=True,
        image_channels=3,
        num_frames_g=3,
        ngf=16,
        n_downsample_g=2,
        n_blocks=2,
        n_blocks_local=1,
        num_scales=1,
        foreground_ids=(4, 5),
        norm="batch",
        feature_channels=0,
        ngf_e=8,
        n_downsample_e=2,
        ndf=8,
        n_layers_d=2,
        num_d=2,
        num_d_growth=1,
        num_frames_d=3,
        num_temporal_scales=2,
        temporal_stride_base=3,
    ),
}


def resolve_preset(name: str, **overrides: Any) -> ModelPreset:
    """The named preset with ``overrides`` applied; ``None`` values keep the preset's value."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(ModelPreset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown model override(s) {unknown}; known: {', '.join(sorted(fields))}")
    given: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None}
    return dataclasses.replace(PRESETS[name], **given)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Build under a forked global RNG seeded with ``seed`` (``None``: the ambient RNG, not restored)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_generator(preset: ModelPreset, *, num_scales: int | None = None, seed: int | None = 0) -> Vid2VidGenerator:
    """The generator of ``preset`` (``num_scales`` overrides the preset's, for scale growth)."""
    with _seeded(seed):
        return Vid2VidGenerator(
            label_channels=preset.label_channels,
            feature_channels=preset.feature_channels,
            image_channels=preset.image_channels,
            num_frames=preset.num_frames_g,
            ngf=preset.ngf,
            n_downsample=preset.n_downsample_g,
            n_blocks=preset.n_blocks,
            n_blocks_local=preset.n_blocks_local,
            num_scales=num_scales if num_scales is not None else preset.num_scales,
            norm=preset.norm,
            foreground_ids=preset.foreground_ids if preset.foreground else (),
            flow=preset.flow,
            flow_from_coarse=preset.flow_from_coarse,
            image_from_coarse=preset.image_from_coarse,
        )


def build_encoder(preset: ModelPreset, *, seed: int | None = 0) -> FeatureEncoder:
    """The feature encoder E (requires ``feature_channels > 0``)."""
    if preset.feature_channels <= 0:
        raise ValueError("this preset has feature_channels 0: no feature encoder; set feature_channels > 0")
    with _seeded(seed):
        return FeatureEncoder(
            image_channels=preset.image_channels,
            feature_channels=preset.feature_channels,
            ngf=preset.ngf_e,
            n_downsample=preset.n_downsample_e,
            norm=preset.norm,
        )


def build_image_discriminator(preset: ModelPreset, *, scale: int = 0, seed: int | None = 0) -> ImageDiscriminator:
    """D_I of ``preset`` for generator scale ``scale`` (:meth:`ModelPreset.num_d_at` spatial scales)."""
    with _seeded(seed):
        return ImageDiscriminator(
            label_channels=preset.label_channels,
            image_channels=preset.image_channels,
            ndf=preset.ndf,
            n_layers=preset.n_layers_d,
            num_d=preset.num_d_at(scale),
            norm=preset.norm,
        )


def build_video_discriminator(preset: ModelPreset, *, scale: int = 0, seed: int | None = 0) -> VideoDiscriminator:
    """D_V of ``preset`` for generator scale ``scale`` (one multi-scale PatchGAN per temporal scale)."""
    with _seeded(seed):
        return VideoDiscriminator(
            image_channels=preset.image_channels,
            num_frames=preset.num_frames_d,
            num_temporal_scales=preset.num_temporal_scales,
            stride_base=preset.temporal_stride_base,
            ndf=preset.ndf,
            n_layers=preset.n_layers_d,
            num_d=preset.num_d_at(scale),
            norm=preset.norm,
        )


def parameter_report(preset: ModelPreset, *, num_scales: int | None = None) -> dict[str, int]:
    """Parameter counts of every sub-network of ``preset`` (built on the ``meta`` device: nothing is allocated)."""
    with torch.device("meta"):
        gen = build_generator(preset, num_scales=num_scales, seed=None)
        d_image = build_image_discriminator(preset, seed=None)
        d_video = build_video_discriminator(preset, seed=None) if preset.video_discriminator else None
        encoder = build_encoder(preset, seed=None) if preset.feature_channels > 0 else None
    report: dict[str, int] = {}
    for s, net in enumerate(gen.scales):
        for name, child in net.named_children():
            report[f"G.scale{s}.{name}"] = count_parameters(child)
        report[f"G.scale{s}"] = count_parameters(net)
    report["G"] = count_parameters(gen)
    if encoder is not None:
        report["E"] = count_parameters(encoder)
    report["D_I"] = count_parameters(d_image)
    for s, net in enumerate(d_video.scales if d_video is not None else []):
        report[f"D_V.temporal{s}"] = count_parameters(net)
    return report
