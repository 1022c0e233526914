"""Feature networks of the Fréchet distances: one vector per frame (Inception-v3) or per clip (video nets).

Image backbones (``evaluate.image_backbone``):

* ``pytorch_fid`` — the TF-2015 Inception port that FID numbers in papers use (pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth``), when the ``pytorch-fid`` package is installed:
  ``default`` lets it download or read ``$TORCH_HOME/hub/checkpoints/<that file>``; a path loads
  that file. Inputs are resized to 299×299 bilinearly (pytorch-fid's own resize).
* ``inception_v3`` — torchvision's ImageNet Inception-v3 (``Inception_V3_Weights.IMAGENET1K_V1``):
  numbers are *not* comparable with published FIDs, and are named ``fid_tv`` to say so.

Video backbones (``evaluate.video_backbones``), torchvision Kinetics-400 models, one feature per
clip of ``clip_frames`` frames: ``s3d`` (1024-d, input 224×224) and ``r2plus1d_18`` (512-d, 112×112),
each reported as ``fd_<name>``; plus ``fvd`` from the I3D TorchScript model commonly used for FVD
(StyleGAN-V's ``i3d_torchscript.pt``) when ``evaluate.i3d_torchscript`` points to it.

Every network says which weights it used (:class:`v2v.io.weights.WeightsInfo`) and how frames were
resized; both are recorded next to every number. ``none`` weights (random init) are for tests.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from v2v.io.files import file_sha256
from v2v.io.weights import WeightsError, WeightsInfo, build_torchvision_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
VIDEO_SIZES = {"s3d": 224, "r2plus1d_18": 112}  # square input side per backbone (v2v.config.VIDEO_BACKBONES)


@dataclass
class FeatureNet:
    """A frozen network mapping frames (``(N, 3, H, W)``) or clips (``(N, 3, T, H, W)``) in [-1, 1] to features."""

    metric: str  # the name its distance is reported under: fid, fid_tv, fd_s3d, fd_r2plus1d_18, fvd
    module: nn.Module
    weights: WeightsInfo
    dims: int
    preprocess: str  # how inputs are resized and normalised (recorded with the number)
    kind: str  # "image" | "video"
    size: int  # square input side
    mean: tuple[float, float, float] | None  # normalisation after mapping to [0, 1]; None: the net's own
    std: tuple[float, float, float] | None
    call: str = "plain"  # plain | pytorch_fid | i3d

    def to(self, device: torch.device) -> FeatureNet:
        self.module.to(device)
        return self

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, dims)`` float32 of frames or clips in [-1, 1]."""
        device = next(self.module.parameters(), torch.empty(0)).device
        x = x.to(device=device, dtype=torch.float32)
        if self.call == "pytorch_fid":  # resizes to 299 and normalises itself; wants [0, 1]
            return self.module((x + 1) / 2)[0].flatten(1)
        if self.kind == "image":
            x = F.interpolate((x + 1) / 2, size=(self.size, self.size), mode="bilinear", align_corners=False)
            x = _normalise(x, self.mean, self.std, dim=1)
            return self.module(x).flatten(1)
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        frames = F.interpolate((frames + 1) / 2, size=(self.size, self.size), mode="bilinear", align_corners=False)
        clips = frames.reshape(n, t, c, self.size, self.size).transpose(1, 2)
        if self.call == "i3d":  # StyleGAN-V's FVD detector: [0, 255] input, it rescales and resizes itself
            return self.module(clips * 255.0, rescale=True, resize=True, return_features=True).flatten(1)
        return self.module(_normalise(clips, self.mean, self.std, dim=1)).flatten(1)


def _normalise(x: torch.Tensor, mean: Any, std: Any, dim: int) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[dim] = 3
    return (x - x.new_tensor(mean).view(shape)) / x.new_tensor(std).view(shape)


