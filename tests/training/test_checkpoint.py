from pathlib import Path

import pytest
import torch

from v2v.training.checkpoint import (
    CheckpointError,
    discard_if_inputs_changed,
    drop_damaged_checkpoints,
    inputs_fingerprint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    step_path,
)


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
    path = save_checkpoint(step_path(tmp_path, 3), config={"ngf": 4}, modules={"g": net}, optimizers={"g": opt}, step=3)
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


def test_latest_checkpoint(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    net, _ = make()
    for step in (5, 40, 12):
        save_checkpoint(step_path(tmp_path, step), config={}, modules={"g": net}, step=step)
    assert latest_checkpoint(tmp_path) == step_path(tmp_path, 40)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    net, _ = make()
    for step in (10, 20, 30):
        save_checkpoint(step_path(tmp_path, step), config={}, modules={"g": net}, step=step)
    good = step_path(tmp_path, 20).read_bytes()
    step_path(tmp_path, 30).write_bytes(good[: len(good) // 2])  # killed mid-write or a bad disk
    (tmp_path / ".tmp-step_00000040.pt").write_bytes(b"")  # a kill's 0-byte leftover
    removed = drop_damaged_checkpoints(tmp_path)
    assert {p.name for p in removed} == {"step_00000030.pt", ".tmp-step_00000040.pt"}
    assert latest_checkpoint(tmp_path) == step_path(tmp_path, 20)
    assert load_checkpoint(step_path(tmp_path, 20), modules={"g": make(1)[0]})["step"] == 20


def test_identical_checkpoints_are_identical_bytes(tmp_path: Path) -> None:
    net, opt = make()
    for name in ("a", "b"):
        torch.manual_seed(0)
        save_checkpoint(tmp_path / name / "model.pt", config={"x": 1}, modules={"g": net}, optimizers={"g": opt})
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_inputs_fingerprint_follows_files_not_caches(tmp_path: Path) -> None:
    data, model = tmp_path / "data", tmp_path / "model.pt"
    (data / "clip" / "__pycache__").mkdir(parents=True)
    (data / "clip" / "000000.png").write_bytes(b"frame")
    model.write_bytes(b"weights")
    first = inputs_fingerprint([data, model])
    assert inputs_fingerprint([data, model]) == first  # stable
    (data / "clip" / "__pycache__" / "x.pyc").write_bytes(b"cache")  # caches and staging folders do not count
    (data / ".tmp-clip-1").mkdir()
    (data / ".tmp-clip-1" / "half.png").write_bytes(b"half")
    assert inputs_fingerprint([data, model]) == first
    (data / "clip" / "000001.png").write_bytes(b"frame")  # a new file
    second = inputs_fingerprint([data, model])
    assert second != first
    model.write_bytes(b"other weights")  # a rewritten file
    assert inputs_fingerprint([data, model]) != second
    assert inputs_fingerprint([tmp_path / "missing"]) != inputs_fingerprint([tmp_path / "other"])


def test_checkpoints_of_other_inputs_are_discarded(tmp_path: Path) -> None:
    net, _ = make()
    work = tmp_path / "work"
    assert not discard_if_inputs_changed(work, "inputs-1")  # nothing there yet
    for step in (1, 2):
        save_checkpoint(step_path(work, step), config={"a": 1}, modules={"net": net}, step=step)
    assert not discard_if_inputs_changed(work, "inputs-1")  # same inputs: kept for resuming
    assert latest_checkpoint(work) == step_path(work, 2)
    assert discard_if_inputs_changed(work, "inputs-2")  # other inputs: gone
    assert latest_checkpoint(work) is None
    assert (work / "config.json").is_file()  # only the step files go
    save_checkpoint(step_path(work, 3), config={"a": 1}, modules={"net": net}, step=3)
    (work / "inputs.txt").unlink()  # written before the inputs were recorded: not trusted
    assert discard_if_inputs_changed(work, "inputs-2")
    assert latest_checkpoint(work) is None
