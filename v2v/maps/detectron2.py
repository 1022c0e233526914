"""The optional detectron2 backend's helpers, shared by instance segmentation and pose (:mod:`v2v.maps.segmentation`,
:mod:`v2v.maps.pose`): import it with install advice, build a model from a config + weights, feed it frames.

detectron2 is not on PyPI: nothing here imports it until a detectron2 backend is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # torch loads where a model is built or run, so a stage that skips never loads it
    import torch

from v2v.io.weights import WeightsError, WeightsInfo, file_sha256

DETECTRON2_INSTALL = (
    "detectron2 is not installed (it is not on PyPI). Install it into this environment after torch: "
    "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git' "
    "(builds from source, ~2 min on CPU), then pip install 'setuptools<81' (its model_zoo needs pkg_resources); "
    "or set {key}: torchvision"
)


def import_detectron2(key: str) -> Any:
    """Import detectron2, or raise a :class:`WeightsError` saying how to install it."""
    try:
        import detectron2  # noqa: F401
        from detectron2 import config as d2_config
    except ImportError as exc:
        raise WeightsError(f"{key}.backend: detectron2: " + DETECTRON2_INSTALL.format(key=f"{key}.backend")) from exc
    return d2_config


def load_detectron2(
    config: str | None, weights: str, device: torch.device | None, key: str
) -> tuple[Any, Any, list[str], WeightsInfo]:
    """Build a detectron2 model from a config + weights; returns (model, cfg, thing class names, weights info)."""
    d2_config = import_detectron2(key)
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import MetadataCatalog
    from detectron2.modeling import build_model

    if not config:
        raise WeightsError(f"{key}.detectron2_config: set it to a detectron2 config file or model-zoo config name")
    cfg = d2_config.get_cfg()
    if Path(config).is_file():
        cfg.merge_from_file(config)
    else:
        try:
            from detectron2 import model_zoo

            cfg.merge_from_file(model_zoo.get_config_file(config))
        except Exception as exc:
            raise WeightsError(f"{key}.detectron2_config: {config}: not a file nor a model-zoo config ({exc})") from exc
    cfg.MODEL.DEVICE = str(device or "cpu")
    if weights == "none":
        info = WeightsInfo(config, weights, "random-init", None)
    else:
        from detectron2 import model_zoo

        target = model_zoo.get_checkpoint_url(config) if weights == "default" else weights
        if weights != "default" and not Path(weights).is_file():
            raise WeightsError(f"{key}.weights: {weights}: weights file not found")
        cfg.MODEL.WEIGHTS = target
        info = WeightsInfo(
            config, weights, Path(target).name, file_sha256(Path(target)) if Path(target).is_file() else None
        )
    model = build_model(cfg)
    model.eval()
    if weights != "none":
        try:
            DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        except Exception as exc:
            raise WeightsError(
                f"{key}.weights: cannot load {cfg.MODEL.WEIGHTS} ({type(exc).__name__}: {exc}); download it on a "
                f"machine with internet and set {key}.weights to the local file"
            ) from exc
    names = cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else None
    categories = list(MetadataCatalog.get(names).get("thing_classes", [])) if names else []
    return model, cfg, categories, info


def detectron2_inputs(frames: Sequence[npt.NDArray[np.uint8]], cfg: Any, device: torch.device) -> list[dict[str, Any]]:
    """detectron2's input dicts: images in the config's channel order, resized as its test transform does."""
    import torch
    from detectron2.data import transforms as T

    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    inputs = []
    for rgb in frames:
        image = rgb[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else rgb
        resized = resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized).transpose(2, 0, 1)).to(device)
        inputs.append({"image": tensor, "height": rgb.shape[0], "width": rgb.shape[1]})
    return inputs
