"""Flow, warp, warp-consistency and occlusion-mask losses (all through :func:`v2v.ops.warp.warp`).

Flows follow the project convention (backward flow, :mod:`v2v.ops.warp`): ``flow[:, t]`` maps
frame t-1 onto frame t, ``warp(frame_{t-1}, flow_t) ≈ frame_t``. Clips are ``(B, T, C, H, W)``; the
``confidence`` of the ground-truth flow is ``(B, T, 1, H, W)`` in [0, 1] and masks every term.
"""

from __future__ import annotations

import torch

from v2v.models.layers import assert_shape, fold_time
from v2v.ops.warp import warp


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean(|prediction - target| * mask)`` over all elements (the mask broadcast over channels)."""
    return ((prediction - target).abs() * mask).mean()


def _shapes(name: str, reference: torch.Tensor, **tensors: torch.Tensor) -> None:
    b, t, _, h, w = reference.shape
    for key, tensor in tensors.items():
        assert_shape(tensor, [b, t, None, h, w], f"{name}: {key}")


class FlowLoss:
    """Supervision of the flow branch: ``flow`` = L1(predicted, ground-truth flow) and ``flow_warp`` =
    L1(warp(real_{t-1}, predicted flow), real_t), both masked by the flow confidence (×10 each)."""

    def __init__(
        self,
        *,
        weight_flow: float = 10.0,  # lambda_F of the reference
        weight_warp: float = 10.0,  # lambda_T of the reference
    ) -> None:
        self.weight_flow = weight_flow
        self.weight_warp = weight_warp

    def __call__(
        self,
        flow: torch.Tensor,  # (B, T, 2, H, W) predicted flow
        flow_true: torch.Tensor,  # (B, T, 2, H, W) ground-truth flow
        confidence: torch.Tensor,  # (B, T, 1, H, W)
        real_prev: torch.Tensor,  # (B, T, 3, H, W) real frames t-1
        real: torch.Tensor,  # (B, T, 3, H, W) real frames t
    ) -> dict[str, torch.Tensor]:
        _shapes("FlowLoss", flow, flow_true=flow_true, confidence=confidence, real_prev=real_prev, real=real)
        conf = fold_time(confidence)
        warped = warp(fold_time(real_prev), fold_time(flow))
        return {
            "flow": self.weight_flow * masked_l1(flow, flow_true, confidence),
            "flow_warp": self.weight_warp * masked_l1(warped, fold_time(real), conf),
        }


class WarpConsistencyLoss:
    """``warp`` = L1(fake_t, warp(fake_{t-1}, ground-truth flow_t)), confidence-masked; the warped target
    is detached, so the loss pulls the new frame towards the motion-compensated previous one."""

    def __init__(self, *, weight: float = 10.0) -> None:  # weight: lambda_T of the reference
        self.weight = weight

    def __call__(
        self,
        fake: torch.Tensor,  # (B, T, 3, H, W) generated frames t
        fake_prev: torch.Tensor,  # (B, T, 3, H, W) generated frames t-1
        flow_true: torch.Tensor,  # (B, T, 2, H, W)
        confidence: torch.Tensor,  # (B, T, 1, H, W)
    ) -> dict[str, torch.Tensor]:
        _shapes("WarpConsistencyLoss", fake, fake_prev=fake_prev, flow_true=flow_true, confidence=confidence)
        target = warp(fold_time(fake_prev), fold_time(flow_true)).detach()
        return {"warp": self.weight * masked_l1(fold_time(fake), target, fold_time(confidence))}


class MaskRegulariser:
    """``mask`` = mean occlusion mask where the flow is confident: prefer warping over hallucinating
    wherever the previous frame can be reused (the reference applies it when the first frame is generated)."""

    def __init__(self, *, weight: float = 1.0) -> None:  # weight: multiplier
        self.weight = weight

    def __call__(
        self,
        occlusion_mask: torch.Tensor,  # (B, T, 1, H, W)
        confidence: torch.Tensor,  # (B, T, 1, H, W)
    ) -> dict[str, torch.Tensor]:
        _shapes("MaskRegulariser", occlusion_mask, confidence=confidence)
        return {"mask": self.weight * masked_l1(occlusion_mask, torch.zeros_like(occlusion_mask), confidence)}
