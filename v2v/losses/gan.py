"""Adversarial loss (LSGAN, the reference's choice, or hinge) and discriminator feature matching.

Both take discriminator outputs as returned by :mod:`v2v.models.discriminators`: per spatial scale
a list of layer outputs whose last entry is the patch prediction.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from v2v.models.discriminators import Predictions

GanMode = Literal["lsgan", "hinge"]


def _check(predictions: Predictions, name: str) -> None:
    if not predictions or not all(isinstance(scale, list) and scale for scale in predictions):
        raise ValueError(f"{name}: expected a non-empty list (per scale) of non-empty lists of layer outputs")


class GANLoss:
    """Adversarial losses summed over the discriminator's spatial scales.

    ``lsgan``: D minimises ``(D(real) - 1)^2 + D(fake)^2``, G minimises ``(D(fake) - 1)^2``.
    ``hinge``: D minimises ``relu(1 - D(real)) + relu(1 + D(fake))``, G minimises ``-D(fake)``.
    """

    def __init__(
        self,
        *,
        mode: GanMode = "lsgan",  # lsgan (reference) | hinge
        weight: float = 1.0,  # multiplier of every returned term
        prefix: str = "",  # prepended to the returned names (e.g. "video_" for D_V)
    ) -> None:
        if mode not in ("lsgan", "hinge"):
            raise ValueError(f"unknown GAN mode {mode!r}; expected 'lsgan' or 'hinge'")
        self.mode = mode
        self.weight = weight
        self.prefix = prefix

    def discriminator(self, real: Predictions, fake: Predictions) -> dict[str, torch.Tensor]:
        """D's losses ``{prefix}d_real``, ``{prefix}d_fake`` (detach the fakes before calling D)."""
        _check(real, "real predictions")
        _check(fake, "fake predictions")
        d_real = sum((self._term(scale[-1], real=True) for scale in real), torch.zeros(()))
        d_fake = sum((self._term(scale[-1], real=False) for scale in fake), torch.zeros(()))
        return {f"{self.prefix}d_real": self.weight * d_real, f"{self.prefix}d_fake": self.weight * d_fake}

    def generator(self, fake: Predictions) -> dict[str, torch.Tensor]:
        """G's loss ``{prefix}g_gan``."""
        _check(fake, "fake predictions")
        if self.mode == "hinge":
            total = sum((-scale[-1].mean() for scale in fake), torch.zeros(()))
        else:
            total = sum((self._term(scale[-1], real=True) for scale in fake), torch.zeros(()))
        return {f"{self.prefix}g_gan": self.weight * total}

    def _term(self, pred: torch.Tensor, *, real: bool) -> torch.Tensor:
        if self.mode == "lsgan":
            return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
        return F.relu(1.0 - pred).mean() if real else F.relu(1.0 + pred).mean()


class FeatureMatchingLoss:
    """L1 between D's intermediate features on fake and on real, as in pix2pixHD/vid2vid.

    Each of the ``L`` intermediate layers of each of the ``S`` scales weighs ``4 / L`` (the reference's
    ``4 / (n_layers + 1)``) × ``1 / S``; the real features are detached.
    """

    def __init__(
        self,
        *,
        weight: float = 10.0,  # lambda_feat of the reference
        prefix: str = "",  # prepended to the returned name
    ) -> None:
        self.weight = weight
        self.prefix = prefix

    def __call__(self, fake: Predictions, real: Predictions) -> dict[str, torch.Tensor]:
        """``{prefix}g_feat``."""
        _check(fake, "fake predictions")
        _check(real, "real predictions")
        if len(fake) != len(real):
            raise ValueError(f"fake has {len(fake)} scales, real {len(real)}")
        total = torch.zeros((), device=fake[0][-1].device)
        for fake_scale, real_scale in zip(fake, real, strict=True):
            layers = len(fake_scale) - 1
            for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
                total = total + F.l1_loss(f, r.detach()) * (4.0 / layers) / len(fake)
        return {f"{self.prefix}g_feat": self.weight * total}
