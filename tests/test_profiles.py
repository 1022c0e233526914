"""Every params profile in profiles/ is a valid configuration."""

from pathlib import Path

import pytest

from v2v.config import load_config

PROFILES = sorted((Path(__file__).resolve().parents[1] / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_profile_is_valid(profile: Path) -> None:
    cfg = load_config(profile)
    assert cfg.extract.width is not None
    factor = 2 ** (cfg.train.num_scales - 1)
    assert cfg.extract.width // factor >= 64  # the coarsest scale still has room for the generator's strides
