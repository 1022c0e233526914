"""Discriminators: the conditional multi-scale PatchGAN image discriminator D_I and the video discriminator D_V.

Every discriminator returns, for each spatial scale (finest first), the list of its layer outputs;
the last entry of each list is the patch prediction, the others are the intermediate features used
by the feature-matching loss. Type: ``list[list[Tensor]]`` (see :data:`Predictions`).
"""

from __future__ import annotations

import itertools
import re

import torch
import torch.nn.functional as F
from torch import nn

from v2v.models.layers import Norm, assert_shape, fold_time, init_weights, norm_layer, stack_time
from v2v.ops.warp import warp

Predictions = list[list[torch.Tensor]]  # per scale (finest first): layer outputs, the prediction last


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4×4 convs (channels doubling up to 512), one stride-1 conv, a 1-channel head."""

    def __init__(
        self,
        *,
        in_channels: int,  # input channels
        ndf: int = 64,  # channels of the first layer
        n_layers: int = 3,  # stride-2 layers (the receptive field grows with it)
        norm: Norm = "batch",  # batch | instance (no norm on the first and the last layer)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2, inplace=True))
        ]
        channels = ndf
        for i in range(1, n_layers + 1):
            out_channels = min(channels * 2, 512)
            stride = 2 if i < n_layers else 1
            layers.append(
                nn.Sequential(
                    nn.Conv2d(channels, out_channels, 4, stride=stride, padding=2),
                    norm_layer(norm, out_channels),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            channels = out_channels
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs applied to the input and to its 2×, 4×, ... average-pooled versions."""

    def __init__(
        self,
        *,
        in_channels: int,  # input channels
        ndf: int = 64,  # first-layer channels of every PatchGAN
        n_layers: int = 3,  # layers of every PatchGAN
        num_d: int = 2,  # spatial scales
        norm: Norm = "batch",  # batch | instance
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.nets = nn.ModuleList(
            PatchDiscriminator(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm) for _ in range(num_d)
        )

    def forward(self, x: torch.Tensor) -> Predictions:
        assert_shape(x, [None, self.in_channels, None, None], "discriminator input")
        results = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(net(x))
        return results


def grown_by_resolution(state_dict: dict[str, torch.Tensor], growth: int) -> dict[str, torch.Tensor]:
    """A discriminator's state at the previous generator scale, renamed for the next one: by input resolution.

    The PatchGANs of a :class:`MultiscaleDiscriminator` are finest first (``nets.0`` sees the full frame).
    When the generator grows one scale the frames double in size and the discriminator gains ``growth``
    PatchGANs: each trained PatchGAN keeps judging the resolution it learned (old ``nets.i`` becomes
    ``nets.{i + growth}``) and the fresh ones take the new, finer resolutions (the reference names its
    PatchGANs ``scale{num_D-1-i}`` for this reason).
    """

    def renamed(key: str) -> str:
        return re.sub(r"(^|\.)nets\.(\d+)\.", lambda m: f"{m.group(1)}nets.{int(m.group(2)) + growth}.", key, count=1)

    return {renamed(k): v for k, v in state_dict.items()}


class ImageDiscriminator(nn.Module):
    """Conditional image discriminator D_I: judges each frame together with its label maps."""

    def __init__(
        self,
        *,
        label_channels: int,  # per-frame label channels (the condition)
        image_channels: int = 3,  # image channels
        ndf: int = 64,  # first-layer channels
        n_layers: int = 3,  # PatchGAN layers
        num_d: int = 2,  # spatial scales
        norm: Norm = "batch",  # batch | instance
    ) -> None:
        super().__init__()
        self.label_channels = label_channels
        self.image_channels = image_channels
        self.net = MultiscaleDiscriminator(
            in_channels=label_channels + image_channels, ndf=ndf, n_layers=n_layers, num_d=num_d, norm=norm
        )
        init_weights(self)

    def forward(
        self,
        labels: torch.Tensor,  # (B, T, label_channels, H, W)
        images: torch.Tensor,  # (B, T, image_channels, H, W) in [-1, 1]
    ) -> Predictions:
        """Per scale, layer outputs of the ``B*T`` frames (frames folded into the batch)."""
        b, t, _, h, w = images.shape
        assert_shape(labels, [b, t, self.label_channels, h, w], "labels")
        assert_shape(images, [b, t, self.image_channels, h, w], "images")
        return self.net(torch.cat([fold_time(labels), fold_time(images.to(labels.dtype))], dim=1))


def temporal_indices(num_frames: int, clip_length: int, stride: int) -> list[list[int]]:
    """Frame indices of every window of ``num_frames`` frames ``stride`` apart in a clip of ``clip_length``."""
    span = (num_frames - 1) * stride
    return [[start + k * stride for k in range(num_frames)] for start in range(clip_length - span)]


def chain_flows(flows: torch.Tensor) -> torch.Tensor:
    """Compose consecutive backward flows into one: ``(N, S, 2, H, W)`` for frames t-S+1..t → ``(N, 2, H, W)``.

    With ``warp(x_{t-1}, f_t) ≈ x_t`` (see :mod:`v2v.ops.warp`), the flow from t-2 to t is
    ``f_t + warp(f_{t-1}, f_t)``; applied repeatedly this gives the flow from t-S to t.
    """
    total = flows[:, -1]
    for k in range(flows.shape[1] - 2, -1, -1):
        total = total + warp(flows[:, k], total)
    return total


class VideoDiscriminator(nn.Module):
    """Conditional video discriminator D_V: K frames ``stride`` apart plus the ground-truth flows between them.

    One multi-scale PatchGAN per temporal scale s, which sees frames ``stride_base^s`` apart
    (strides 1, 3, 9, ... for the reference). Its input is the K frames stacked along channels
    (oldest first) followed by the K-1 flows between them (divided by ``flow_norm``).
    """

    def __init__(
        self,
        *,
        image_channels: int = 3,  # image channels
        num_frames: int = 3,  # K frames per window
        num_temporal_scales: int = 2,  # temporal scales (strides stride_base^0, stride_base^1, ...)
        stride_base: int = 3,  # frame stride grows by this factor per temporal scale
        ndf: int = 64,  # first-layer channels
        n_layers: int = 3,  # PatchGAN layers
        num_d: int = 2,  # spatial scales of each temporal scale
        norm: Norm = "batch",  # batch | instance
        flow_norm: float = 20.0,  # flows are divided by this before entering the network
    ) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.num_frames = num_frames
        self.stride_base = stride_base
        self.flow_norm = flow_norm
        in_channels = image_channels * num_frames + 2 * (num_frames - 1)
        self.scales = nn.ModuleList(
            MultiscaleDiscriminator(in_channels=in_channels, ndf=ndf, n_layers=n_layers, num_d=num_d, norm=norm)
            for _ in range(num_temporal_scales)
        )
        init_weights(self)

    @property
    def num_temporal_scales(self) -> int:
        return len(self.scales)

    def stride(self, scale: int) -> int:
        """Frame stride seen by temporal scale ``scale``."""
        return self.stride_base**scale

    def min_clip_length(self, scale: int) -> int:
        """Frames a clip needs for temporal scale ``scale`` to see one window."""
        return (self.num_frames - 1) * self.stride(scale) + 1

    def forward(
        self,
        frames: torch.Tensor,  # (B, K, C, H, W): K frames already ``stride(scale)`` apart
        flows: torch.Tensor,  # (B, K-1, 2, H, W): backward flow onto each of frames 1..K-1 from its predecessor
        scale: int,  # temporal scale
    ) -> Predictions:
        b, _, _, h, w = frames.shape
        assert_shape(frames, [b, self.num_frames, self.image_channels, h, w], "frames")
        assert_shape(flows, [b, self.num_frames - 1, 2, h, w], "flows")
        x = torch.cat([stack_time(frames), stack_time(flows.to(frames.dtype)) / self.flow_norm], dim=1)
        return self.scales[scale](x)

    def windows(
        self,
        video: torch.Tensor,  # (B, T, C, H, W)
        flows: torch.Tensor,  # (B, T, 2, H, W): flows[:, t] is the backward flow t-1 → t (flows[:, 0] unused)
        scale: int,  # temporal scale
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All windows of temporal scale ``scale`` in a clip: ``(B*W, K, C, H, W)`` frames and
        ``(B*W, K-1, 2, H, W)`` flows between the chosen frames (consecutive flows chained)."""
        b, t, _, h, w = video.shape
        assert_shape(flows, [b, t, 2, h, w], "flows")
        stride = self.stride(scale)
        index = temporal_indices(self.num_frames, t, stride)
        if not index:
            raise ValueError(
                f"temporal scale {scale} (stride {stride}) needs clips of >= {self.min_clip_length(scale)} frames, got {t}"
            )
        frames = torch.stack([video[:, idx] for idx in index], dim=1).flatten(0, 1)
        between = []
        for idx in index:
            per_pair = [
                chain_flows(flows[:, a + 1 : b_ + 1]) if stride > 1 else flows[:, b_]
                for a, b_ in itertools.pairwise(idx)
            ]
            between.append(torch.stack(per_pair, dim=1))
        return frames, torch.stack(between, dim=1).flatten(0, 1)
