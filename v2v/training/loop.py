"""Progressive vid2vid training of one spatial scale: the loop that updates.

:func:`train_scale` is the one training function. Scale ``s`` of ``num_scales`` trains the
generator with ``s + 1`` scales at ``1 / 2^(num_scales - 1 - s)`` of the frames' resolution,
starting from the previous scale's model (coarse-to-fine), while the clip length grows by the
temporal schedule. Per step: the generator produces frames ``context..T-1`` of every clip from the
real first ``context`` frames, D_I and D_V are updated on the detached fakes, then G. Only rank 0
logs and writes; ``resume: auto`` continues an interrupted run of the same configuration.

Options of the step: ``train.n_frames_backprop`` (how far back gradients flow through the generated
frames), ``model.feature_channels`` (the feature encoder E encodes the real frames, averaged per
instance, as extra input of G, trained with G's optimiser; after the scale a per-class feature bank
is fitted for multimodal generation, :mod:`v2v.training.feature_bank`) and ``train.ema_decay`` (an
exponential moving average of G and E, :mod:`v2v.training.ema`, which generation uses). The model
file holds the trained and the averaged weights, and the feature bank.

Scale growth: scale s+1 starts from scale s's model: G's coarser scales, E, the discriminators and
the averaged copies (the new enhancer starts from its fresh initialisation in both G and its average).
The model file's averaged copies have their batch-norm statistics re-estimated on the training clips.
While ``freeze_coarse_epochs`` holds the coarser scales, E is held too (it was trained with them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from v2v.config import TRAIN_RUNTIME_KEYS, Config, ScaleConfig, to_dict
from v2v.data.clips import ClipDataset
from v2v.data.tasks import get_task
from v2v.io.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from v2v.models.discriminators import ImageDiscriminator, VideoDiscriminator
from v2v.models.encoder import FeatureEncoder
from v2v.models.generator import Vid2VidGenerator, load_coarser_scales
from v2v.models.layers import load_grown
from v2v.models.presets import (
    ModelPreset,
    build_encoder,
    build_generator,
    build_image_discriminator,
    build_video_discriminator,
    resolve_preset,
)
from v2v.ops.device import autocast, deterministic_algorithms
from v2v.training import distributed
from v2v.training.ema import ema_copy, recalibrate_batch_norm, update_ema
from v2v.training.feature_bank import every_frame, fit_feature_bank
from v2v.training.objective import ClipBatch, LossWeights, Vid2VidObjective
from v2v.training.resume import discard_if_inputs_changed, drop_damaged_checkpoints, latest_checkpoint, step_path
from v2v.training.schedule import ClipSchedule, lr_at

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

MODEL_FILE = "model.pt"


def model_preset(cfg: Config) -> ModelPreset:
    """The preset of ``model.preset`` with the overrides of ``model`` and the task's input channels."""
    overrides = {k: v for k, v in to_dict(cfg.model).items() if k != "preset"}
    return resolve_preset(cfg.model.preset, **overrides, **get_task(cfg.train.task).preset_inputs())


def scale_factor(cfg: Config, scale: int) -> int:
    """How much scale ``scale`` downsamples the frames (1 at the finest scale)."""
    return 2 ** (cfg.train.num_scales - 1 - scale)


def downscale(batch: Mapping[str, torch.Tensor], factor: int) -> dict[str, torch.Tensor]:
    """Area-downsample a ``(B, T, C, H, W)`` batch by ``factor``; flows shrink in length too; masks stay binary."""
    if factor == 1:
        return dict(batch)
    out = {}
    for key, value in batch.items():
        b, t = value.shape[:2]
        frames = value.flatten(0, 1)
        if key == "instance":
            small = frames[:, None, ::factor, ::factor][:, 0]
        else:
            small = F.avg_pool2d(frames.float(), factor)
            if key == "flow":
                small = small / factor
            elif key == "flow_valid":
                small = (small > 0.999).float()  # valid only where every covered pixel was
        out[key] = small.unflatten(0, (b, t))
    return out


