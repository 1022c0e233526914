"""Building blocks shared by the vid2vid networks: norms, conv blocks, ResBlocks, init, shape helpers.

Per-frame networks take ``(N, C, H, W)``; the public modules take ``(B, T, C, H, W)`` and fold the
time axis into the batch (``fold_time``) or into the channels (``stack_time``) explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "instance"]


def assert_shape(tensor: torch.Tensor, shape: Sequence[int | None], name: str = "tensor") -> None:
    """Raise a ``ValueError`` unless ``tensor.shape`` matches ``shape`` (``None`` matches any size)."""
    if tensor.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(tensor.shape, shape, strict=True)
    ):
        spelled = tuple("*" if s is None else s for s in shape)
        raise ValueError(f"{name}: expected shape {spelled}, got {tuple(tensor.shape)}")


def fold_time(video: torch.Tensor) -> torch.Tensor:
    """``(B, T, C, H, W)`` → ``(B*T, C, H, W)`` (frames become batch items)."""
    assert_shape(video, [None] * 5, "fold_time input")
    b, t, c, h, w = video.shape
    return video.reshape(b * t, c, h, w)


def unfold_time(frames: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B*T, C, H, W)`` → ``(B, T, C, H, W)``, the inverse of :func:`fold_time`."""
    assert_shape(frames, [None] * 4, "unfold_time input")
    n, c, h, w = frames.shape
    if n % batch:
        raise ValueError(f"unfold_time: {n} frames do not split into batch {batch}")
    return frames.reshape(batch, n // batch, c, h, w)


def stack_time(video: torch.Tensor) -> torch.Tensor:
    """``(B, T, C, H, W)`` → ``(B, T*C, H, W)`` (frames stacked along channels, oldest first)."""
    assert_shape(video, [None] * 5, "stack_time input")
    b, t, c, h, w = video.shape
    return video.reshape(b, t * c, h, w)


def downsample(x: torch.Tensor, times: int = 1) -> torch.Tensor:
    """Halve the spatial size ``times`` times by 2×2 average pooling (``(N, C, H, W)``)."""
    for _ in range(times):
        x = F.avg_pool2d(x, 2)
    return x


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """``batch``: affine batch norm (the reference); ``instance``: instance norm without affine."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"unknown norm {kind!r}; expected 'batch' or 'instance'")


def conv_block(
    in_channels: int,
    out_channels: int,
    *,
    kernel_size: int,  # 7 (stem, reflect padded), 3 (strided) ...
    stride: int = 1,
    norm: Norm,
    reflect: bool = False,  # reflection padding (stems, ResBlocks) instead of zero padding
) -> nn.Sequential:
    """Conv → norm → ReLU."""
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        padding_mode="reflect" if reflect else "zeros",
    )
    return nn.Sequential(conv, norm_layer(norm, out_channels), nn.ReLU(inplace=True))


def up_block(in_channels: int, out_channels: int, *, norm: Norm) -> nn.Sequential:
    """Transposed conv ×2 upsampling → norm → ReLU."""
    conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
    return nn.Sequential(conv, norm_layer(norm, out_channels), nn.ReLU(inplace=True))


def output_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """The 7×7 reflect-padded output layer of a decoder (no norm, no activation)."""
    return nn.Conv2d(in_channels, out_channels, 7, padding=3, padding_mode="reflect")


class ResBlock(nn.Module):
    """``x + norm(conv(relu(norm(conv(x)))))`` with 3×3 reflect-padded convs."""

    def __init__(self, channels: int, *, norm: Norm) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The reference initialisation: conv weights N(0, std), biases 0; batch-norm scale N(1, std)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (works on ``meta``-device modules: nothing is allocated)."""
    return sum(p.numel() for p in module.parameters())


def load_grown(model: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> list[str]:
    """Initialise ``model`` from the state of a smaller network of the same kind (scale growth).

    Every tensor of ``state_dict`` must exist in ``model`` with the same shape (the same preset with
    fewer scales); the added parts keep their fresh initialisation. Returns the names left at it.
    """
    own = model.state_dict()
    problems = [k for k in state_dict if k not in own]
    problems += [
        f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and v.shape != own[k].shape
    ]
    if problems:
        raise ValueError(
            f"the coarser checkpoint does not fit this {what} (same preset, fewer scales expected): "
            + "; ".join(problems[:5])
        )
    model.load_state_dict(state_dict, strict=False)
    return [k for k in own if k not in state_dict]


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def use_batch_statistics(module: ModuleT) -> ModuleT:
    """Batch-norm layers of ``module`` normalise with the statistics of each batch, as in training, and leave
    their running averages untouched (train mode, momentum 0); every other layer keeps its mode.

    vid2vid trains G on one frame per step, so a frame's own statistics are what G learned with; the
    reference never switches G to eval mode at test time. Returns ``module``.
    """
    for layer in module.modules():
        if isinstance(layer, BATCH_NORMS):
            layer.train()
            layer.momentum = 0.0
    return module
