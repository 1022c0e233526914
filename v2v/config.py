"""Typed configuration: ``params.yaml`` → frozen dataclasses, validated with errors that name the key.

``params.yaml`` is the single source of truth for every knob: one top-level key per stage (plus
``tracking``). Each field carries a one-line help text (``v2v params`` prints them) and, where a
value has a valid range, a check. An unknown key, a wrong type or an out-of-range value raises
:class:`ConfigError` whose message names the file and the dotted key, e.g.
``params.yaml: extract.fps: expected a positive number, got -3``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Check = Callable[[Any], str | None]  # returns an error text ("expected ..."), or None when the value is fine


class ConfigError(ValueError):
    """A bad ``params.yaml``: the message names the file, the key and what to do."""


def positive(value: Any) -> str | None:
    return None if value > 0 else f"expected a positive number, got {value!r}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"expected a number >= 0, got {value!r}"


def in_range(lo: float, hi: float) -> Check:
    def check(value: Any) -> str | None:
        return None if lo <= value <= hi else f"expected a number in [{lo}, {hi}], got {value!r}"

    return check


def even_positive(value: Any) -> str | None:
    return None if value > 0 and value % 2 == 0 else f"expected a positive even number, got {value!r}"


def non_empty(value: Any) -> str | None:
    return None if len(value) > 0 else "expected a non-empty value"


def param(default: Any, help: str, check: Check | None = None) -> Any:
    """A config field with a help text and an optional value check."""
    if isinstance(default, list | dict):
        raise TypeError("use a tuple for sequence defaults: config objects are frozen")
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class SampleConfig:
    """The embedded synthetic sample: seeded clips written as real encoded videos, with ground truth."""

    seed: int = param(0, "random seed; the same seed gives the same clips")
    width: int = param(256, "frame width in pixels", even_positive)
    height: int = param(128, "frame height in pixels", even_positive)
    fps: float = param(15.0, "frame rate of the written videos", positive)
    num_frames: int = param(40, "frames per clip", in_range(2, 100_000))
    scenes: tuple[Literal["street", "pose"], ...] = param(
        ("street", "pose"),
        "kinds of clip: 'street' (labels + instances) and 'pose' (articulated figure)",
        non_empty,
    )
    train_clips_per_scene: int = param(2, "training clips of each scene kind", in_range(1, 1000))
    test_clips_per_scene: int = param(1, "held-out clips of each scene kind", in_range(0, 1000))
    codec: Literal["h264", "mp4v", "mjpg"] = param("h264", "video codec of the written clips")
    crf: int = param(18, "H.264 constant rate factor (0 = lossless, 18 = visually lossless)", in_range(0, 51))


@dataclass(frozen=True)
class ExtractConfig:
    """Decode every video of ``input_dir`` into frames + ``meta.json``."""

    input_dir: str = param(
        "data/sample/videos",
        "folder of input videos; optional train/ and test/ subfolders fix the split",
        non_empty,
    )
    fps: float | None = param(None, "target frame rate (null keeps the source rate)", positive)
    width: int | None = param(256, "output width (null: source width rounded down to size_multiple)", positive)
    height: int | None = param(128, "output height (null: source height rounded down to size_multiple)", positive)
    resize: Literal["crop", "stretch"] = param(
        "crop", "'crop': scale to cover then centre-crop (keeps aspect); 'stretch': scale to size"
    )
    size_multiple: int = param(32, "width and height must be multiples of this (the generator's strides)", positive)
    frame_format: Literal["jpg", "png"] = param("jpg", "frame file format: 'jpg' (fast, lossy) or 'png' (lossless)")
    jpeg_quality: int = param(95, "JPEG quality", in_range(1, 100))
    png_compression: int = param(1, "PNG zlib level (0 = none, 9 = smallest, slowest)", in_range(0, 9))
    decoder: Literal["auto", "opencv", "pyav"] = param(
        "auto", "'auto' tries OpenCV, then PyAV (which also reads AV1); the choice is recorded in meta.json"
    )
    max_frames: int | None = param(None, "keep at most this many output frames per video (null: all)", positive)
    test_fraction: float = param(
        0.2,
        "share of loose videos (not in train/ or test/) held out, by a stable hash of the name",
        in_range(0, 1),
    )
    on_error: Literal["fail", "skip"] = param(
        "fail",
        "a video that cannot be read: 'fail' the stage (after the others), or 'skip' it and record why",
    )
    writer_threads: int = param(2, "threads encoding frame files while the next frames decode", in_range(1, 64))


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking (the store is ``MLFLOW_TRACKING_URI``, or an embedded SQLite store in the project)."""

    enabled: bool = param(True, "log params, metrics and artifacts of every stage to MLflow")
    experiment: str = param("v2v", "MLflow experiment name", non_empty)
    contact_sheet_frames: int = param(8, "frames per video in the logged contact sheet", in_range(1, 64))


