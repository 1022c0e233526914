"""LPIPS (Zhang et al., 2018): the ``lpips`` package's calibrated linear heads on a torchvision backbone.

The calibration weights ship inside the ``lpips`` wheel and are always loaded. The backbone
(AlexNet, as in the paper's default ``net='alex'``) follows the project's weights policy through
``evaluate.lpips_weights``: ``default`` (torchvision's ImageNet weights, online or from
``$TORCH_HOME``), a path to an ``alexnet`` state dict, or ``none`` (random init: tests only; the
distances are then not LPIPS, and the recorded weights say so).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn

from v2v.io.weights import WeightsInfo, build_torchvision_model


class LPIPS(nn.Module):
    """``lpips(a, b)`` → ``(N,)`` distances between images ``(N, 3, H, W)`` in [-1, 1]."""

    def __init__(self, weights: str = "default", key: str = "evaluate.lpips_weights") -> None:
        super().__init__()
        import lpips
        from torchvision import models

        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # lpips prints its setup
            warnings.simplefilter("ignore", UserWarning)  # and calls torchvision with deprecated arguments
            # pnet_rand: lpips would otherwise fetch the backbone itself through a deprecated torchvision call
            self.net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        torch.manual_seed(0)
        alexnet, self.weights = build_torchvision_model(models, "alexnet", weights, key)
        if weights != "none":
            features = alexnet.get_submodule("features").state_dict()
            backbone = self.net.net
            # lpips keeps alexnet.features[i] as sliceK.<i>: same modules, other names
            mapped = {name: features[name.split(".", 1)[1]] for name in backbone.state_dict()}
            backbone.load_state_dict(mapped)
        self.weights = WeightsInfo("lpips(alex)", self.weights.weights, self.weights.name, self.weights.sha256)
        self.net.eval().requires_grad_(False)

    @torch.inference_mode()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        device = next(self.net.parameters()).device
        return self.net(a.to(device).float(), b.to(device).float()).flatten()
