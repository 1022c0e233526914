"""Resumable runs: the newest intact step file, damaged ones dropped, checkpoints of other inputs discarded."""

from pathlib import Path

import torch

from v2v.io.checkpoint import load_checkpoint, save_checkpoint
from v2v.training.resume import (
    discard_if_inputs_changed,
    drop_damaged_checkpoints,
    inputs_fingerprint,
    latest_checkpoint,
    step_path,
)


def make(seed: int = 0) -> tuple[torch.nn.Module, None]:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), None


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