def calibrate_random_batchnorm(module: nn.Module, shape: tuple[int, ...], batches: int = 1) -> nn.Module:
    """Random-init networks only: set BatchNorm statistics from seeded noise so features stay O(1).

    A randomly initialised network in eval mode normalises with mean 0 / variance 1, and its
    activations explode or vanish with depth (Inception-v3 features reach ~1e10); statistics
    measured on fixed noise make the random features usable for pipeline checks. Deterministic.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    generator = torch.Generator().manual_seed(0)
    module.train()
    with torch.no_grad():
        for _ in range(batches):
            module(torch.rand(shape, generator=generator) * 2 - 1)
    return module.eval()


def image_feature_net(backbone: str, weights: str, key: str = "evaluate.image_weights") -> FeatureNet:
    """The per-frame network of FID (``backbone``: ``pytorch_fid`` | ``inception_v3``)."""
    if backbone == "pytorch_fid":
        return _pytorch_fid_net(weights, key)
    if backbone != "inception_v3":
        raise ValueError(f"evaluate.image_backbone: expected pytorch_fid or inception_v3, got {backbone!r}")
    from torchvision import models

    extra = {"init_weights": True} if weights == "none" else {"init_weights": False}
    torch.manual_seed(0)  # random-init weights (tests) are the same on every run
    module, info = build_torchvision_model(
        models, "inception_v3", weights, key, aux_logits=True, transform_input=True, **extra
    )
    module.fc = nn.Identity()
    module.aux_logits, module.AuxLogits = False, None  # type: ignore[assignment]
    if weights == "none":
        calibrate_random_batchnorm(module, (2, 3, 299, 299))
    return FeatureNet(
        metric="fid_tv",
        module=module.eval(),
        weights=info,
        dims=2048,
        preprocess="bilinear resize to 299x299 (align_corners=False, no antialias), ImageNet normalisation",
        kind="image",
        size=299,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


@contextlib.contextmanager
def _hub_dir_with(path: Path, file_name: str) -> Iterator[None]:
    """Point torch.hub at a temporary folder where ``file_name`` links to ``path`` (its offline cache)."""
    previous = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "checkpoints").mkdir()
        os.symlink(path.resolve(), Path(tmp) / "checkpoints" / file_name)
        torch.hub.set_dir(tmp)
        try:
            yield
        finally:
            torch.hub.set_dir(previous)


def _pytorch_fid_net(weights: str, key: str) -> FeatureNet:
    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError as exc:
        raise WeightsError(
            "evaluate.image_backbone: pytorch_fid needs the pytorch-fid package (pip install pytorch-fid), "
            "or set evaluate.image_backbone to inception_v3"
        ) from exc
    if weights == "none":
        raise WeightsError(
            f"{key}: none: the TF-Inception port has no random-init mode; use evaluate.image_backbone inception_v3 "
            "for tests without weights"
        )
    cache = Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE
    path = cache if weights == "default" else Path(weights)
    if weights != "default" and not path.is_file():
        raise WeightsError(f"{key}: {path}: weights file not found; set {key} to default or an existing file")
    block = InceptionV3.BLOCK_INDEX_BY_DIM[2048]
    try:
        if weights == "default":
            module = InceptionV3([block], resize_input=True, normalize_input=True, use_fid_inception=True)
        else:
            with _hub_dir_with(path, PYTORCH_FID_FILE):
                module = InceptionV3([block], resize_input=True, normalize_input=True, use_fid_inception=True)
    except Exception as exc:
        raise WeightsError(
            f"{key}: cannot load the FID Inception weights ({type(exc).__name__}: {exc}). Offline? Put "
            f"{PYTORCH_FID_FILE} (pytorch-fid's release) at {cache}, or set {key} to its path"
        ) from exc
    info = WeightsInfo(
        "pytorch_fid.InceptionV3", weights, PYTORCH_FID_FILE, file_sha256(path) if path.is_file() else None
    )
    return FeatureNet(
        metric="fid",
        module=module.eval(),
        weights=info,
        dims=2048,
        preprocess="pytorch-fid: bilinear resize to 299x299 (align_corners=False), scaled to [-1, 1]",
        kind="image",
        size=299,
        mean=None,
        std=None,
        call="pytorch_fid",
    )


def video_feature_net(backbone: str, weights: str, key: str = "evaluate.video_weights") -> FeatureNet:
    """A per-clip network: ``s3d`` or ``r2plus1d_18`` (torchvision, Kinetics-400)."""
    if backbone not in VIDEO_SIZES:
        raise ValueError(f"evaluate.video_backbones: expected names from {sorted(VIDEO_SIZES)}, got {backbone!r}")
    from torchvision.models import video

    torch.manual_seed(0)
    module, info = build_torchvision_model(video, backbone, weights, key)
    if backbone == "s3d":
        module.classifier = nn.Identity()
        dims = 1024
    else:
        module.fc = nn.Identity()
        dims = 512
    size = VIDEO_SIZES[backbone]
    if weights == "none":
        calibrate_random_batchnorm(module, (1, 3, 16, size, size))
    return FeatureNet(
        metric=f"fd_{backbone}",
        module=module.eval(),
        weights=info,
        dims=dims,
        preprocess=f"bilinear resize of every frame to {size}x{size} (aspect not kept), Kinetics normalisation",
        kind="video",
        size=size,
        mean=KINETICS_MEAN,
        std=KINETICS_STD,
    )


def i3d_feature_net(path: str | Path, key: str = "evaluate.i3d_torchscript") -> FeatureNet:
    """FVD's I3D: the TorchScript detector (400-d logits as features) from a local file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"{key}: {path}: file not found; download i3d_torchscript.pt (StyleGAN-V) or set {key}: null"
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise WeightsError(f"{key}: {path}: not a TorchScript model ({type(exc).__name__}: {exc})") from exc
    return FeatureNet(
        metric="fvd",
        module=module.eval(),
        weights=WeightsInfo("i3d_torchscript", str(path), path.name, file_sha256(path)),
        dims=400,
        preprocess="bilinear resize to 224x224, then the detector's own rescale/resize",
        kind="video",
        size=224,
        mean=None,
        std=None,
        call="i3d",
    )
