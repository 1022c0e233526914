"""Weights policy of every learned network we do not train (maps, evaluation): ``default`` | ``none`` | a local state-dict path.

* ``default``: the torchvision weights enum's ``DEFAULT`` entry, downloaded by torchvision when
  online, or read from ``$TORCH_HOME/hub/checkpoints/<file name of the weight URL>`` when the file
  is already there. Offline without the file → :class:`WeightsError` saying where to put it.
* ``none``: random initialisation (tests and benchmarks only); recorded as such.
* a path: a ``state_dict`` loaded with ``torch.load(..., weights_only=True)``; a state dict of
  another architecture → :class:`WeightsError` naming the file and the mismatched keys.

No silent fallback: whatever happens is recorded in the returned :class:`WeightsInfo`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch loads where a model is built or run, so a stage that skips never loads it
    import torch

from v2v.io.files import file_sha256

DeviceName = Literal["auto", "cpu", "cuda"]


class WeightsError(RuntimeError):
    """Requested weights could not be loaded; the message says which file to place where or which key to set."""


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a backend used (logged to MLflow and written to the output ``meta.json``)."""

    model: str  # builder name, e.g. "maskrcnn_resnet50_fpn_v2"
    weights: str  # "default", "none" or the path as configured
    name: str  # enum entry ("MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1"), "random-init" or the file name
    sha256: str | None  # hash of the weights file (None for random init)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checkpoint_file(url: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def build_torchvision_detector(
    builder_name: str,  # a torchvision.models.detection builder, e.g. "keypointrcnn_resnet50_fpn"
    weights: str,  # "default" | "none" | path to a state dict
    key: str,  # the params key that chose `weights` (named in errors), e.g. "segment.weights"
    *,
    min_size: int = 800,  # the shorter side is resized to this before inference
    **kwargs: Any,  # forwarded to the builder (box_score_thresh, box_detections_per_img, ...)
) -> tuple[torch.nn.Module, WeightsInfo]:
    """Build a torchvision detection model in eval mode with the weights the policy asks for. The longer side's
    cap grows with ``min_size`` (torchvision's 1333 at 800, at least twice it), so 2:1 frames keep ``min_size``."""
    from torchvision.models import detection

    max_size = max(min_size * 2, 1333 * min_size // 800)
    return build_torchvision_model(
        detection, builder_name, weights, key, weights_backbone=None, min_size=min_size, max_size=max_size, **kwargs
    )


def build_torchvision_model(
    namespace: Any,  # the torchvision module holding the builder: torchvision.models, .detection, .video
    builder_name: str,  # e.g. "inception_v3", "s3d", "keypointrcnn_resnet50_fpn"
    weights: str,  # "default" | "none" | path to a state dict
    key: str,  # the params key that chose `weights` (named in errors), e.g. "evaluate.image_weights"
    **kwargs: Any,  # forwarded to the builder
) -> tuple[torch.nn.Module, WeightsInfo]:
    """Build a torchvision model in eval mode with the weights the policy asks for."""
    from torchvision.models import get_model_weights

    builder = getattr(namespace, builder_name, None)
    if builder is None:
        raise WeightsError(f"{key}: {namespace.__name__} has no model {builder_name!r}")
    enum = get_model_weights(builder)
    if weights == "none":
        model = builder(weights=None, **kwargs)
        info = WeightsInfo(builder_name, weights, "random-init", None)
    elif weights == "default":
        entry = enum.DEFAULT
        target = _checkpoint_file(entry.url)
        try:
            model = builder(weights=entry, progress=False, **kwargs)
        except Exception as exc:  # URLError, OSError, HTTP errors: anything that stops the download
            raise WeightsError(
                f"{key}: default: cannot load {entry} ({type(exc).__name__}: {exc}). Offline? Download "
                f"{entry.url} on a machine with internet and put it at {target} (or set TORCH_HOME), "
                f"or set {key} to a local state-dict path"
            ) from exc
        info = WeightsInfo(builder_name, weights, str(entry), file_sha256(target) if target.is_file() else None)
    else:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"{key}: {path}: weights file not found; set {key} to default, none or an existing file")
        # keep the class list the weights enum documents (the default categories), without loading weights
        num = kwargs.pop("num_classes", len(enum.DEFAULT.meta["categories"]))
        model = builder(weights=None, num_classes=num, **kwargs)
        try:
            model.load_state_dict(load_state_dict(path, key, builder_name, model), strict=True)
        except RuntimeError as exc:  # same keys, other shapes
            first = "; ".join(str(exc).splitlines()[:3])[:600]
            raise WeightsError(f"{key}: {path}: this state dict does not fit {builder_name}: {first}") from exc
        info = WeightsInfo(builder_name, weights, path.name, file_sha256(path))
    model.eval()
    return model, info


def load_state_dict(path: Path, key: str, what: str, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """A state dict from ``path`` (``weights_only=True``), checked against ``model`` when given."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{key}: {path}: not a loadable state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # checkpoints that wrap the state dict
    if not isinstance(state, dict):
        raise WeightsError(f"{key}: {path}: expected a state dict (a mapping of tensors), got {type(state).__name__}")
    if model is not None:
        expected = set(model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise WeightsError(
                f"{key}: {path}: this state dict does not fit {what} (wrong architecture?): "
                f"missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
    return state
