"""RAFT with random weights end to end (shapes, dtypes, padding, storage), and loud weight errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.config import config_from_dict
from v2v.flow.io import read_flow_pair, write_flow_pair
from v2v.flow.raft import RaftFlow, RaftWeightsError, load_raft, pad_to_multiple
from v2v.stages.flow import make_estimator


def test_raft_random_weights_runs_on_sizes_not_multiple_of_8(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 60, 100, 3), dtype=np.uint8)
    raft = RaftFlow(model="small", weights="none", iterations=2)
    assert raft.weights.startswith("none (random init")
    flow = raft(frames[1:], frames[:-1])
    assert flow.shape == (2, 60, 100, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    again = RaftFlow(model="small", weights="none", iterations=2)(frames[1:], frames[:-1])
    np.testing.assert_allclose(flow, again, atol=1e-4)  # seeded random init: reproducible
    valid = np.ones((60, 100), bool)
    write_flow_pair(tmp_path, 1, flow[0], valid)
    stored, stored_valid = read_flow_pair(tmp_path, 1)
    assert stored.shape == (60, 100, 2) and stored.dtype == np.float32 and stored_valid.all()
    assert np.abs(stored - flow[0]).max() < 0.05


def test_padding_replicates_to_multiples_of_8() -> None:
    x = torch.rand(1, 3, 130, 201)
    padded = pad_to_multiple(x)
    assert padded.shape == (1, 3, 136, 208)
    assert torch.equal(padded[..., :130, :201], x) and torch.equal(padded[..., 135, 207], x[..., 129, 200])
    assert pad_to_multiple(torch.rand(1, 3, 32, 64)).shape == (1, 3, 128, 128)  # lifted to the minimum side


def test_local_state_dict_is_loaded_and_recorded(tmp_path: Path) -> None:
    net, _ = load_raft("small", "none")
    path = tmp_path / "raft_small.pth"
    torch.save(net.state_dict(), path)
    loaded, description = load_raft("small", str(path))
    assert str(path) in description and "sha256" in description
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(RaftWeightsError, match="not a raft_large state dict"):
        load_raft("large", str(path))
    with pytest.raises(RaftWeightsError, match="no such file"):
        load_raft("small", str(tmp_path / "missing.pth"))


def test_default_weights_offline_fail_loudly_with_instructions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RaftWeightsError, match=r"hub/checkpoints/raft_small_C_T_V2-01064c6d\.pth"):
        load_raft("small", "default")


def test_factory_builds_the_configured_backend() -> None:
    cfg = config_from_dict({"flow": {"backend": "raft", "raft_weights": "none", "raft_iterations": 3, "device": "cpu"}})
    raft = make_estimator(cfg.flow)
    assert raft.name == "raft" and raft.settings == {"model": "raft_small", "iterations": 3}
    dis = make_estimator(config_from_dict({}).flow)
    assert dis.name == "dis" and dis.settings == {"preset": "medium"}
