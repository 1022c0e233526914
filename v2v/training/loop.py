"""Progressive vid2vid training of one spatial scale: the loop that updates.

:func:`train_scale` is the one training function. Scale ``s`` of ``num_scales`` trains the
generator with ``s + 1`` scales at ``1 / 2^(num_scales - 1 - s)`` of the frames' resolution,
starting from the previous scale's model (coarse-to-fine), while the clip length grows by the
temporal schedule. A clip is a rollout: the generator starts from its real first ``context`` frames
(or from labels alone, ``train.from_labels_prob``) and continues on its own outputs to the clip's
end, ``train.chunk_frames`` generated frames per optimiser step, each chunk continuing from the
previous chunk's detached outputs (the reference's truncated backpropagation over update chunks;
:func:`rollout_windows`). Per step G is updated, then D_I and D_V on the detached fakes. Only rank 0
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

import contextlib
import functools
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from v2v.config import TRAIN_RUNTIME_KEYS, Config, ScaleConfig, TrainConfig, to_dict
from v2v.data.clips import ClipDataset
from v2v.data.tasks import get_task
from v2v.io.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from v2v.models.discriminators import ImageDiscriminator, VideoDiscriminator, grown_by_resolution
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


def model_preset(cfg: Config, per_frame: bool = False) -> ModelPreset:
    """The preset of ``model.preset`` with the overrides of ``model`` and the task's input channels. The
    per-frame baseline's has no flow branch: it never warps, so W and M would be computed for nothing."""
    overrides = {k: v for k, v in to_dict(cfg.model).items() if k != "preset"}
    if per_frame:
        overrides["flow"] = False
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


def per_process_batch(batch_size: int, world_size: int) -> int:
    """``train.batch_size`` is the global batch (what torchrun users expect): each process takes its share."""
    if batch_size % world_size:
        raise ValueError(
            f"train.batch_size {batch_size} (the global batch) does not split over {world_size} processes; set it to "
            f"a multiple of {world_size}"
        )
    return batch_size // world_size