def run_config(cfg: Config, scale: int, world_size: int, per_frame: bool = False) -> dict[str, Any]:
    """Everything a resumed run must share with the run that wrote its checkpoints."""
    config = {
        "scale": scale,
        "model": asdict(model_preset(cfg)),
        # not what the weights depend on: where and how the run goes, and the feature bank (refitted at the end)
        "train": {k: v for k, v in to_dict(cfg.train).items() if k not in (*TRAIN_RUNTIME_KEYS, "feature_clusters")},
        "schedule": to_dict(getattr(cfg, f"train_scale{scale}")),
        "world_size": world_size,
    }
    if per_frame:  # only when set, so the vid2vid checkpoints' hashes stay as they were
        config["per_frame"] = True
    return config


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Networks:
    generator: Vid2VidGenerator
    image_d: ImageDiscriminator
    video_d: VideoDiscriminator | None  # D_V (not for the per-frame baseline or model.video_discriminator false)
    encoder: FeatureEncoder | None = None  # E (model.feature_channels > 0)
    generator_ema: Vid2VidGenerator | None = None  # averaged copies (train.ema_decay > 0): what generation uses
    encoder_ema: FeatureEncoder | None = None

    def modules(self) -> dict[str, torch.nn.Module]:
        """Every network by its checkpoint name (those that exist in this configuration)."""
        named: dict[str, torch.nn.Module | None] = {
            "generator": self.generator,
            "image_discriminator": self.image_d,
            "video_discriminator": self.video_d,
            "encoder": self.encoder,
            "generator_ema": self.generator_ema,
            "encoder_ema": self.encoder_ema,
        }
        return {name: module for name, module in named.items() if module is not None}

    def generation_weights(self) -> tuple[Vid2VidGenerator, FeatureEncoder | None, str]:
        """G and E as generation uses them (the averaged copies when there are) and which they are."""
        if self.generator_ema is not None:
            return self.generator_ema, self.encoder_ema, "ema"
        return self.generator, self.encoder, "raw"


def build_networks(
    cfg: Config, scale: int, previous: Path | None, per_frame: bool = False
) -> tuple[Networks, list[str]]:
    """Networks of scale ``scale``; from ``scale > 0`` on, initialised from the previous scale's model file.
    The per-frame baseline has no D_V (nothing temporal to judge)."""
    preset = model_preset(cfg)
    with_video_d = preset.video_discriminator and not per_frame
    nets = Networks(
        generator=build_generator(preset, num_scales=scale + 1, seed=cfg.train.seed),
        image_d=build_image_discriminator(preset, scale=scale, seed=cfg.train.seed + 1),
        video_d=build_video_discriminator(preset, scale=scale, seed=cfg.train.seed + 2) if with_video_d else None,
        encoder=build_encoder(preset, seed=cfg.train.seed + 3) if preset.feature_channels else None,
    )
    fresh: list[str] = []
    previous_modules: dict[str, Any] = {}
    if scale > 0:
        if previous is None:
            raise ValueError("scale > 0 needs the previous scale's model")
        payload = read_checkpoint(previous)
        if payload["config"]["model"] != json.loads(json.dumps(asdict(preset))):
            raise ValueError(
                f"{previous}: the previous scale was trained with other model settings; "
                "retrain it (dvc repro) so every scale shares model.* and train.task"
            )
        previous_modules = payload["modules"]
        fresh = load_coarser_scales(nets.generator, previous_modules["generator"])
        # the discriminators gain model.num_d_growth spatial scales; the new (coarsest) ones start fresh
        load_grown(nets.image_d, previous_modules["image_discriminator"], "image discriminator")
        if nets.video_d is not None:
            load_grown(nets.video_d, previous_modules["video_discriminator"], "video discriminator")
        if nets.encoder is not None:
            nets.encoder.load_state_dict(previous_modules["encoder"])
    if cfg.train.ema_decay > 0:
        # the averages continue the previous scale's where it kept them; the new enhancer's start from its init
        nets.generator_ema = generator_ema = ema_copy(nets.generator)
        if "generator_ema" in previous_modules:
            load_coarser_scales(generator_ema, previous_modules["generator_ema"])
        if nets.encoder is not None:
            nets.encoder_ema = encoder_ema = ema_copy(nets.encoder)
            if "encoder_ema" in previous_modules:
                encoder_ema.load_state_dict(previous_modules["encoder_ema"])
    return nets, fresh


