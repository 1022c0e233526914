"""The checkpoint format: exact round trips, clear errors, identical bytes for identical runs."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_torch


def make(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    return net, torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    loss = net(torch.randn(2, 3, 8, 8)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_round_trip_restores_weights_optimiser_and_rng(tmp_path: Path) -> None:
    net, opt = make()
    for _ in range(3):
        train_step(net, opt)
    path = save_checkpoint(
        tmp_path / "step_00000003.pt", config={"ngf": 4}, modules={"g": net}, optimizers={"g": opt}, step=3
    )
    assert path.name == "step_00000003.pt" and (tmp_path / "config.json").is_file()
    expected_next = torch.randn(5)  # what the RNG gives right after the save

    other, other_opt = make(seed=1)
    payload = load_checkpoint(path, modules={"g": other}, config={"ngf": 4}, optimizers={"g": other_opt})
    assert payload["step"] == 3
    assert torch.equal(torch.randn(5), expected_next)
    for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # continuing both gives identical weights: the optimiser moments came back too
    torch.manual_seed(7)
    train_step(net, opt)
    torch.manual_seed(7)
    train_step(other, other_opt)
    for a, b in zip(net.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_clear_errors(tmp_path: Path) -> None:
    net, _ = make()
    path = save_checkpoint(tmp_path / "step_00000001.pt", config={"ngf": 4, "n_blocks": 2}, modules={"g": net})
    with pytest.raises(CheckpointError, match="n_blocks: checkpoint has 2, this run has 3"):
        load_checkpoint(path, modules={"g": net}, config={"ngf": 4, "n_blocks": 3})
    with pytest.raises(CheckpointError, match="has no 'd' weights"):
        load_checkpoint(path, modules={"d": net})
    wrong = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    with pytest.raises(CheckpointError, match="g weights do not fit"):
        load_checkpoint(path, modules={"g": wrong})
    corrupt = tmp_path / "step_00000002.pt"
    corrupt.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="step_00000002.pt: cannot read this checkpoint"):
        load_checkpoint(corrupt, modules={"g": net})
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt", modules={"g": net})
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a v2v checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", modules={"g": net})


def test_identical_checkpoints_are_identical_bytes(tmp_path: Path) -> None:
    net, opt = make()
    for name in ("a", "b"):
        torch.manual_seed(0)
        save_checkpoint(tmp_path / name / "model.pt", config={"x": 1}, modules={"g": net}, optimizers={"g": opt})
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_the_bytes_do_not_depend_on_the_process_wide_python_and_numpy_generators(tmp_path: Path) -> None:
    """Other threads of the process (Prefect's and MLflow's clients, Dask) draw from Python's and NumPy's global
    generators whenever they like; training never does, so a checkpoint must not record them (CI saw two identical
    runs write model files of different sizes: a Python random state pickles to a state-dependent length)."""
    net, opt = make()
    for name, seed in (("a", 1), ("b", 12345)):
        random.seed(seed)
        np.random.seed(seed)
        for _ in range(seed % 7):
            random.random()
        torch.manual_seed(0)
        save_checkpoint(tmp_path / name / "model.pt", config={"x": 1}, modules={"g": net}, optimizers={"g": opt})
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_any_torch_file_is_the_same_bytes_whatever_its_name(tmp_path: Path) -> None:
    """torch.save names its archive after the file; written through a buffer, the name never reaches the bytes."""
    payload = {"state_dict": make()[0].state_dict(), "summary": {"steps": 3}}
    write_torch(tmp_path / "a" / "model.pt", payload)
    write_torch(tmp_path / "b" / "segmenter.pt", payload)
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "segmenter.pt").read_bytes()
