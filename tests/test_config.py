from pathlib import Path

import pytest

from v2v.config import Config, ConfigError, config_from_dict, describe, load_config, to_dict

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_file_is_valid_and_frozen() -> None:
    cfg = load_config(REPO / "params.yaml")
    assert isinstance(cfg, Config)
    with pytest.raises(AttributeError):
        cfg.extract.fps = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"extract": {"fps": -3}}, "extract.fps: expected a positive number, got -3"),
        ({"extract": {"fsp": 3}}, "extract.fsp: unknown key (did you mean 'extract.fps'?)"),
        ({"extrct": {}}, "extrct: unknown key (did you mean 'extract'?)"),
        ({"extract": {"width": 100}}, "extract.width: expected a multiple of extract.size_multiple (32), got 100"),
        ({"extract": {"frame_format": "gif"}}, "extract.frame_format: expected one of 'jpg', 'png', got 'gif'"),
        ({"sample": {"num_frames": "40"}}, "sample.num_frames: expected an integer, got '40'"),
        ({"sample": {"num_frames": 1}}, "sample.num_frames: expected a number in [2, 100000], got 1"),
        ({"sample": {"width": 255}}, "sample.width: expected a positive even number, got 255"),
        ({"sample": {"scenes": ["street", "cars"]}}, "sample.scenes[1]: expected one of 'street', 'pose', got 'cars'"),
        ({"sample": {"real_clips": ["bikes"]}}, "sample.real_clips[0]: expected one of 'carphone', got 'bikes'"),
        ({"tracking": {"enabled": "yes"}}, "tracking.enabled: expected true or false, got 'yes'"),
        ({"tracking": 3}, "tracking: expected a mapping of settings, got 3"),
        ({"sample": {"seed": True}}, "sample.seed: expected an integer, got True"),
        ({"train": {"ema_decay": 1.0}}, "train.ema_decay: expected a number in [0, 1), got 1.0"),
        ({"train": {"n_frames_backprop": 0}}, "train.n_frames_backprop: expected a number in [1, 10000], got 0"),
        ({"model": {"feature_channels": -1}}, "model.feature_channels: expected a number >= 0, got -1"),
        ({"generate": {"seeds": [2, -1]}}, "generate.seeds: expected a number >= 0, got -1"),
        ({"generate": {"seeds": [1, 1]}}, "generate.seeds: expected distinct seeds, got [1, 1]"),
    ],
)
def test_bad_values_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert message in str(info.value)


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"extract": {"fps": 0, "jpeg_quality": 101}, "sample": {"typo": 1}})
    text = str(info.value)
    assert "3 problem(s)" in text
    for key in ("extract.fps", "extract.jpeg_quality", "sample.typo"):
        assert key in text


def test_null_and_int_for_float(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("extract:\n  fps: null\n  width: null\nsample:\n  fps: 30\n")
    cfg = load_config(path)
    assert cfg.extract.fps is None and cfg.extract.width is None
    assert cfg.sample.fps == 30.0 and isinstance(cfg.sample.fps, float)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: params file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("extract: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("extract:\n  fsp: 10\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: extract.fsp: unknown key"):
        load_config(typo)


def test_overrides_win_and_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("extract:\n  fps: 10\n")
    assert load_config(path, {"extract.fps": 5}).extract.fps == 5.0
    with pytest.raises(ConfigError, match="extract.fps"):
        load_config(path, {"extract.fps": -1})


def test_every_field_has_help_and_round_trips() -> None:
    rows = describe()
    assert rows and all(text for _, _, text in rows)
    cfg = config_from_dict({"sample": {"scenes": ["pose"]}, "extract": {"fps": 12.5}})
    assert config_from_dict(to_dict(cfg)) == cfg


def test_an_empty_file_and_a_duplicated_key_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "params.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"params.yaml: empty; it must hold the params sections \(sample, extract"):
        load_config(empty)
    twice = tmp_path / "twice.yaml"
    twice.write_text("extract:\n  fps: 10\n  width: 256\n  fps: 12\n")
    with pytest.raises(
        ConfigError, match=r"(?s)twice.yaml: not valid YAML: .*key 'fps' is given twice \(lines 2 and 4\)"
    ):
        load_config(twice)


def test_the_defaults_are_the_shipped_params_file() -> None:
    """One source of defaults: what the dataclasses say and what params.yaml runs are the same values."""
    assert load_config(REPO / "params.yaml") == Config()
    listed = {key: default for key, default, _ in describe()}
    assert listed["train_scale1.epochs"] == Config().train_scale1.epochs != Config().train_scale0.epochs


def test_a_partial_section_keeps_that_sections_defaults() -> None:
    cfg = config_from_dict({"train_scale1": {"epochs": 6}})
    assert cfg.train_scale1.epochs == 6
    assert cfg.train_scale1.freeze_coarse_epochs == Config().train_scale1.freeze_coarse_epochs == 1
