"""The vid2vid objective: which losses judge a generated clip, assembled from :mod:`v2v.losses`.

Models compute (:mod:`v2v.models`), these judge, the loop (:mod:`v2v.training.loop`) updates.
Clips are ``(B, T, C, H, W)``; the generator produced frames ``context..T-1`` from the real
frames ``0..context-1`` (``context`` is ``num_frames_g - 1``, or 0 when it generated the whole clip
from the labels alone, as at test time), so every term below lines generated frame ``t`` up with
real frame ``t``, its ground-truth flow ``flow[:, t]`` (onto frame t-1) and its confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from v2v.losses.flow import FlowLoss, MaskRegulariser, WarpConsistencyLoss
from v2v.losses.gan import FeatureMatchingLoss, GANLoss
from v2v.losses.perceptual import VGGPerceptualLoss
from v2v.models.discriminators import ImageDiscriminator, Predictions, VideoDiscriminator


@dataclass(frozen=True)
class LossWeights:
    gan: float = 1.0  # adversarial terms of D_I and D_V
    feature_matching: float = 10.0  # discriminator feature matching (both Ds)
    vgg: float = 10.0  # VGG19 perceptual (0 disables it: no VGG is built)
    flow: float = 10.0  # L1 to the ground-truth flow
    flow_warp: float = 10.0  # L1 of the real previous frame warped by the predicted flow
    warp: float = 10.0  # warp consistency of the generated frames
    mask: float = 1.0  # occlusion-mask regulariser


@dataclass(frozen=True)
class ClipBatch:
    """One training batch, with the generated part aligned to its targets."""

    label: torch.Tensor  # (B, T, C, H, W) conditions
    image: torch.Tensor  # (B, T, 3, H, W) real frames in [-1, 1]
    flow: torch.Tensor  # (B, T, 2, H, W) ground-truth backward flow
    flow_valid: torch.Tensor  # (B, T, 1, H, W)
    context: int  # real frames given to the generator as previous frames (0: it generated every frame)


class Vid2VidObjective:
    """Discriminator and generator losses of one clip; every call returns named scalar terms."""

    def __init__(
        self,
        *,
        weights: LossWeights = LossWeights(),  # term weights
        gan_mode: str = "lsgan",  # lsgan (reference) | hinge
        vgg_weights: str = "imagenet",  # imagenet | none (tests only) | path; unused when weights.vgg == 0
        temporal: bool = True,  # False: image terms only (no D_V, flow, warp or mask terms): the per-frame baseline
    ) -> None:
        self.weights = weights
        self.temporal = temporal
        self.image_gan = GANLoss(mode=gan_mode, weight=weights.gan)  # type: ignore[arg-type]
        self.video_gan = GANLoss(mode=gan_mode, weight=weights.gan, prefix="video_")  # type: ignore[arg-type]
        self.image_feat = FeatureMatchingLoss(weight=weights.feature_matching)
        self.video_feat = FeatureMatchingLoss(weight=weights.feature_matching, prefix="video_")
        self.vgg = VGGPerceptualLoss(weights=vgg_weights, weight=weights.vgg) if weights.vgg > 0 else None
        self.flow_loss = FlowLoss(weight_flow=weights.flow, weight_warp=weights.flow_warp)
        self.warp_loss = WarpConsistencyLoss(weight=weights.warp)
        self.mask_loss = MaskRegulariser(weight=weights.mask)

    @property
    def vgg_weights_used(self) -> str:
        return self.vgg.weights_used if self.vgg is not None else "not used (losses.vgg = 0)"

    def to(self, device: torch.device) -> Vid2VidObjective:
        if self.vgg is not None:
            self.vgg.to(device)
        return self

    def fake_video_scales(self, video_d: VideoDiscriminator, frames: int) -> list[int]:
        """Temporal scales of D_V that a generated clip of ``frames`` frames is long enough for (none without D_V)."""
        if not self.temporal:
            return []
        bare = _bare(video_d)
        return [s for s in range(bare.num_temporal_scales) if frames >= bare.min_clip_length(s)]

    def discriminator(
        self,
        batch: ClipBatch,
        fake: torch.Tensor,  # (B, T - context, 3, H, W), detached
        image_d: ImageDiscriminator,
        video_d: VideoDiscriminator,
    ) -> dict[str, torch.Tensor]:
        c = batch.context
        real, label, flow = batch.image[:, c:], batch.label[:, c:], batch.flow[:, c:]
        terms = self.image_gan.discriminator(*_judge(image_d, (label, real), (label, fake)))
        for s in self.fake_video_scales(video_d, fake.shape[1]):
            real_frames, real_flows = _bare(video_d).windows(real, flow, s)
            fake_frames, _ = _bare(video_d).windows(fake, flow, s)
            scale_terms = self.video_gan.discriminator(
                *_judge(video_d, (real_frames, real_flows), (fake_frames, real_flows), s)
            )
            for key, value in scale_terms.items():
                terms[key] = terms.get(key, torch.zeros((), device=value.device)) + value
        return terms

    def generator(
        self,
        batch: ClipBatch,
        out: dict[str, torch.Tensor],  # generator outputs, (B, T - context, C, H, W) each
        image_d: ImageDiscriminator,
        video_d: VideoDiscriminator,
    ) -> dict[str, torch.Tensor]:
        c = batch.context
        fake = out["fake"]
        real, label, flow = batch.image[:, c:], batch.label[:, c:], batch.flow[:, c:]
        pred_fake, pred_real = _judge(image_d, (label, fake), (label, real))
        terms = {**self.image_gan.generator(pred_fake), **self.image_feat(pred_fake, pred_real)}
        for s in self.fake_video_scales(video_d, fake.shape[1]):
            real_frames, real_flows = _bare(video_d).windows(real, flow, s)
            fake_frames, _ = _bare(video_d).windows(fake, flow, s)
            v_fake, v_real = _judge(video_d, (fake_frames, real_flows), (real_frames, real_flows), s)
            for key, value in {**self.video_gan.generator(v_fake), **self.video_feat(v_fake, v_real)}.items():
                terms[key] = terms.get(key, torch.zeros((), device=value.device)) + value
        if self.vgg is not None:
            terms.update(self.vgg(fake, real))
        # temporal terms need a previous frame: frames g0..T-1 (g0 = c, or 1 when nothing was given)
        g0 = max(c, 1)
        k = g0 - c
        if self.temporal and batch.image.shape[1] > g0:
            real_prev = batch.image[:, g0 - 1 : -1]
            target, conf = batch.flow[:, g0:], batch.flow_valid[:, g0:]
            terms.update(self.flow_loss(out["flow"][:, k:], target, conf, real_prev, batch.image[:, g0:]))
            fake_prev = torch.cat([batch.image[:, c - 1 : c], fake[:, :-1]] if c else [fake[:, :-1]], dim=1)
            terms.update(self.warp_loss(fake[:, k:], fake_prev.detach(), target, conf))
            terms.update(self.mask_loss(out["occlusion_mask"][:, k:], conf))
        return terms


def _judge(
    discriminator: torch.nn.Module, first: tuple[torch.Tensor, ...], second: tuple[torch.Tensor, ...], *extra: int
) -> tuple[Predictions, Predictions]:
    """One discriminator call on both inputs stacked along the batch, split back into two predictions.

    One forward per backward keeps DistributedDataParallel's gradient reduction exact (and is faster).
    """
    n = first[0].shape[0]
    both = discriminator(*(torch.cat([a, b]) for a, b in zip(first, second, strict=True)), *extra)
    rows = both[0][0].shape[0] // 2  # D_I folds time into the batch: B*T rows per input
    assert rows * 2 == both[0][0].shape[0] and rows % n == 0
    return [[t[:rows] for t in scale] for scale in both], [[t[rows:] for t in scale] for scale in both]


def _bare(video_d: VideoDiscriminator) -> VideoDiscriminator:
    """D_V itself, also when wrapped in DistributedDataParallel (whose forward is D_V's)."""
    module = getattr(video_d, "module", video_d)
    assert isinstance(module, VideoDiscriminator)
    return module