def sync_batch_norm(modules: Iterable[torch.nn.Module], device: torch.device) -> bool:
    """Under DDP, batch norm layers pool their statistics over every process (SyncBatchNorm), as one process
    would over the global batch; in place. Only on CUDA: PyTorch's SyncBatchNorm refuses CPU tensors (measured
    with gloo, torch 2.15), so CPU processes keep per-process statistics and a warning says so. Returns
    whether the layers were converted."""
    modules = list(modules)
    has_batch_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for net in modules for m in net.modules())
    if not has_batch_norm:
        return False
    if device.type != "cuda":
        log.warning(
            "batch norm under DDP on %s: each process normalises with its own statistics (SyncBatchNorm needs CUDA); "
            "model.norm: instance avoids the difference",
            device,
        )
        return False
    for net in modules:
        for name, child in list(net.named_children()):
            setattr(net, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
    return True


def run_config(cfg: Config, scale: int, world_size: int, per_frame: bool = False) -> dict[str, Any]:
    """Everything a resumed run must share with the run that wrote its checkpoints."""
    config = {
        "scale": scale,
        "model": asdict(model_preset(cfg, per_frame)),
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
    _generator: torch.nn.Module | None = field(default=None, repr=False)  # DDP wrappers under torchrun
    _encoder: torch.nn.Module | None = field(default=None, repr=False)

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

    def distribute(self) -> None:
        """Under torchrun: wrap what has one forward per backward (G, E) in DDP. The discriminators judge
        real and fake in separate calls (separate batch statistics): their gradients are averaged by hand."""
        sync_batch_norm(self.modules().values(), self.generator_device())
        self._generator = DistributedDataParallel(self.generator, find_unused_parameters=True)
        if self.encoder is not None:  # unused parameters: E is frozen with the coarse scales
            self._encoder = DistributedDataParallel(self.encoder, find_unused_parameters=True)

    def generator_device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def encode(self, image: torch.Tensor, instance: torch.Tensor) -> torch.Tensor | None:
        """E's per-instance features of the real frames (None without E)."""
        encoder = self._encoder if self._encoder is not None else self.encoder
        return encoder(image, instance) if encoder is not None else None

    def generate(self, label: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        """G over a clip (through its DDP wrapper when distributed); ``kwargs`` as :meth:`Vid2VidGenerator.forward`."""
        generator = self._generator if self._generator is not None else self.generator
        return generator(label, **kwargs)

    @property
    def discriminators(self) -> list[torch.nn.Module]:
        return [self.image_d, *([self.video_d] if self.video_d is not None else [])]

    def trained_by_g(self) -> list[torch.nn.Parameter]:
        """What G's optimiser updates: G and E."""
        return [*self.generator.parameters(), *(self.encoder.parameters() if self.encoder is not None else ())]

    def coarse(self, scale: int) -> list[torch.nn.Parameter]:
        """The coarser scales' parameters (and E, trained with them): held while ``freeze_coarse_epochs`` lasts."""
        held = [p for name, p in self.generator.named_parameters() if not name.startswith(f"scales.{scale}.")]
        return held + (list(self.encoder.parameters()) if self.encoder is not None else [])

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
    preset = model_preset(cfg, per_frame)
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
        # the discriminators gain model.num_d_growth spatial scales: each trained PatchGAN keeps its input
        # resolution, the new (finest) ones start fresh
        growth = preset.num_d_growth
        load_grown(
            nets.image_d, grown_by_resolution(previous_modules["image_discriminator"], growth), "image discriminator"
        )
        if nets.video_d is not None:
            load_grown(
                nets.video_d,
                grown_by_resolution(previous_modules["video_discriminator"], growth),
                "video discriminator",
            )
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


@dataclass
class Optimizers:
    """G's (G and E), D_I's and D_V's Adam; checkpoints name them ``g``, ``d``, ``d_video``."""

    g: torch.optim.Optimizer
    d: torch.optim.Optimizer
    d_video: torch.optim.Optimizer | None  # D_V's, as in the reference: lr and betas fixed, never decayed
    lr_g: float  # the rates before decay
    lr_d: float

    @classmethod
    def build(cls, nets: Networks, tc: TrainConfig, scale: int) -> Optimizers:
        lr = tc.lr * tc.lr_per_scale**scale  # the reference's 512/1024/2048 scripts: 2e-4, 1e-4, 5e-5
        lr_g, lr_d, betas = (lr / 2, lr * 2, (0.0, 0.9)) if tc.ttur else (lr, lr, (tc.beta1, tc.beta2))
        return cls(
            g=torch.optim.Adam(nets.trained_by_g(), lr=lr_g, betas=betas),
            d=torch.optim.Adam(nets.image_d.parameters(), lr=lr_d, betas=betas),
            d_video=(
                torch.optim.Adam(nets.video_d.parameters(), lr=lr, betas=(tc.beta1, 0.999))
                if nets.video_d is not None
                else None
            ),
            lr_g=lr_g,
            lr_d=lr_d,
        )

    def decay(self, epoch: int, sc: ScaleConfig) -> None:
        """G's and D_I's rates for ``epoch``: constant, then linearly to 0 over the last ``decay_epochs``."""
        for opt, lr in ((self.g, self.lr_g), (self.d, self.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr_at(lr, epoch, sc.epochs, sc.decay_epochs)

    def named(self) -> dict[str, torch.optim.Optimizer]:
        return {k: v for k, v in (("g", self.g), ("d", self.d), ("d_video", self.d_video)) if v is not None}

    def discriminators(self) -> list[torch.optim.Optimizer]:
        return [self.d, *([self.d_video] if self.d_video is not None else [])]


@dataclass(frozen=True)
class StepResult:
    g_terms: dict[str, torch.Tensor]
    d_terms: dict[str, torch.Tensor]
    g_loss: torch.Tensor
    d_loss: torch.Tensor
    g_norm: float
    d_norm: float
    out: dict[str, torch.Tensor]  # the generator's outputs (for samples)


def rollout_windows(frames: int, context: int, chunk: int, per_frame: bool = False) -> list[tuple[int, int]]:
    """The ``(start, stop)`` frame windows of a clip's optimiser steps (``train.chunk_frames``).

    ``chunk`` 0: the whole clip in one step. Otherwise each step generates ``chunk`` frames from the
    ``context`` frames before them, which after the first window are the previous window's own outputs
    (carried, detached: truncated backpropagation over a rollout as long as the clip, as the reference
    trains); consecutive windows overlap by ``context``, and a tail shorter than ``chunk`` joins the last
    chunk (so D_V, which needs 3 generated frames, judges every step). The per-frame baseline steps
    through the same target frames without the overlap (it has no context to carry).
    """
    if chunk <= 0 or frames < context + 2 * chunk:
        return [(0, frames)]
    starts = list(range(0, frames - context - chunk + 1, chunk))  # a shorter tail joins the last chunk
    stops = [*(start + context + chunk for start in starts[:-1]), frames]
    return [
        (start + context if per_frame and start else start, stop) for start, stop in zip(starts, stops, strict=True)
    ]


def train_step(
    nets: Networks,
    opts: Optimizers,
    objective: Vid2VidObjective,
    clip: ClipBatch,
    instance: torch.Tensor,  # (B, T, 1, H, W) instance maps, for E
    tc: TrainConfig,
    scaler: torch.amp.GradScaler,
    where: tuple[int, int, str],  # (scale, step, clip) named by a failing step
    per_frame: bool = False,
) -> StepResult:
    """One optimiser step of G, then of the discriminators, both judged by this step's discriminators
    (the reference's order); a non-finite loss or gradient stops training, named."""
    device = clip.image.device
    with autocast(device, tc.amp):
        real = objective.judge_real(clip, nets.image_d, nets.video_d)  # once: G's targets, D's real terms
        features = nets.encode(clip.image, instance)  # on label-only steps too: the feature bank stands in at test
        out = nets.generate(
            clip.label,
            prev_fakes=clip.given_frames(),
            features=features,
            n_frames_backprop=tc.n_frames_backprop,
            per_frame=per_frame,
        )
        with _frozen(nets.discriminators):
            g_terms = objective.generator(clip, out, nets.image_d, nets.video_d, real)
    g_loss = _total(g_terms, where)
    opts.g.zero_grad(set_to_none=True)
    scaler.scale(g_loss).backward()
    scaler.unscale_(opts.g)
    g_norm = _grad_norm(nets.trained_by_g(), "generator", where)
    scaler.step(opts.g)

    fakes = {k: v.detach() for k, v in out.items() if k in ("fake", "hallucinated")}
    with autocast(device, tc.amp):
        d_terms = objective.discriminator(clip, fakes, nets.image_d, nets.video_d, real)
    d_loss = _total(d_terms, where)
    d_params = [p for d in nets.discriminators for p in d.parameters()]
    for opt in opts.discriminators():
        opt.zero_grad(set_to_none=True)
    scaler.scale(d_loss).backward()
    distributed.average_gradients(d_params)
    for opt in opts.discriminators():
        scaler.unscale_(opt)
    d_norm = _grad_norm(d_params, "discriminators", where)
    for opt in opts.discriminators():
        scaler.step(opt)
    scaler.update()

    for average, trained in ((nets.generator_ema, nets.generator), (nets.encoder_ema, nets.encoder)):
        if average is not None and trained is not None:
            update_ema(average, trained, tc.ema_decay)
    return StepResult(g_terms, d_terms, g_loss, d_loss, g_norm, d_norm, out)


def train_rollout(
    nets: Networks,
    opts: Optimizers,
    objective: Vid2VidObjective,
    clip: ClipBatch,  # the whole clip (its real first frames given, or none)
    instance: torch.Tensor,  # (B, T, 1, H, W) instance maps, for E
    tc: TrainConfig,
    scaler: torch.amp.GradScaler,
    where: tuple[int, int, str],  # (scale, the first step, clip) named by a failing step
    per_frame: bool = False,
) -> Iterator[tuple[ClipBatch, StepResult]]:
    """One clip as a rollout: a :func:`train_step` per window of :func:`rollout_windows`, each window's
    generator continuing from the previous window's last outputs (detached). Yields each step's batch and result."""
    scale, first_step, name = where
    context = nets.generator.num_frames - 1
    carried: torch.Tensor | None = None  # the generator's own last outputs, given to the next window
    for k, (start, stop) in enumerate(rollout_windows(clip.image.shape[1], context, tc.chunk_frames, per_frame)):
        piece = clip.chunk(start, stop, carried)
        result = train_step(
            nets, opts, objective, piece, instance[:, start:stop], tc, scaler, (scale, first_step + k, name), per_frame
        )
        if not per_frame:
            given = piece.given_frames()
            made = result.out["fake"].detach()
            carried = (made if given is None else torch.cat([given, made], dim=1))[:, -context:]
        yield piece, result


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
    tc = cfg.train
    sc: ScaleConfig = getattr(cfg, f"train_scale{scale}")
    dist = distributed.init(tc.device)
    torch.manual_seed(tc.seed + dist.rank)  # its state is saved with the model (for resuming): same run, same bytes
    nets, fresh = build_networks(cfg, scale, previous, per_frame)
    for module in nets.modules().values():
        module.to(dist.device)
    context = nets.generator.num_frames - 1
    factor = scale_factor(cfg, scale)
    _check_videos(dataset, context, nets.generator.size_multiple * factor, scale)  # before any checkpoint I/O
    objective = Vid2VidObjective(
        weights=loss_weights(cfg),
        gan_mode=tc.gan_mode,
        vgg_weights=tc.vgg_weights,
        temporal=not per_frame,
        flow=nets.generator.flow,
        judge_hallucinated=tc.judge_hallucinated,
        scale=scale,
    ).to(dist.device)
    if objective.vgg is not None and tc.vgg_weights == "random":
        objective.vgg.calibrate(_real_frames(dataset, factor, dist.device))
    opts = Optimizers.build(nets, tc, scale)
    scaler = torch.amp.GradScaler(dist.device.type, enabled=tc.amp and dist.device.type == "cuda")

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
        payload = load_checkpoint(last, modules=nets.modules(), config=config, optimizers=opts.named(), scaler=scaler)
        start_epoch, step, skip = payload["epoch"], payload["step"], payload["extra"].get("batch", 0)
        history = list(payload["extra"].get("history", []))
        last_terms = dict(payload["extra"].get("last", {}))  # the final losses, also when nothing is left to do
        log.info("resuming scale %d from %s (epoch %d, step %d)", scale, last, start_epoch, step)
    elif dist.is_main:
        log.info("scale %d: starting from %s", scale, previous or "random initialisation")
    if dist.world_size > 1:
        nets.distribute()
    sampler: DistributedSampler[Any] | None = (
        DistributedSampler(dataset, shuffle=True, seed=tc.seed) if dist.world_size > 1 else None
    )
    schedule = ClipSchedule(sc.start_frames, sc.double_every, sc.max_frames)

    def save_step(position: tuple[int, int, int]) -> None:  # (step, epoch to continue, batches of it done)
        state = (config, nets, opts.named(), scaler, position, history, last_terms, tc.keep_checkpoints)
        _save(step_path(work_dir, position[0]), *state)

    clips_per_process = per_process_batch(tc.batch_size, dist.world_size)
    started = time.perf_counter()
    for epoch in range(start_epoch, sc.epochs):
        dataset.clip_length = schedule.frames_at(epoch)
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        opts.decay(epoch, sc)
        frozen = scale > 0 and epoch < sc.freeze_coarse_epochs
        for p in nets.coarse(scale):
            p.requires_grad_(not frozen)
        loader = DataLoader(
            dataset,
            batch_size=clips_per_process,
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
            # some clips start from labels alone (the hallucinate first-frame policy), the others from real frames
            from_labels = random.Random(tc.seed * 1_000_003 + step).random() < tc.from_labels_prob
            given = 0 if from_labels or per_frame else context
            clip = ClipBatch(batch["label"], batch["image"], batch["flow"], batch["flow_valid"], given)
            steps_before = step
            rollout = train_rollout(
                nets, opts, objective, clip, batch["instance"], tc, scaler, (scale, step + 1, where), per_frame
            )
            for piece, result in rollout:
                step += 1
                last_terms = {
                    **{f"loss/{k}": float(v.detach()) for k, v in {**result.d_terms, **result.g_terms}.items()},
                    "loss/d_total": float(result.d_loss.detach()),
                    "loss/g_total": float(result.g_loss.detach()),
                    "grad_norm/generator": result.g_norm,
                    "grad_norm/discriminators": result.d_norm,
                    "lr/generator": opts.g.param_groups[0]["lr"],
                    "clip_length": float(batch["image"].shape[1]),
                    "epoch": float(epoch),
                }
                if dist.is_main:
                    bar.set_postfix(g=f"{last_terms['loss/g_total']:.3f}", d=f"{last_terms['loss/d_total']:.3f}")
                    if step % tc.log_every == 0 or step == 1:
                        log_metrics(last_terms, step)
                        history.append({"step": step, **last_terms})
                    if step % tc.sample_every == 0 or step == 1:
                        shown = {
                            k: v[0].detach() for k, v in result.out.items() if k in ("fake", "flow", "occlusion_mask")
                        }
                        generated = piece.generated
                        log_sample(
                            {"real": piece.image[0, generated], "label": piece.label[0, generated], **shown}, step
                        )
            # checkpoints fall between clips (a rollout's carried frames are not saved): resuming is exact
            if dist.is_main and step // tc.checkpoint_every > steps_before // tc.checkpoint_every:
                save_step((step, epoch, index + 1))
        if dist.is_main:
            save_step((step, epoch + 1, 0))
    distributed.barrier()
    if dist.is_main and last_terms and (not history or history[-1]["step"] != step):
        log_metrics(last_terms, step)  # the last step is always logged: MLflow, the plots and the summary agree
        history.append({"step": step, **last_terms})
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
    distributed.barrier()  # every rank sees the model (the baseline trains its scales in one process group)
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


def _total(terms: Mapping[str, torch.Tensor], where: tuple[int, int, str]) -> torch.Tensor:
    """The sum of a step's loss terms; a non-finite term stops training with the step, the term(s) and the clip."""
    bad = {k: float(v.detach()) for k, v in terms.items() if not torch.isfinite(v.detach()).all()}
    if bad:
        scale, step, clip = where
        raise FloatingPointError(
            f"scale {scale} step {step}: non-finite loss term(s) {bad} on {clip}; lower train.lr, check that "
            "clip's frames, maps and flow, or set train.amp false if mixed precision is on"
        )
    device = next(iter(terms.values())).device
    return sum(terms.values(), torch.zeros((), device=device))


@contextlib.contextmanager
def _frozen(modules: list[torch.nn.Module]) -> Iterator[None]:
    """``modules`` take no gradient inside (the discriminators while G's loss is built)."""
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


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


def _for_generation(
    nets: Networks, dataset: ClipDataset, factor: int, tc: TrainConfig, device: torch.device
) -> dict[str, Any]:
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


def _real_frames(dataset: ClipDataset, factor: int, device: torch.device, count: int = 16) -> torch.Tensor:
    """Up to ``count`` real training frames ``(N, 3, H, W)`` at this scale's size, spread over the videos (the random
    perceptual network's calibration: the same frames whenever the same data trains)."""
    per_video = max(1, count // len(dataset.videos))
    frames = []
    for video in dataset.videos:
        clip = dataset.load_clip(video, 0, min(per_video, video.num_frames))
        frames.append(downscale({"image": clip["image"][None]}, factor)["image"][0])
    return torch.cat(frames)[:count].to(device)


def _grad_norm(params: list[torch.nn.Parameter], what: str, where: tuple[int, int, str]) -> float:
    """Gradient norm of ``params``; a non-finite one (an exploding or NaN gradient) stops training, named."""
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    norm = float(torch.stack(grads).norm()) if grads else 0.0
    if not math.isfinite(norm):
        scale, step, clip = where
        raise FloatingPointError(
            f"scale {scale} step {step}: the {what}' gradient norm is {norm} (exploding or NaN gradient) on "
            f"{clip}; lower train.lr, or set train.amp false if mixed precision is on"
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
