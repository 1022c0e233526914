"""Every params profile in profiles/ is a valid overlay of the defaults, and makes a whole params file."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from v2v.cli import app
from v2v.config import Config, load_config, to_dict

PROFILES = sorted((Path(__file__).resolve().parents[1] / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_profile_is_valid(profile: Path) -> None:
    cfg = load_config(profile)
    assert cfg.extract.width is not None
    factor = 2 ** (cfg.train.num_scales - 1)
    assert cfg.extract.width // factor >= 64  # the coarsest scale still has room for the generator's strides


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_a_profile_holds_only_what_it_changes(profile: Path) -> None:
    defaults = to_dict(Config())
    for section, values in yaml.safe_load(profile.read_text()).items():
        for key, value in values.items():
            assert value != defaults[section][key], f"{profile.name}: {section}.{key} repeats the default"


def test_a_profile_makes_a_whole_params_file(tmp_path: Path) -> None:
    out = tmp_path / "params.yaml"
    result = CliRunner().invoke(app, ["params", "--profile", str(PROFILES[0]), "--write", str(out)])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text())
    assert set(written) == set(to_dict(Config()))  # every section and key, as DVC's params need them
    assert all(set(written[s]) == set(v) for s, v in to_dict(Config()).items())
    assert load_config(out) == load_config(PROFILES[0])
    bad = CliRunner().invoke(app, ["params", "--write", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 1 and "--write needs --profile" in bad.output
