"""The vid2vid sequential generator F: flow-warping + hallucination, foreground branch, coarse-to-fine scales.

One frame step (paper eq. 4)::

    fake_t = (1 - m_t) * warp(fake_{t-1}, w_t) + m_t * h_t

* ``h_t`` (``hallucinated``, image branch H, tanh), ``w_t`` (``flow``, branch W, pixels, backward flow in
  the convention of :mod:`v2v.ops.warp`: ``warp(fake_{t-1}, w_t) ≈ fake_t``) and ``m_t``
  (``occlusion_mask``, branch M, sigmoid; 1 = hallucinate, 0 = copy the warped previous frame).
  W and M share their whole decoder but the output layers; H has its own residual blocks and decoder.
* Input: the label maps of frames t-L..t (``num_frames = L + 1``, stacked along channels) and the
  L previously generated frames; a label encoder and a previous-frame encoder are summed.
* Foreground (optional, ``foreground_ids``): a separate branch always hallucinates the foreground
  classes; it is composited with the current frame's foreground label mask over both ``fake`` and
  ``hallucinated``.
* Without flow (``flow=False``, the reference's ``--no_flow``, an ablation of the paper): no W or M
  branch is built; ``fake`` is the hallucinated frame (still conditioned on the previous frames),
  reported with zero ``flow`` and an ``occlusion_mask`` of 1.
* Scales: scale 0 (:class:`CoarseGenerator`) works at ``1 / 2^(num_scales-1)`` of the resolution;
  scale s ≥ 1 (:class:`LocalEnhancer`, ``ngf / 2^s``, one downsampling, ``n_blocks_local``
  ResBlocks) adds the coarser scale's image/flow/foreground decoder features to its own encoding.

**Flow and mask from the coarser scale** (``flow_from_coarse``, a stated departure, on by default): a
local enhancer's flow is the coarser scale's, upsampled and doubled, plus its own output, and its
mask refines the coarser mask's logit; its flow and mask output layers start at zero, so a new scale
begins by warping exactly as the trained coarser one does instead of from a random flow (the
reference's enhancers predict both afresh and lean on a fixed-coarse warm-up, ``niter_fix_global``).

**Image from the coarser scale** (``image_from_coarse``, a stated departure, on by default): a local
enhancer's hallucinated image (and foreground) is the coarser scale's, upsampled, refined in tanh's
input space (``tanh(out + atanh(up(coarse)))``); its image output layers start at zero, so a new
scale begins by drawing exactly what the trained coarser scale drew, at twice the size, instead of
an untrained decoder's noise (the reference retrains the new image branch from scratch).

**Previous frames at the coarser scales** (a stated departure): every scale sees the *finest*
previous outputs, area-downsampled to its size, where the reference keeps a separate history of each
scale's own outputs. Both are the same at training and test time; ours keeps one history (generation
holds L frames, not L per scale) and lets the coarse scales condition on the detail the finer ones
added.

**First-frame policy.** With no previous frame at all (``prev_fakes=None`` at the start of a
sequence) the previous-frame input is zeros and the occlusion mask is forced to 1, so the first
frame is the hallucinated frame. While fewer than L frames exist, the window of previous frames
(and of label maps) is padded by repeating its earliest frame.

**Per-frame mode** (``per_frame=True``, the evaluation's image-to-image baseline in the spirit of
pix2pixHD): every frame is generated from its own label map alone (the label window repeats the
current frame, no previous frame, mask forced to 1), so no information flows between frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from v2v.models.layers import (
    Norm,
    ResBlock,
    assert_shape,
    conv_block,
    downsample,
    init_weights,
    load_grown,
    output_conv,
    stack_time,
    up_block,
)
from v2v.ops.warp import warp

FLOW_OUTPUT_SCALE = 20.0  # the flow layer's output is multiplied by this (× 2^s at scale s), as in the reference
MASK_EPS = 1e-4  # a coarser scale's mask is clamped to [eps, 1 - eps] before its logit is refined
IMAGE_EPS = 1e-3  # a coarser scale's image is clamped to [-1 + eps, 1 - eps] before its atanh is refined


def _upsample(x: torch.Tensor) -> torch.Tensor:
    """Twice the size, bilinear (a coarser scale's flow or mask at the next scale's resolution)."""
    return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _refine_image(head: nn.Module, features: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
    """An image output head (conv, tanh): ``tanh(conv(features))``, or with a coarser scale's image
    ``tanh(conv(features) + atanh(up(coarse)))`` (image_from_coarse)."""
    if coarse is None:
        return head(features)
    base = torch.atanh(_upsample(coarse).clamp(-1 + IMAGE_EPS, 1 - IMAGE_EPS))
    return torch.tanh(cast(nn.Sequential, head)[0](features) + base)


def _encoder(in_channels: int, ngf: int, n_downsample: int, norm: Norm) -> list[nn.Module]:
    """7×7 stem to ``ngf`` then ``n_downsample`` stride-2 convs doubling the channels."""
    layers: list[nn.Module] = [conv_block(in_channels, ngf, kernel_size=7, norm=norm, reflect=True)]
    for i in range(n_downsample):
        layers.append(conv_block(ngf * 2**i, ngf * 2 ** (i + 1), kernel_size=3, stride=2, norm=norm))
    return layers


def _decoder(ngf: int, n_upsample: int, norm: Norm) -> list[nn.Module]:
    """``n_upsample`` transposed convs halving the channels from ``ngf * 2^n_upsample`` down to ``ngf``."""
    return [
        up_block(ngf * 2 ** (n_upsample - i), ngf * 2 ** (n_upsample - i - 1), norm=norm) for i in range(n_upsample)
    ]


class _ScaleGenerator(nn.Module):
    """What both scales share: the output layers and the composition of warp, hallucination, foreground."""

    image_out: nn.Module
    flow_out: nn.Module | None  # None without flow (with mask_out and the flow decoder)
    mask_out: nn.Module | None
    foreground_out: nn.Module | None

    def __init__(self, *, ngf: int, image_channels: int, flow_scale: float, flow: bool) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.flow_scale = flow_scale
        self.image_out = nn.Sequential(output_conv(ngf, image_channels), nn.Tanh())
        self.flow_out = output_conv(ngf, 2) if flow else None
        self.mask_out = nn.Sequential(output_conv(ngf, 1), nn.Sigmoid()) if flow else None

    def _compose(
        self,
        *,
        image_features: torch.Tensor,
        flow_features: torch.Tensor | None,  # None: a generator without flow (model.flow false)
        foreground_features: torch.Tensor | None,
        prev: torch.Tensor,
        foreground_mask: torch.Tensor | None,
        raw_only: bool,
        coarse: Mapping[str, torch.Tensor] | None = None,  # the coarser scale's output: its flow and mask refined
        coarse_image: Mapping[str, torch.Tensor] | None = None,  # the coarser scale's output: its image refined
    ) -> dict[str, torch.Tensor]:
        hallucinated = _refine_image(
            self.image_out, image_features, coarse_image["hallucinated"] if coarse_image is not None else None
        )
        prev_last = prev[:, -self.image_channels :]
        if self.flow_out is None or self.mask_out is None or flow_features is None:
            # no flow branch (the reference's --no_flow): every pixel hallucinated, reported as zero flow, mask 1
            n, _, h, w = hallucinated.shape
            flow, mask, warped = hallucinated.new_zeros(n, 2, h, w), hallucinated.new_ones(n, 1, h, w), prev_last
            raw_only = True
        elif coarse is not None:  # residual refinement of the coarser scale's flow and mask (flow_from_coarse)
            flow = self.flow_out(flow_features) * self.flow_scale + 2 * _upsample(coarse["flow"])
            coarse_logit = torch.logit(_upsample(coarse["occlusion_mask"]).clamp(MASK_EPS, 1 - MASK_EPS))
            mask = torch.sigmoid(cast(nn.Sequential, self.mask_out)[0](flow_features) + coarse_logit)
            warped = warp(prev_last, flow)
        else:
            flow = self.flow_out(flow_features) * self.flow_scale
            mask = self.mask_out(flow_features)
            warped = warp(prev_last, flow)
        if raw_only:
            mask = torch.ones_like(mask)
            fake = hallucinated
        else:
            fake = hallucinated * mask + warped * (1 - mask)
        out = {"flow": flow, "occlusion_mask": mask, "warped": warped}
        if self.foreground_out is not None:
            assert foreground_features is not None and foreground_mask is not None
            foreground = _refine_image(
                self.foreground_out, foreground_features, coarse_image["foreground"] if coarse_image else None
            )
            fake = foreground * foreground_mask + fake * (1 - foreground_mask)
            hallucinated = foreground * foreground_mask + hallucinated * (1 - foreground_mask)
            out.update(foreground=foreground, foreground_features=foreground_features)
        out.update(fake=fake, hallucinated=hallucinated, image_features=image_features)
        if flow_features is not None:
            out.update(flow_features=flow_features)
        return out


class CoarseGenerator(_ScaleGenerator):
    """Scale 0: encoders → ResBlocks → image decoder H and flow/mask decoder W+M, plus the foreground branch."""

    def __init__(
        self,
        *,
        label_channels: int,  # input channels of the stacked label window (num_frames × per-frame channels)
        prev_channels: int,  # input channels of the stacked previous frames ((num_frames-1) × 3)
        image_channels: int = 3,  # output image channels
        ngf: int = 128,  # channels after the stem; doubled at each downsampling
        n_downsample: int = 3,  # stride-2 convs in each encoder
        n_blocks: int = 9,  # ResBlocks: ceil(n/2) in each encoder, floor(n/2) in each decoder
        norm: Norm = "batch",  # normalisation layers: batch (reference) | instance
        foreground: bool = False,  # build the always-hallucinating foreground branch (ngf/2)
        flow_scale: float = FLOW_OUTPUT_SCALE,  # flow output multiplier
        flow: bool = True,  # build the flow and mask branch W+M (False: the reference's --no_flow)
    ) -> None:
        super().__init__(ngf=ngf, image_channels=image_channels, flow_scale=flow_scale, flow=flow)
        width = ngf * 2**n_downsample
        n_enc, n_dec = n_blocks - n_blocks // 2, n_blocks // 2
        self.label_encoder = nn.Sequential(
            *_encoder(label_channels, ngf, n_downsample, norm), *[ResBlock(width, norm=norm) for _ in range(n_enc)]
        )
        self.prev_encoder = nn.Sequential(
            *_encoder(prev_channels, ngf, n_downsample, norm), *[ResBlock(width, norm=norm) for _ in range(n_enc)]
        )
        self.image_decoder = nn.Sequential(
            *[ResBlock(width, norm=norm) for _ in range(n_dec)], *_decoder(ngf, n_downsample, norm)
        )
        self.flow_decoder = (
            nn.Sequential(*[ResBlock(width, norm=norm) for _ in range(n_dec)], *_decoder(ngf, n_downsample, norm))
            if flow
            else None
        )
        self.foreground_net: nn.Module | None = None
        self.foreground_out = None
        if foreground:
            ngf_fg = ngf // 2
            self.foreground_net = nn.Sequential(
                *_encoder(label_channels, ngf_fg, n_downsample, norm),
                *[ResBlock(ngf_fg * 2**n_downsample, norm=norm) for _ in range(n_blocks)],
                *_decoder(ngf_fg, n_downsample, norm),
            )
            self.foreground_out = nn.Sequential(output_conv(ngf_fg, image_channels), nn.Tanh())

    def forward(
        self,
        label: torch.Tensor,  # (N, label_channels, h, w)
        prev: torch.Tensor,  # (N, prev_channels, h, w), oldest frame first
        foreground_mask: torch.Tensor | None = None,  # (N, 1, h, w) in [0, 1]
        coarse: Mapping[str, torch.Tensor] | None = None,  # unused at scale 0
        raw_only: bool = False,  # force the occlusion mask to 1 (no usable previous frame)
    ) -> dict[str, torch.Tensor]:
        if coarse is not None:
            raise ValueError("the coarsest scale takes no coarser features")
        encoded = self.label_encoder(label) + self.prev_encoder(prev)
        fg_features = self.foreground_net(label) if self.foreground_net is not None else None
        return self._compose(
            image_features=self.image_decoder(encoded),
            flow_features=self.flow_decoder(encoded) if self.flow_decoder is not None else None,
            foreground_features=fg_features,
            prev=prev,
            foreground_mask=foreground_mask,
            raw_only=raw_only,
        )


class LocalEnhancer(_ScaleGenerator):
    """Scale s ≥ 1: one-downsample encoders whose sum is added to the coarser scale's decoder features."""

    def __init__(
        self,
        *,
        label_channels: int,  # input channels of the stacked label window
        prev_channels: int,  # input channels of the stacked previous frames
        image_channels: int = 3,  # output image channels
        ngf: int = 64,  # this scale's width (the reference: coarse ngf / 2^s)
        n_blocks: int = 3,  # ResBlocks in each decoder
        norm: Norm = "batch",  # batch | instance
        foreground: bool = False,  # build the foreground enhancer (ngf/2)
        flow_scale: float = 2 * FLOW_OUTPUT_SCALE,  # flow output multiplier (20 · 2^s)
        flow: bool = True,  # build the flow and mask branch (False: the reference's --no_flow)
        flow_from_coarse: bool = False,  # flow and mask refine the coarser scale's (False: the reference's own)
        image_from_coarse: bool = False,  # the image refines the coarser scale's (False: the reference's own)
    ) -> None:
        super().__init__(ngf=ngf, image_channels=image_channels, flow_scale=flow_scale, flow=flow)
        self.flow_from_coarse = flow_from_coarse and flow
        self.image_from_coarse = image_from_coarse
        self.label_encoder = nn.Sequential(*_encoder(label_channels, ngf, 1, norm))
        self.prev_encoder = nn.Sequential(*_encoder(prev_channels, ngf, 1, norm))
        self.image_decoder = nn.Sequential(
            *[ResBlock(2 * ngf, norm=norm) for _ in range(n_blocks)], *_decoder(ngf, 1, norm)
        )
        self.flow_decoder = (
            nn.Sequential(*[ResBlock(2 * ngf, norm=norm) for _ in range(n_blocks)], *_decoder(ngf, 1, norm))
            if flow
            else None
        )
        self.foreground_encoder: nn.Module | None = None
        self.foreground_decoder: nn.Module | None = None
        self.foreground_out = None
        if foreground:
            ngf_fg = ngf // 2
            self.foreground_encoder = nn.Sequential(*_encoder(label_channels, ngf_fg, 1, norm))
            self.foreground_decoder = nn.Sequential(
                *[ResBlock(2 * ngf_fg, norm=norm) for _ in range(n_blocks)], *_decoder(ngf_fg, 1, norm)
            )
            self.foreground_out = nn.Sequential(output_conv(ngf_fg, image_channels), nn.Tanh())

    def forward(
        self,
        label: torch.Tensor,  # (N, label_channels, h, w)
        prev: torch.Tensor,  # (N, prev_channels, h, w)
        foreground_mask: torch.Tensor | None = None,  # (N, 1, h, w)
        coarse: Mapping[str, torch.Tensor] | None = None,  # the coarser scale's output dict (its *_features)
        raw_only: bool = False,  # force the occlusion mask to 1
    ) -> dict[str, torch.Tensor]:
        if coarse is None:
            raise ValueError("a local enhancer needs the coarser scale's features")
        encoded = self.label_encoder(label) + self.prev_encoder(prev)
        fg_features = None
        if self.foreground_encoder is not None and self.foreground_decoder is not None:
            fg_features = self.foreground_decoder(self.foreground_encoder(label) + coarse["foreground_features"])
        return self._compose(
            image_features=self.image_decoder(encoded + coarse["image_features"]),
            flow_features=(
                self.flow_decoder(encoded + coarse["flow_features"]) if self.flow_decoder is not None else None
            ),
            foreground_features=fg_features,
            prev=prev,
            foreground_mask=foreground_mask,
            raw_only=raw_only,
            coarse=coarse if self.flow_from_coarse else None,
            coarse_image=coarse if self.image_from_coarse else None,
        )

    def start_from_coarse(self) -> None:
        """Zero the output layers that refine the coarser scale's: a fresh enhancer passes the coarser scale's
        flow and mask (``flow_from_coarse``) and image (``image_from_coarse``) on unchanged, upsampled, and
        learns only the refinement."""
        layers: list[nn.Conv2d] = []
        if self.flow_from_coarse:
            assert self.flow_out is not None and self.mask_out is not None
            layers += [cast(nn.Conv2d, self.flow_out), cast(nn.Conv2d, cast(nn.Sequential, self.mask_out)[0])]
        if self.image_from_coarse:
            layers += [
                cast(nn.Conv2d, cast(nn.Sequential, head)[0])
                for head in (self.image_out, self.foreground_out)
                if head is not None
            ]
        for layer in layers:
            nn.init.zeros_(layer.weight)
            assert layer.bias is not None
            nn.init.zeros_(layer.bias)