def _deterministic_when_configured(train: Callable[Concatenate[Config, P], T]) -> Callable[Concatenate[Config, P], T]:
    """Run ``train(cfg, ...)`` under torch's deterministic algorithms when ``cfg.train.deterministic``."""

    @functools.wraps(train)
    def wrapper(cfg: Config, *args: P.args, **kwargs: P.kwargs) -> T:
        with deterministic_algorithms(cfg.train.deterministic):
            return train(cfg, *args, **kwargs)

    return wrapper


@_deterministic_when_configured
def train_scale(
    cfg: Config,  # the whole configuration (train, model, train_scale<scale>)
    scale: int,  # which spatial scale (0 = coarsest)
    dataset: ClipDataset,  # training clips at the finest resolution
    out_dir: Path,  # where the final model goes (a DVC output)
    work_dir: Path,  # where resumable checkpoints go (per configuration)
    previous: Path | None = None,  # the previous scale's model file (scale > 0)
    log_metrics: Callable[[dict[str, float], int], None] = lambda metrics, step: None,  # rank 0 only
    log_sample: Callable[[dict[str, torch.Tensor], int], None] = lambda tensors, step: None,  # rank 0 only
    progress: bool = True,  # show progress bars
    per_frame: bool = False,  # the per-frame baseline: no previous frames, no flow, no D_V (same schedule)
    inputs: str | None = None,  # fingerprint of the data, previous model and code; other inputs' checkpoints are
    # discarded, not resumed (see v2v.training.resume.inputs_fingerprint)
) -> dict[str, Any]:
    """Train one scale; returns a summary (steps, seconds, final losses, weights used, history)."""
    tc: Any = cfg.train
    sc: ScaleConfig = getattr(cfg, f"train_scale{scale}")
    dist = distributed.init(tc.device)
    torch.manual_seed(tc.seed + dist.rank)
    nets, fresh = build_networks(cfg, scale, previous, per_frame)
    for module in nets.modules().values():
        module.to(dist.device)
    context = nets.generator.num_frames - 1
    factor = scale_factor(cfg, scale)
    _check_videos(dataset, context, nets.generator.size_multiple * factor, scale)  # before any checkpoint I/O
    coarse = [p for name, p in nets.generator.named_parameters() if not name.startswith(f"scales.{scale}.")]
    coarse += list(nets.encoder.parameters()) if nets.encoder is not None else []  # E is held with them
    trained_g = [*nets.generator.parameters(), *(nets.encoder.parameters() if nets.encoder is not None else ())]
    objective = Vid2VidObjective(
        weights=loss_weights(cfg),
        gan_mode=tc.gan_mode,
        vgg_weights=tc.vgg_weights,
        temporal=not per_frame,
        flow=nets.generator.flow,
        judge_hallucinated=tc.judge_hallucinated,
        scale=scale,
    ).to(dist.device)
    # the reference lowers the learning rate per scale (its 512/1024/2048 scripts: 2e-4, 1e-4, 5e-5)
    lr = tc.lr * tc.lr_per_scale**scale
    lr_g, lr_d, betas = (lr / 2, lr * 2, (0.0, 0.9)) if tc.ttur else (lr, lr, (tc.beta1, tc.beta2))
    opt_g = torch.optim.Adam(trained_g, lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(nets.image_d.parameters(), lr=lr_d, betas=betas)
    # D_V as in the reference: its own optimiser, lr and betas fixed (no TTUR, never decayed)
    optimizers = {"g": opt_g, "d": opt_d}
    if nets.video_d is not None:
        optimizers["d_video"] = torch.optim.Adam(nets.video_d.parameters(), lr=lr, betas=(tc.beta1, 0.999))
    discriminators = [nets.image_d, *([nets.video_d] if nets.video_d is not None else [])]
    d_params = [p for d in discriminators for p in d.parameters()]
    use_amp = tc.amp
    scaler = torch.amp.GradScaler(dist.device.type, enabled=use_amp and dist.device.type == "cuda")

    config = run_config(cfg, scale, dist.world_size, per_frame)
    start_epoch, step, skip = 0, 0, 0
    history: list[dict[str, float]] = []
    last_terms: dict[str, float] = {}
    if inputs is not None and dist.is_main and discard_if_inputs_changed(work_dir, inputs):
        log.info(
            "scale %d: the inputs changed since the checkpoints in %s were written: starting over", scale, work_dir
        )
    if tc.resume == "auto" and dist.is_main:
        drop_damaged_checkpoints(work_dir)
    distributed.barrier()
    if tc.resume == "auto" and (last := latest_checkpoint(work_dir)) is not None:
        payload = load_checkpoint(last, modules=nets.modules(), config=config, optimizers=optimizers, scaler=scaler)
        start_epoch, step, skip = payload["epoch"], payload["step"], payload["extra"].get("batch", 0)
        history = list(payload["extra"].get("history", []))
        last_terms = dict(payload["extra"].get("last", {}))  # the final losses, also when nothing is left to do
        log.info("resuming scale %d from %s (epoch %d, step %d)", scale, last, start_epoch, step)
    elif dist.is_main:
        log.info("scale %d: starting from %s", scale, previous or "random initialisation")

    # DDP wraps what has one forward per backward (G, E); the discriminators judge real and fake in
    # separate calls (separate batch statistics), so their gradients are averaged by hand
    generator: torch.nn.Module = nets.generator
    encoder: torch.nn.Module | None = nets.encoder
    if dist.world_size > 1:
        generator = DistributedDataParallel(nets.generator, find_unused_parameters=True)
        if nets.encoder is not None:
            encoder = DistributedDataParallel(nets.encoder, find_unused_parameters=True)  # frozen with the coarse
    sampler: DistributedSampler[Any] | None = (
        DistributedSampler(dataset, shuffle=True, seed=tc.seed) if dist.world_size > 1 else None
    )
    schedule = ClipSchedule(sc.start_frames, sc.double_every, sc.max_frames)

    def save_step(position: tuple[int, int, int]) -> None:  # (step, epoch to continue, batches of it done)
        state = (config, nets, optimizers, scaler, position, history, last_terms, tc.keep_checkpoints)
        _save(step_path(work_dir, position[0]), *state)

    started = time.perf_counter()
    for epoch in range(start_epoch, sc.epochs):
        dataset.clip_length = schedule.frames_at(epoch)
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        for group in opt_g.param_groups:
            group["lr"] = lr_at(lr_g, epoch, sc.epochs, sc.decay_epochs)
        for group in opt_d.param_groups:
            group["lr"] = lr_at(lr_d, epoch, sc.epochs, sc.decay_epochs)
        frozen = scale > 0 and epoch < sc.freeze_coarse_epochs
        for p in coarse:
            p.requires_grad_(not frozen)
        loader = DataLoader(
            dataset,
            batch_size=tc.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=tc.workers,
            generator=torch.Generator().manual_seed(tc.seed * 1000 + epoch),
            drop_last=False,
        )
        bar = tqdm(
            loader,
            desc=f"{'baseline ' if per_frame else ''}scale {scale} epoch {epoch + 1}/{sc.epochs}",
            leave=False,
            disable=not progress or not dist.is_main,
        )
        for index, raw in enumerate(bar):
            if epoch == start_epoch and index < skip:
                continue  # done before the interruption: same data order, so skipping is exact
            where = dataset.describe(raw.pop("clip"))
            batch = downscale({k: v.to(dist.device) for k, v in raw.items()}, factor)
            if batch["image"].shape[1] <= context:
                raise ValueError(f"clips of {batch['image'].shape[1]} frames ({where}); need more than {context}")
            # some steps generate the whole clip from labels alone (the test-time first-frame policy)
            from_labels = random.Random(tc.seed * 1_000_003 + step).random() < tc.from_labels_prob
            given = 0 if from_labels or per_frame else context
            clip = ClipBatch(batch["label"], batch["image"], batch["flow"], batch["flow_valid"], given)
            with autocast(dist.device, use_amp):
                # E sees the real frames (also on label-only steps): at test time the feature bank stands in
                features = encoder(clip.image, batch["instance"]) if encoder is not None else None
                out = generator(
                    clip.label,
                    prev_fakes=clip.image[:, :context] if given else None,
                    features=features,
                    n_frames_backprop=tc.n_frames_backprop,
                    per_frame=per_frame,
                )
            # the reference's order: G is updated, then the Ds, both judged by the Ds of this step
            for p in d_params:
                p.requires_grad_(False)
            with autocast(dist.device, use_amp):
                g_terms = objective.generator(clip, out, nets.image_d, nets.video_d)
                g_loss = sum(g_terms.values(), torch.zeros((), device=dist.device))
            _check_finite(g_terms, scale, step + 1, where)
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(g_loss).backward()
            scaler.unscale_(opt_g)
            g_norm = _grad_norm(trained_g, "generator", scale, step + 1, where)
            scaler.step(opt_g)
            for p in d_params:
                p.requires_grad_(True)
            detached = {k: v.detach() for k, v in out.items() if k in ("fake", "hallucinated")}
            with autocast(dist.device, use_amp):
                d_terms = objective.discriminator(clip, detached, nets.image_d, nets.video_d)
                d_loss = sum(d_terms.values(), torch.zeros((), device=dist.device))
            _check_finite(d_terms, scale, step + 1, where)
            for opt in optimizers.values():
                if opt is not opt_g:
                    opt.zero_grad(set_to_none=True)
            scaler.scale(d_loss).backward()
            distributed.average_gradients(d_params)
            for name, opt in optimizers.items():
                if name != "g":
                    scaler.unscale_(opt)
            d_norm = _grad_norm(d_params, "discriminators", scale, step + 1, where)
            for name, opt in optimizers.items():
                if name != "g":
                    scaler.step(opt)
            scaler.update()
            if nets.generator_ema is not None:
                update_ema(nets.generator_ema, nets.generator, tc.ema_decay)
            if nets.encoder_ema is not None and nets.encoder is not None:
                update_ema(nets.encoder_ema, nets.encoder, tc.ema_decay)
            step += 1
            last_terms = {
                **{f"loss/{k}": float(v.detach()) for k, v in {**d_terms, **g_terms}.items()},
                "loss/d_total": float(d_loss.detach()),
                "loss/g_total": float(g_loss.detach()),
                "grad_norm/generator": g_norm,
                "grad_norm/discriminators": d_norm,
                "lr/generator": opt_g.param_groups[0]["lr"],
                "clip_length": float(batch["image"].shape[1]),
                "epoch": float(epoch),
            }
            if dist.is_main:
                bar.set_postfix(g=f"{float(g_loss.detach()):.3f}", d=f"{float(d_loss.detach()):.3f}")
                if step % tc.log_every == 0 or step == 1:
                    log_metrics(last_terms, step)
                    history.append({"step": step, **last_terms})
                if step % tc.sample_every == 0 or step == 1:
                    log_sample(
                        {
                            "real": clip.image[0, given:],
                            "label": clip.label[0, given:],
                            **{k: v[0].detach() for k, v in out.items() if k in ("fake", "flow", "occlusion_mask")},
                        },
                        step,
                    )
                if step % tc.checkpoint_every == 0:
                    save_step((step, epoch, index + 1))
        if dist.is_main:
            save_step((step, epoch + 1, 0))
    distributed.barrier()
    summary: dict[str, Any] = {"scale": scale, "steps": step, "seconds": time.perf_counter() - started}
    dataset.clip_length = schedule.frames_at(sc.epochs - 1)  # also when resumed after the last epoch
    dataset.set_epoch(sc.epochs)
    extra = _for_generation(nets, dataset, factor, tc, dist.device) if dist.is_main else {}
    summary.update({k: v for k, v in extra.items() if k != "feature_bank"})
    summary.update(
        resolution_factor=factor,
        vgg_weights=objective.vgg_weights_used,
        fresh_parameters=len(fresh),
        final=last_terms,
        history=history,
    )
    if dist.is_main:
        save_checkpoint(
            out_dir / MODEL_FILE,
            config=config,
            modules=nets.modules(),
            step=step,
            epoch=sc.epochs,
            extra={  # no timings: identical runs (and a resumed one) write identical bytes
                "summary": {k: v for k, v in summary.items() if k != "history" and not k.endswith("seconds")},
                **{k: v for k, v in extra.items() if not k.endswith("seconds")},
            },
        )
    distributed.shutdown()
    return summary


def loss_weights(cfg: Config) -> LossWeights:
    """The objective's term weights from ``train.loss_*``."""
    tc = cfg.train
    return LossWeights(
        gan=tc.loss_gan,
        feature_matching=tc.loss_feature_matching,
        vgg=tc.loss_vgg,
        flow=tc.loss_flow,
        flow_warp=tc.loss_flow_warp,
        warp=tc.loss_warp,
        mask=tc.loss_mask,
    )


def _check_finite(terms: Mapping[str, torch.Tensor], scale: int, step: int, where: str) -> None:
    """A non-finite loss stops training with the step, the term(s) and the clip that produced them."""
    bad = {k: float(v.detach()) for k, v in terms.items() if not torch.isfinite(v.detach()).all()}
    if bad:
        raise FloatingPointError(
            f"scale {scale} step {step}: non-finite loss term(s) {bad} on {where}; lower train.lr, check that "
            "clip's frames, maps and flow, or set train.amp false if mixed precision is on"
        )


def _check_videos(dataset: ClipDataset, context: int, multiple: int, scale: int) -> None:
    """Every training video must be longer than the generator's context and sized for this scale."""
    for video in dataset.videos:
        if video.num_frames <= context:
            raise ValueError(
                f"video {video.video_id} has {video.num_frames} frames; the generator conditions on {context} "
                f"previous frames, so training needs videos of at least {context + 1}: use longer videos or a "
                "higher extract.fps"
            )
        if video.width % multiple or video.height % multiple:
            raise ValueError(
                f"video {video.video_id} is {video.width}x{video.height}; scale {scale} of this model needs sizes "
                f"divisible by {multiple}: set extract.width/height (or train.crop) to multiples of {multiple}"
            )


def _for_generation(nets: Networks, dataset: ClipDataset, factor: int, tc: Any, device: torch.device) -> dict[str, Any]:
    """What the model file adds for generation: which weights it uses, re-estimated batch-norm statistics
    of the averaged networks (one more epoch of ``dataset``'s clips, generated from labels) and E's feature bank."""
    generator, encoder, weights = nets.generation_weights()
    extra: dict[str, Any] = {"generator_weights": weights}
    if weights == "ema":

        def averaged_forward(raw: dict[str, torch.Tensor]) -> None:
            clip = downscale({k: v[None].to(device) for k, v in raw.items() if k != "clip"}, factor)
            features = encoder(clip["image"], clip["instance"]) if encoder is not None else None
            generator(clip["label"], features=features)

        averaged = [generator, *([encoder] if encoder is not None else [])]
        extra["ema_batch_norm_clips"] = recalibrate_batch_norm(
            averaged, averaged_forward, (dataset[i] for i in range(len(dataset)))
        )
    if encoder is not None:
        started = time.perf_counter()
        clips = (downscale(clip, factor) for clip in every_frame(dataset))
        bank = fit_feature_bank(encoder, clips, num_clusters=tc.feature_clusters, seed=tc.seed)
        extra.update(
            feature_bank=bank.state_dict(),
            feature_clusters=tc.feature_clusters,
            feature_bank_classes=len(bank.centres),
            feature_bank_seconds=time.perf_counter() - started,
        )
    return extra


def _grad_norm(params: list[torch.nn.Parameter], what: str, scale: int, step: int, where: str) -> float:
    """Gradient norm of ``params``; a non-finite one (an exploding or NaN gradient) stops training, named."""
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    norm = float(torch.stack(grads).norm()) if grads else 0.0
    if not math.isfinite(norm):
        raise FloatingPointError(
            f"scale {scale} step {step}: the {what}' gradient norm is {norm} (exploding or NaN gradient) on "
            f"{where}; lower train.lr, or set train.amp false if mixed precision is on"
        )
    return norm


def _save(
    path: Path,
    config: dict[str, Any],
    nets: Networks,
    optimizers: Mapping[str, torch.optim.Optimizer],
    scaler: Any,
    position: tuple[int, int, int],  # (step, epoch, batch)
    history: list[dict[str, float]],
    last_terms: dict[str, float],
    keep: int,  # step files kept (the newest)
) -> None:
    """A resumable checkpoint: ``epoch`` is the epoch to continue, after its first ``batch`` batches."""
    step, epoch, batch = position
    save_checkpoint(
        path,
        config=config,
        modules=nets.modules(),
        optimizers=optimizers,
        scaler=scaler,
        step=step,
        epoch=epoch,
        extra={"history": history, "batch": batch, "last": last_terms},
    )
    for old in sorted(path.parent.glob("step_*.pt"))[:-keep]:  # keep the newest
        old.unlink()
