"""VGG19 perceptual loss: L1 between VGG19 features (relu1_1 … relu5_1) of fake and real frames.

Weights (``weights`` argument, to be exposed as a params key by the training stage):

* ``imagenet`` — torchvision's ``VGG19_Weights.IMAGENET1K_V1``, downloaded by torchvision when
  online or found in ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``;
* a path — a local ``vgg19`` state dict (full model or ``features`` only), ``weights_only=True``;
* ``none`` — random initialisation (seed 0): for tests only; the loss is then meaningless, and
  :attr:`VGGPerceptualLoss.weights_used` says so (record it);
* ``random`` — the same random network made a usable perceptual loss offline: :meth:`VGGPerceptualLoss.calibrate`
  rescales each slice so its features have unit mean magnitude on real frames, and the slices weigh alike
  (random-weight CNNs as perceptual losses: He, Wang and Hopcroft, NeurIPS 2016; Liu et al., *Generic
  Perceptual Loss*, CVPR 2021). Without the rescaling the deepest slice's features dwarf or vanish against
  the others', depending on the init.

Nothing falls back silently: weights that cannot be loaded raise :class:`VGGWeightsError`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from v2v.models.layers import assert_shape, fold_time

# end indices (exclusive) into vgg19().features of the slices ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
SLICE_ENDS = (2, 7, 12, 21, 30)
LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)  # the reference's per-layer weights
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """Requested VGG19 weights could not be loaded; the message says how to provide them."""


def _vgg19_from_state(state: dict[str, torch.Tensor]) -> nn.Sequential:
    """``vgg19().features`` holding ``state`` (a full-model or a features-only state dict).

    The model is built on the ``meta`` device and the tensors assigned, so the 100 M-parameter
    classifier is never randomly initialised.
    """
    from torchvision.models import vgg19

    with torch.device("meta"):
        net = vgg19(weights=None)
    if all(k.startswith(("features.", "classifier.")) for k in state):
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    net.features.load_state_dict(state, assign=True)
    return net.features


def load_vgg19_features(weights: str) -> tuple[nn.Sequential, str]:
    """``vgg19().features`` with the requested weights; returns ``(module, description of the weights)``."""
    from torchvision.models import VGG19_Weights, vgg19

    if weights in ("none", "random"):
        with torch.device("meta"):
            features = vgg19(weights=None).features
        features = features.to_empty(device="cpu")
        gen = torch.Generator().manual_seed(0)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):  # torchvision's VGG init: Kaiming normal (fan_out), zero bias
                std = (2.0 / (m.out_channels * m.kernel_size[0] * m.kernel_size[1])) ** 0.5
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                    assert m.bias is not None
                    m.bias.zero_()
        if weights == "random":
            return features, "random (seed 0), slices not yet calibrated"
        return features, "none (random init, seed 0): the perceptual loss is meaningless (tests only)"
    if weights == "imagenet":
        chosen = VGG19_Weights.IMAGENET1K_V1
        file_name = Path(chosen.url).name
        try:
            features = _vgg19_from_state(chosen.get_state_dict(progress=False))
        except Exception as exc:  # offline download failure, corrupt cache file, ...
            raise VGGWeightsError(
                f"VGG19 weights 'imagenet': cannot load torchvision's {chosen} ({exc}). On a machine with "
                f"internet, download {chosen.url} and put it at "
                f"{Path(torch.hub.get_dir()) / 'checkpoints' / file_name} (TORCH_HOME chooses the folder), "
                "or set the VGG weights key to the path of the file"
            ) from exc
        return features, f"torchvision {chosen} ({file_name})"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise VGGWeightsError(
            f"VGG19 weights {weights!r}: no such file; give a vgg19 state dict path, 'imagenet' "
            "(torchvision's weights) or 'none' (random, tests only)"
        )
    try:
        features = _vgg19_from_state(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:
        raise VGGWeightsError(
            f"VGG19 weights {path}: not a vgg19 state dict that loads with weights_only=True ({exc})"
        ) from exc
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return features, f"file {path} (sha256 {digest})"


class VGGPerceptualLoss(nn.Module):
    """``vgg`` = weight × Σ_l w_l · L1(VGG_l(fake), VGG_l(real)), frames in [-1, 1] (ImageNet-normalised inside).

    A stated departure: the reference feeds its [-1, 1] frames to VGG19 as they are; we map them to
    the ImageNet normalisation the weights were trained with, so the features are the ones VGG learned.

    The VGG is frozen (no parameters train); gradients flow to ``fake`` only.
    """

    def __init__(
        self,
        *,
        weights: str = "imagenet",  # imagenet | none (tests only) | path to a vgg19 state dict
        weight: float = 10.0,  # lambda_feat of the reference
        layer_weights: tuple[float, ...] = LAYER_WEIGHTS,  # per-slice weights, shallow → deep
        max_width: int = 1024,  # frames wider than this are 2×-average-pooled first (as the reference)
    ) -> None:
        super().__init__()
        if len(layer_weights) != len(SLICE_ENDS):
            raise ValueError(f"layer_weights needs {len(SLICE_ENDS)} entries, got {len(layer_weights)}")
        features, self.weights_used = load_vgg19_features(weights)
        self.weights_kind = weights
        if weights == "random":  # calibrated slices weigh alike (the reference's 1/32 .. 1 suit ImageNet features)
            layer_weights = (1.0 / len(SLICE_ENDS),) * len(SLICE_ENDS)
        self.slice_scales: list[float] = []  # random: the factor each slice's output was divided by
        starts = (0, *SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, SLICE_ENDS, strict=True))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()
        self.weight = weight
        self.layer_weights = layer_weights
        self.max_width = max_width
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def calibrate(self, frames: torch.Tensor) -> list[float]:
        """``random`` weights: scale each slice so its features on ``frames`` (``(N, 3, H, W)`` real frames in
        [-1, 1]) have mean magnitude 1, slice after slice; returns the scales (recorded with the model).
        A ReLU is positively homogeneous, so dividing a slice's last convolution divides its output."""
        if self.weights_kind != "random":
            raise ValueError(f"only random VGG weights are calibrated, not {self.weights_kind!r}")
        if self.slice_scales:
            raise ValueError("the VGG is calibrated already")
        x = ((frames + 1) / 2 - self.mean) / self.std
        for block in self.slices:
            x = block(x)
            scale = float(x.abs().mean())
            conv = [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1]
            conv.weight.div_(scale)
            assert conv.bias is not None
            conv.bias.div_(scale)
            x = x / scale
            self.slice_scales.append(scale)
        self.weights_used = (
            f"random (seed 0), slices scaled to unit feature magnitude on {len(frames)} real frames "
            f"(divided by {', '.join(f'{s:.4g}' for s in self.slice_scales)})"
        )
        return self.slice_scales

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        return super().train(False)  # the VGG stays in eval mode

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for block in self.slices:
            x = block(x)
            out.append(x)
        return out

    def forward(
        self,
        fake: torch.Tensor,  # (B, T, 3, H, W) in [-1, 1]
        real: torch.Tensor,  # (B, T, 3, H, W) in [-1, 1]
    ) -> dict[str, torch.Tensor]:
        assert_shape(fake, [None, None, 3, None, None], "fake")
        assert_shape(real, list(fake.shape), "real")
        x, y = fold_time(fake), fold_time(real)
        while x.shape[-1] > self.max_width:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        fx = self._features(x)
        with torch.no_grad():
            fy = self._features(y)
        total = sum(
            (w * F.l1_loss(a, b) for w, a, b in zip(self.layer_weights, fx, fy, strict=True)),
            torch.zeros((), device=x.device),
        )
        return {"vgg": self.weight * total}