@dataclass(frozen=True)
class Config:
    """Everything in ``params.yaml``."""

    sample: SampleConfig = field(default_factory=SampleConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str, errors: list[str]) -> Any:
    """Convert one YAML value to ``tp``; on failure append an error naming ``key``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            errors.append(f"{key}: expected a mapping of settings, got {value!r}")
            return None
        return _build(tp, value, key + ".", errors)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(value, inner[0], key, errors)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        errors.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return None
    if origin is tuple:
        if isinstance(value, list | tuple):
            item_type = typing.get_args(tp)[0]
            return tuple(_convert(v, item_type, f"{key}[{i}]", errors) for i, v in enumerate(value))
        errors.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return None
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp)
    if ok is None:
        raise TypeError(f"unsupported config type {tp!r} at {key}")
    if not ok:
        errors.append(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return None
    return float(value) if tp is float else value


def _build(cls: Any, data: Mapping[str, Any], prefix: str, errors: list[str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            errors.append(f"{prefix}{key}: unknown key{hint}; known keys: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        n_errors = len(errors)
        value = _convert(data[name], hints[name], prefix + name, errors)
        check = f.metadata.get("check")
        if len(errors) == n_errors and check is not None and value is not None:
            # check the value as written (so "-3" is reported as -3, not -3.0)
            raw = data[name]
            items = raw if isinstance(value, tuple) and check is not non_empty else (raw,)
            for item in items:
                problem = check(item)
                if problem:
                    errors.append(f"{prefix}{name}: {problem}")
                    break
        kwargs[name] = value
    if len(errors):
        return None
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any] | None, source: str = "params.yaml") -> Config:
    """Validate a params mapping and build the frozen :class:`Config` (every error at once)."""
    errors: list[str] = []
    cfg = _build(Config, data or {}, "", errors)
    for problem in _cross_checks(cfg) if cfg is not None else ():
        errors.append(problem)
    if errors:
        lines = "\n".join(f"  {source}: {e}" for e in errors)
        raise ConfigError(f"invalid configuration ({len(errors)} problem(s)); fix these keys:\n{lines}")
    return cfg


def _cross_checks(cfg: Config) -> list[str]:
    problems = []
    ex = cfg.extract
    for name in ("width", "height"):
        value = getattr(ex, name)
        if value is not None and value % ex.size_multiple:
            problems.append(
                f"extract.{name}: expected a multiple of extract.size_multiple ({ex.size_multiple}), got {value}"
            )
    return problems


def load_config(path: str | Path = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Config:
    """Load and validate ``params.yaml``.

    ``overrides`` maps dotted keys to values (``{"extract.fps": 10}``) and wins over the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found; run from the project folder or pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage sections at the top level, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_dict(data, source=str(path))


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (tuples become lists) for YAML/JSON/MLflow."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def describe(cls: Any = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every field, for ``v2v params``."""
    rows: list[tuple[str, Any, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(describe(hints[f.name], f"{prefix}{f.name}."))
        else:
            rows.append((prefix + f.name, to_dict(f.default), f.metadata.get("help", "")))
    return rows
