"""The vid2vid objective as the reference trains it: which losses judge a generated clip.

Models compute (:mod:`v2v.models`), these judge, the loop (:mod:`v2v.training.loop`) updates.
Clips are ``(B, T, C, H, W)``; the generator produced frames ``context..T-1`` from the real
frames ``0..context-1`` (``context`` is ``num_frames_g - 1``, or 0 when it generated the whole clip
from the labels alone, as at test time), so every term lines generated frame ``t`` up with real
frame ``t``, its ground-truth flow ``flow[:, t]`` (onto frame t-1) and its confidence.

Generator terms (each weighted, each a named scalar):

* ``g_gan``, ``g_feat`` — D_I on the final frame ``fake``; ``vgg`` — VGG19 features of ``fake``;
* ``raw_g_gan``, ``raw_g_feat``, ``raw_vgg`` — the same on the hallucinated frame ``h`` (the
  reference's ``fake_B_raw``; ``judge_hallucinated``). Without them H learns only through the mask,
  i.e. nothing wherever the model warps, yet H makes first frames and disocclusions;
* ``video_g_gan``, ``video_g_feat`` — D_V at every temporal scale the clip is long enough for (none
  when trained without D_V, ``model.video_discriminator: false``);
* ``flow`` (÷ 2^scale, the reference's ``lambda_F / 2^(S-1)``: flows in pixels double per scale),
  ``flow_warp``, ``warp`` — flow supervision and warp consistency, masked by the flow confidence
  (without a flow branch, ``model.flow: false``, only ``warp``: it uses the ground-truth flow, as in
  the reference's ``--no_flow``);
* ``mask`` — ``L1(m, 0)``, only on steps without real first frames (the reference's ``--no_first_img``)
  and only with a positive weight: on every step it pushes the model to copy the previous frame.

Discriminator terms: ``d_real``, ``d_fake`` (+ ``raw_d_real``, ``raw_d_fake``: D_I also learns to
reject the hallucinated frame; real counts once per kind of fake, as in the reference),
``video_d_real``, ``video_d_fake``. Real and fake frames pass the discriminators in separate calls,
so batch-norm statistics never mix them (the loop averages D's gradients itself under DDP).

Choices where the reference is silent or we keep a different but equivalent form: the real frames
pass each discriminator once per step (:meth:`Vid2VidObjective.judge_real`): detached, they are the
feature-matching targets of G; with gradient, the real terms of D (D is not updated in between, and
in training mode its batch norm depends on the batch only, so both see the same values); the
reference's 0.5 factor on D's loss is left out (Adam is invariant to a constant scale of the loss).
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
    gan: float  # adversarial terms of D_I and D_V
    feature_matching: float  # discriminator feature matching (both Ds)
    vgg: float  # VGG19 perceptual (0 disables it: no VGG is built)
    flow: float  # L1 to the ground-truth flow (divided by 2^scale)
    flow_warp: float  # L1 of the real previous frame warped by the predicted flow
    warp: float  # warp consistency of the generated frames
    mask: float  # occlusion-mask regulariser, on steps without real first frames


@dataclass(frozen=True)
class ClipBatch:
    """One training batch, with the generated part aligned to its targets."""

    label: torch.Tensor  # (B, T, C, H, W) conditions
    image: torch.Tensor  # (B, T, 3, H, W) real frames in [-1, 1]
    flow: torch.Tensor  # (B, T, 2, H, W) ground-truth backward flow
    flow_valid: torch.Tensor  # (B, T, 1, H, W)
    context: int  # frames given to the generator as previous frames (0: it generated every frame)
    # (B, context, 3, H, W) what was given for frames 0..context-1: the real frames (None), or, on a later chunk of
    # a carried rollout, the generator's own detached outputs for them
    previous: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.previous is not None and self.previous.shape[1] != self.context:
            raise ValueError(f"previous holds {self.previous.shape[1]} frames for a context of {self.context}")

    @property
    def generated(self) -> slice:
        """Frames the generator produced."""
        return slice(self.context, None)

    def given_frames(self) -> torch.Tensor | None:
        """The frames given to the generator as its previous frames: the real ones, or the carried outputs of the
        previous chunk (None when it started from labels)."""
        if not self.context:
            return None
        return self.previous if self.previous is not None else self.image[:, : self.context]

    @property
    def first_temporal(self) -> int:
        """First frame with a previous frame (temporal terms start here): ``context``, or 1 without context."""
        return max(self.context, 1)

    def real_from_first_temporal(self, sequence: torch.Tensor) -> torch.Tensor:
        """Frames :attr:`first_temporal`..T-1 of a whole-clip tensor (real frames, flows, confidences)."""
        return sequence[:, self.first_temporal :]

    def generated_from_first_temporal(self, generated: torch.Tensor) -> torch.Tensor:
        """The same frames of a generator output (which starts at frame ``context``)."""
        return generated[:, self.first_temporal - self.context :]

    def real_previous(self) -> torch.Tensor:
        """Real frame t-1 of every frame from :attr:`first_temporal` on."""
        return self.image[:, self.first_temporal - 1 : -1]

    def previous_fakes(self, fake: torch.Tensor) -> torch.Tensor:
        """Frame t-1 of every generated frame from :attr:`first_temporal` on (the last given frame for the first)."""
        given = self.given_frames()
        if given is not None:
            return torch.cat([given[:, -1:], fake[:, :-1]], dim=1)
        return fake[:, :-1]

    def chunk(self, start: int, stop: int, previous: torch.Tensor | None) -> ClipBatch:
        """Frames ``start..stop-1`` as a batch of their own, ``previous`` given for their first ``context`` frames
        (None: the real ones). A carried rollout trains chunk by chunk (truncated backpropagation)."""
        context = self.context if previous is None else previous.shape[1]
        pick = slice(start, stop)
        return ClipBatch(
            self.label[:, pick], self.image[:, pick], self.flow[:, pick], self.flow_valid[:, pick], context, previous
        )


@dataclass(frozen=True)
class RealPredictions:
    """The discriminators' verdicts on a batch's real generated-frame targets (:meth:`Vid2VidObjective.judge_real`)."""

    image: Predictions  # D_I on (label, real frame)
    video: dict[int, Predictions]  # D_V per temporal scale the clip is long enough for


class Vid2VidObjective:
    """Discriminator and generator losses of one clip; every call returns named scalar terms."""

    def __init__(
        self,
        *,
        weights: LossWeights,  # term weights
        gan_mode: str = "lsgan",  # lsgan (reference) | hinge
        vgg_weights: str = "imagenet",  # imagenet | none (tests only) | path; unused when weights.vgg == 0
        temporal: bool = True,  # False: image terms only (no D_V, flow, warp or mask terms): the per-frame baseline
        flow: bool = True,  # False: G has no flow branch (model.flow): no flow, flow_warp or mask terms
        judge_hallucinated: bool = True,  # also judge the hallucinated frame (the reference's fake_B_raw)
        scale: int = 0,  # generator scale being trained (the flow term is divided by 2^scale)
    ) -> None:
        self.weights = weights
        self.temporal = temporal
        self.flow = flow
        # without a flow branch the hallucinated frame is the final one: judging it twice would only double terms
        self.judge_hallucinated = judge_hallucinated and flow
        self.image_gan = GANLoss(mode=gan_mode, weight=weights.gan)  # type: ignore[arg-type]
        self.raw_gan = GANLoss(mode=gan_mode, weight=weights.gan, prefix="raw_")  # type: ignore[arg-type]
        self.video_gan = GANLoss(mode=gan_mode, weight=weights.gan, prefix="video_")  # type: ignore[arg-type]
        self.image_feat = FeatureMatchingLoss(weight=weights.feature_matching)
        self.raw_feat = FeatureMatchingLoss(weight=weights.feature_matching, prefix="raw_")
        self.video_feat = FeatureMatchingLoss(weight=weights.feature_matching, prefix="video_")
        self.vgg = VGGPerceptualLoss(weights=vgg_weights, weight=weights.vgg) if weights.vgg > 0 else None
        self.flow_loss = FlowLoss(weight_flow=weights.flow / 2**scale, weight_warp=weights.flow_warp)
        self.warp_loss = WarpConsistencyLoss(weight=weights.warp)
        self.mask_loss = MaskRegulariser(weight=weights.mask)

    @property
    def vgg_weights_used(self) -> str:
        return self.vgg.weights_used if self.vgg is not None else "not used (losses.vgg = 0)"

    def to(self, device: torch.device) -> Vid2VidObjective:
        if self.vgg is not None:
            self.vgg.to(device)
        return self

    def fake_video_scales(self, video_d: VideoDiscriminator | None, frames: int) -> list[int]:
        """Temporal scales of D_V that a generated clip of ``frames`` frames is long enough for (none without D_V)."""
        if not self.temporal or video_d is None:
            return []
        return [s for s in range(video_d.num_temporal_scales) if frames >= video_d.min_clip_length(s)]

    def judge_real(
        self, batch: ClipBatch, image_d: ImageDiscriminator, video_d: VideoDiscriminator | None
    ) -> RealPredictions:
        """The discriminators on the real frames the generator's output is compared with: computed once per step,
        the generator's feature-matching targets (detached) and the discriminators' real terms (with gradient)."""
        g = batch.generated
        real, label, flow = batch.image[:, g], batch.label[:, g], batch.flow[:, g]
        video = {}
        for s in self.fake_video_scales(video_d, real.shape[1]):
            assert video_d is not None
            frames, flows = video_d.windows(real, flow, s)
            video[s] = video_d(frames, flows, s)
        return RealPredictions(image_d(label, real), video)

    def discriminator(
        self,
        batch: ClipBatch,
        out: dict[str, torch.Tensor],  # generator outputs, (B, T - context, C, H, W) each, detached
        image_d: ImageDiscriminator,
        video_d: VideoDiscriminator | None,  # None: trained without D_V (model.video_discriminator false)
        real_predictions: RealPredictions | None = None,  # judge_real of this batch (None: judged here)
    ) -> dict[str, torch.Tensor]:
        g = batch.generated
        label, flow = batch.label[:, g], batch.flow[:, g]
        judged = real_predictions or self.judge_real(batch, image_d, video_d)
        terms = self.image_gan.discriminator(judged.image, image_d(label, out["fake"]))
        if self.judge_hallucinated:
            terms.update(self.raw_gan.discriminator(judged.image, image_d(label, out["hallucinated"])))
        for s in self.fake_video_scales(video_d, out["fake"].shape[1]):
            assert video_d is not None
            fake_frames, flows = video_d.windows(out["fake"], flow, s)
            _accumulate(terms, self.video_gan.discriminator(judged.video[s], video_d(fake_frames, flows, s)))
        return terms

    def generator(
        self,
        batch: ClipBatch,
        out: dict[str, torch.Tensor],  # generator outputs, (B, T - context, C, H, W) each
        image_d: ImageDiscriminator,
        video_d: VideoDiscriminator | None,  # None: trained without D_V
        real_predictions: RealPredictions | None = None,  # judge_real of this batch (None: judged here)
    ) -> dict[str, torch.Tensor]:
        g = batch.generated
        fake = out["fake"]
        real, label, flow = batch.image[:, g], batch.label[:, g], batch.flow[:, g]
        if real_predictions is None:
            with torch.no_grad():
                real_predictions = self.judge_real(batch, image_d, video_d)
        pred_real = _detached(real_predictions.image)  # feature-matching targets
        pred_fake = image_d(label, fake)
        terms = {**self.image_gan.generator(pred_fake), **self.image_feat(pred_fake, pred_real)}
        if self.vgg is not None:
            terms.update(self.vgg(fake, real))
        if self.judge_hallucinated:
            raw = out["hallucinated"]
            pred_raw = image_d(label, raw)
            terms.update({**self.raw_gan.generator(pred_raw), **self.raw_feat(pred_raw, pred_real)})
            if self.vgg is not None:
                terms.update({f"raw_{k}": v for k, v in self.vgg(raw, real).items()})
        for s in self.fake_video_scales(video_d, fake.shape[1]):
            assert video_d is not None
            fake_frames, flows = video_d.windows(fake, flow, s)
            v_real = _detached(real_predictions.video[s])
            v_fake = video_d(fake_frames, flows, s)
            _accumulate(terms, {**self.video_gan.generator(v_fake), **self.video_feat(v_fake, v_real)})
        if self.temporal and batch.image.shape[1] > batch.first_temporal:  # frames with a previous frame
            truth, conf = batch.real_from_first_temporal(batch.flow), batch.real_from_first_temporal(batch.flow_valid)
            if self.flow:
                flow = batch.generated_from_first_temporal(out["flow"])
                real = batch.real_from_first_temporal(batch.image)
                terms.update(self.flow_loss(flow, truth, conf, batch.real_previous(), real))
            fake_prev = batch.previous_fakes(fake).detach()
            terms.update(self.warp_loss(batch.generated_from_first_temporal(fake), fake_prev, truth, conf))
            if self.flow and self.weights.mask > 0 and batch.context == 0:
                terms.update(self.mask_loss(batch.generated_from_first_temporal(out["occlusion_mask"]), conf))
        return terms


def _accumulate(terms: dict[str, torch.Tensor], more: dict[str, torch.Tensor]) -> None:
    """Add ``more`` into ``terms`` key by key (the temporal scales of D_V sum into one term each)."""
    for key, value in more.items():
        terms[key] = terms[key] + value if key in terms else value


def _detached(predictions: Predictions) -> Predictions:
    return [[t.detach() for t in scale] for scale in predictions]