OUTPUT_KEYS = ("fake", "hallucinated", "flow", "occlusion_mask", "warped")


class Vid2VidGenerator(nn.Module):
    """The full sequential generator over ``num_scales`` spatial scales (public tensors ``(B, T, C, H, W)``)."""

    def __init__(
        self,
        *,
        label_channels: int,  # per-frame input channels (one-hot classes + instance boundary, or edge/pose maps)
        feature_channels: int = 0,  # per-frame channels of encoder features concatenated to the labels
        image_channels: int = 3,  # output image channels
        num_frames: int = 3,  # frames of labels fed per step (L + 1); num_frames - 1 previous outputs
        ngf: int = 128,  # scale-0 width
        n_downsample: int = 3,  # scale-0 downsamplings
        n_blocks: int = 9,  # scale-0 ResBlocks
        n_blocks_local: int = 3,  # ResBlocks of each local enhancer
        num_scales: int = 1,  # spatial scales (1 = just the coarse generator)
        norm: Norm = "batch",  # batch | instance
        foreground_ids: Sequence[int] = (),  # label channels (ids) of foreground classes; () = no fg branch
        flow: bool = True,  # flow warping (W + M); False: every frame hallucinated (the reference's --no_flow)
        flow_from_coarse: bool = False,  # scales s >= 1 refine the coarser scale's flow and mask (a departure)
        image_from_coarse: bool = False,  # scales s >= 1 refine the coarser scale's image (a departure)
    ) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (labels t-L..t with L >= 1), got {num_frames}")
        if num_scales < 1 or ngf % 2 ** (num_scales - 1 + (1 if foreground_ids else 0)):
            raise ValueError(f"ngf {ngf} cannot be halved for {num_scales} scales (and the foreground branch)")
        if any(not 0 <= i < label_channels for i in foreground_ids):
            raise ValueError(f"foreground_ids {tuple(foreground_ids)} must index the {label_channels} label channels")
        self.label_channels = label_channels
        self.feature_channels = feature_channels
        self.image_channels = image_channels
        self.num_frames = num_frames
        self.n_downsample = n_downsample
        self.num_scales = num_scales
        self.foreground_ids = tuple(foreground_ids)
        self.flow = flow
        in_label = num_frames * (label_channels + feature_channels)
        in_prev = (num_frames - 1) * image_channels
        fg = bool(self.foreground_ids)
        scales: list[nn.Module] = [
            CoarseGenerator(
                label_channels=in_label,
                prev_channels=in_prev,
                image_channels=image_channels,
                ngf=ngf,
                n_downsample=n_downsample,
                n_blocks=n_blocks,
                norm=norm,
                foreground=fg,
                flow=flow,
            )
        ]
        for s in range(1, num_scales):
            scales.append(
                LocalEnhancer(
                    label_channels=in_label,
                    prev_channels=in_prev,
                    image_channels=image_channels,
                    ngf=ngf // 2**s,
                    n_blocks=n_blocks_local,
                    norm=norm,
                    foreground=fg,
                    flow_scale=FLOW_OUTPUT_SCALE * 2**s,
                    flow=flow,
                    flow_from_coarse=flow_from_coarse,
                    image_from_coarse=image_from_coarse,
                )
            )
        self.scales = nn.ModuleList(scales)
        init_weights(self)
        for enhancer in self.scales[1:]:
            if isinstance(enhancer, LocalEnhancer):
                enhancer.start_from_coarse()

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this."""
        return 2 ** (self.n_downsample + self.num_scales - 1)

    def foreground_mask(self, label: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` one-hot labels of one frame → ``(N, 1, H, W)`` foreground mask in [0, 1]."""
        mask = label[:, list(self.foreground_ids)].sum(dim=1, keepdim=True)
        return mask.clamp(0, 1)

    def step(
        self,
        labels: torch.Tensor,  # (B, num_frames, label_channels, H, W): labels of frames t-L..t
        prev_fakes: torch.Tensor | None,  # (B, num_frames-1, 3, H, W): frames t-L..t-1; None = no previous frame
        features: torch.Tensor | None = None,  # (B, num_frames, feature_channels, H, W) encoder features
    ) -> dict[str, torch.Tensor]:
        """Generate frame t. Returns ``(B, C, H, W)`` tensors at the finest scale (``fake``,
        ``hallucinated``, ``flow``, ``occlusion_mask``, ``warped``, and ``foreground``,
        ``foreground_mask`` with a foreground branch) plus ``fake_scale{s}`` for every coarser scale
        s (at ``1 / 2^(num_scales-1-s)`` of the size)."""
        b, _, _, h, w = labels.shape
        assert_shape(labels, [b, self.num_frames, self.label_channels, h, w], "labels")
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"frame size {w}x{h} must be a multiple of {self.size_multiple} for this generator")
        if self.feature_channels:
            if features is None:
                raise ValueError(f"this generator takes {self.feature_channels} feature channels; pass features")
            assert_shape(features, [b, self.num_frames, self.feature_channels, h, w], "features")
            labels = torch.cat([labels, features.to(labels.dtype)], dim=2)
        elif features is not None:
            raise ValueError("features given but the generator was built with feature_channels=0")
        raw_only = prev_fakes is None
        if prev_fakes is None:
            prev_fakes = labels.new_zeros(b, self.num_frames - 1, self.image_channels, h, w)
        assert_shape(prev_fakes, [b, self.num_frames - 1, self.image_channels, h, w], "prev_fakes")

        label_stack, prev_stack = stack_time(labels), stack_time(prev_fakes)
        fg_mask = self.foreground_mask(labels[:, -1]) if self.foreground_ids else None
        out: dict[str, torch.Tensor] = {}
        result: dict[str, torch.Tensor] = {}
        for s, net in enumerate(self.scales):
            times = self.num_scales - 1 - s
            out = net(
                downsample(label_stack, times),
                downsample(prev_stack, times),
                foreground_mask=downsample(fg_mask, times) if fg_mask is not None else None,
                coarse=out if s > 0 else None,
                raw_only=raw_only,
            )
            if s < self.num_scales - 1:
                result[f"fake_scale{s}"] = out["fake"]
        result.update({k: out[k] for k in OUTPUT_KEYS})
        if fg_mask is not None:
            result.update(foreground=out["foreground"], foreground_mask=fg_mask)
        return result

    def forward(
        self,
        labels: torch.Tensor,  # (B, T, label_channels, H, W)
        prev_fakes: torch.Tensor | None = None,  # (B, num_frames-1, 3, H, W): frames of labels[:, :num_frames-1]
        features: torch.Tensor | None = None,  # (B, T, feature_channels, H, W)
        n_frames_backprop: int = 1,  # previous outputs are detached every this many frames (1: always)
        per_frame: bool = False,  # every frame from its own labels only (the per-frame baseline)
    ) -> dict[str, torch.Tensor]:
        """Generate a clip autoregressively.

        With ``prev_fakes`` (e.g. real frames in training) the first ``num_frames - 1`` label frames are
        context and ``T - num_frames + 1`` frames are generated; without, all ``T`` frames are generated
        (first-frame policy in the module docstring). Returns ``(B, T_out, C, H, W)`` tensors.

        Gradients through the previous outputs (the reference's ``n_frames_backpropagate``): before
        generated frames 0, n, 2n, ... every earlier output is detached, so a frame's loss reaches
        at most ``n - 1`` previous outputs; ``n = 1`` (the reference's default) detaches them all.
        """
        if n_frames_backprop < 1:
            raise ValueError(f"n_frames_backprop must be >= 1, got {n_frames_backprop}")
        b, t, _, h, w = labels.shape
        if per_frame:
            return self.per_frame_step(labels, features)
        context = self.num_frames - 1
        history: list[torch.Tensor] = []
        start = 0
        if prev_fakes is not None:
            assert_shape(prev_fakes, [b, context, self.image_channels, h, w], "prev_fakes")
            if t <= context:
                raise ValueError(f"labels has {t} frames; need more than the {context} context frames")
            history = list(prev_fakes.unbind(1))
            start = context
        steps: list[dict[str, torch.Tensor]] = []
        for k, i in enumerate(range(start, t)):
            if k % n_frames_backprop == 0:
                history = [frame.detach() for frame in history]
            window = [max(j, 0) for j in range(i - context, i + 1)]
            prev = None
            if history:
                recent = history[-context:]
                prev = torch.stack([recent[0]] * (context - len(recent)) + recent, dim=1)
            out = self.step(labels[:, window], prev, features[:, window] if features is not None else None)
            steps.append(out)
            history.append(out["fake"])
        return {key: torch.stack([s[key] for s in steps], dim=1) for key in steps[0]}

    def per_frame_step(self, labels: torch.Tensor, features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-frame mode: ``(B, T, C, H, W)`` labels → ``(B, T, ...)`` outputs, all frames in one batch."""
        b, t = labels.shape[:2]

        def window(x: torch.Tensor) -> torch.Tensor:  # (B, T, C, H, W) → (B*T, num_frames, C, H, W), repeated
            return x.reshape(b * t, 1, *x.shape[2:]).expand(-1, self.num_frames, -1, -1, -1)

        out = self.step(window(labels), None, window(features) if features is not None else None)
        return {key: value.reshape(b, t, *value.shape[1:]) for key, value in out.items()}


def load_coarser_scales(model: Vid2VidGenerator, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Initialise ``model`` from a checkpoint of a generator with fewer scales (scale growth); the new
    finer scales keep their fresh initialisation. Returns the names of the tensors left at it."""
    return load_grown(model, state_dict, "generator")
