"""torchvision RAFT (Teed & Deng 2020), small or large: batched, any device, weights recorded.

Weights (``flow.raft_weights``):

* ``default`` — the torchvision enum's ``DEFAULT`` weights, downloaded by torchvision when online or
  found in ``$TORCH_HOME/hub/checkpoints/`` (offline: copy the file there by hand);
* ``none`` — random initialisation (seed 0): for tests and speed measurements only, the flow is
  meaningless, and it is recorded as such;
* a path — a local state dict (``torch.load(..., weights_only=True)``) for the chosen model.

Nothing falls back silently: weights that cannot be loaded raise :class:`RaftWeightsError` saying
how to provide them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from v2v.flow.common import check_pair_batch
from v2v.io.files import file_sha256

RaftModel = Literal["small", "large"]
SIZE_MULTIPLE = 8  # RAFT works on 1/8-resolution features
MIN_SIDE = 128  # smaller inputs are padded up: the correlation pyramid needs a few 1/8 cells per side


class RaftWeightsError(RuntimeError):
    """Requested RAFT weights could not be loaded; the message says how to provide them."""


def _builders(model: RaftModel) -> tuple[Any, Any]:
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

    if model == "small":
        return raft_small, Raft_Small_Weights
    if model == "large":
        return raft_large, Raft_Large_Weights
    raise ValueError(f"flow.raft_model: expected 'small' or 'large', got {model!r}")


def load_raft(model: RaftModel, weights: str) -> tuple[torch.nn.Module, str]:
    """Build RAFT and load its weights; returns ``(module in eval mode on CPU, description of the weights)``."""
    build, enum = _builders(model)
    if weights == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = build(weights=None, progress=False)
        return net.eval(), f"none (random init, seed 0): raft_{model} flow is meaningless"
    if weights == "default":
        chosen = enum.DEFAULT
        file_name = Path(chosen.url).name
        try:
            net = build(weights=chosen, progress=False)
        except Exception as exc:  # offline download failure, corrupt cache file, ...
            raise RaftWeightsError(
                f"flow.raft_weights: default: cannot load torchvision's {chosen} weights for raft_{model} ({exc}). "
                f"On a machine with internet, download {chosen.url} and put it at "
                f"{Path(torch.hub.get_dir()) / 'checkpoints' / file_name} (set TORCH_HOME to choose the folder), "
                "or set flow.raft_weights to the path of the file, or use flow.backend: dis (needs no weights)"
            ) from exc
        return net.eval(), f"torchvision {chosen} ({file_name})"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise RaftWeightsError(
            f"flow.raft_weights: {path}: no such file; give a raft_{model} state dict, 'default' "
            "(torchvision's weights) or 'none' (random, tests only)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = build(weights=None, progress=False)
        net.load_state_dict(state)
    except Exception as exc:
        raise RaftWeightsError(
            f"flow.raft_weights: {path}: not a raft_{model} state dict that loads with weights_only=True ({exc})"
        ) from exc
    return net.eval(), f"file {path} (sha256 {file_sha256(path)[:16]})"


def pad_to_multiple(images: torch.Tensor, multiple: int = SIZE_MULTIPLE, min_side: int = MIN_SIDE) -> torch.Tensor:
    """Replicate-pad ``(N, C, H, W)`` on the right and bottom to a multiple of ``multiple`` (and at least ``min_side``)."""
    h, w = images.shape[-2:]
    new_h = max(-(-h // multiple) * multiple, min_side)
    new_w = max(-(-w // multiple) * multiple, min_side)
    if (new_h, new_w) == (h, w):
        return images
    return F.pad(images, (0, new_w - w, 0, new_h - h), mode="replicate")


class RaftFlow:
    """RAFT on a batch of pairs; frames are padded to multiples of 8 and the flow cropped back.

    torchvision's ``raft(image1, image2)`` returns, for every pixel of ``image1``, its displacement
    to ``image2`` — the :class:`~v2v.flow.estimator.FlowEstimator` convention.
    """

    name = "raft"

    def __init__(
        self,
        model: RaftModel = "small",  # raft_small (~1 M parameters) or raft_large (~5 M)
        weights: str = "default",  # "default" (torchvision enum), "none" (random, tests) or a state-dict path
        iterations: int = 12,  # recurrent refinement steps (torchvision's default is 12)
        device: torch.device | None = None,  # where the network runs (default CPU)
    ) -> None:
        if iterations < 1:
            raise ValueError(f"flow.raft_iterations: expected a positive number, got {iterations}")
        net, description = load_raft(model, weights)
        self.device = device or torch.device("cpu")
        self.net = net.to(self.device)
        self.iterations = iterations
        self.weights = description
        self.settings: dict[str, object] = {"model": f"raft_{model}", "iterations": iterations}

    def _to_input(self, rgb: np.ndarray) -> torch.Tensor:
        # (N, H, W, 3) uint8 → (N, 3, H, W) float in [-1, 1], the range torchvision's RAFT weights expect
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0

    @torch.inference_mode()
    def __call__(self, sources: np.ndarray, targets: np.ndarray) -> npt.NDArray[np.float32]:
        n, h, w = check_pair_batch(sources, targets)
        image1 = pad_to_multiple(self._to_input(sources))
        image2 = pad_to_multiple(self._to_input(targets))
        flows = self.net(image1, image2, num_flow_updates=self.iterations)
        flow = flows[-1][:, :, :h, :w]
        assert flow.shape == (n, 2, h, w), flow.shape
        return np.ascontiguousarray(flow.permute(0, 2, 3, 1).float().cpu().numpy())
