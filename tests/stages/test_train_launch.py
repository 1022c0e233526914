"""A training stage relaunches itself under torch.distributed.run when params ask for several processes, so
``dvc repro`` trains with DDP; its lock is held once; a global batch that does not split is refused up front."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from support import small_config

from v2v.config import ConfigError, params_file
from v2v.paths import ProjectPaths
from v2v.stages import flow, segment
from v2v.training.distributed import LOCK_HELD_ENV, launch_command, takes_stage_lock
from v2v.training.loop import MODEL_FILE, per_process_batch, sync_batch_norm

SAMPLE = {"width": 64, "height": 32, "num_frames": 6, "scenes": ["street"]}
SAMPLE.update({"train_clips_per_scene": 2, "test_clips_per_scene": 0})
REPO = Path(__file__).resolve().parents[2]


def config(**train: Any) -> Any:
    return small_config(
        SAMPLE,
        model={"preset": "tiny", "norm": "instance", "feature_channels": 0},
        train={"num_scales": 1, "device": "cpu", "loss_vgg": 0.0, "batch_size": 2, **train},
        train_scale0={"epochs": 1, "decay_epochs": 0, "samples_per_video": 1, "start_frames": 4, "max_frames": 4},
    )


def stage(root: Path, *args: str, name: str = "train_scale0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", f"v2v.stages.{name}", "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_two_processes_from_params_train_and_write_the_model(base_project: Path, tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    shutil.copytree(base_project, paths.root)
    cfg = config(nproc_per_node=2)
    segment.run(cfg, paths)
    flow.run(cfg, paths)
    paths.params.write_text(params_file(cfg, "test"))
    result = stage(paths.root)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "torch.distributed.run --nproc_per_node 2 --standalone -m v2v.stages.train_scale0" in result.stderr
    model = torch.load(paths.model_dir(0) / MODEL_FILE, weights_only=True)
    assert model["config"]["world_size"] == 2  # trained by two ranks: the global batch of 2, one clip each
    assert json.loads(paths.train_metrics(0).read_text())["steps"] == 1  # 2 clips, a global batch of 2
    assert (paths.locks / "train_scale0.lock").read_text() == ""  # released by the launching process

    odd = yaml.safe_load(paths.params.read_text())
    odd["train"]["batch_size"] = 3
    (paths.root / "odd.yaml").write_text(yaml.safe_dump(odd))
    refused = stage(paths.root, "--params", str(paths.root / "odd.yaml"))
    assert refused.returncode == 1 and "train.batch_size" in refused.stderr and "2 processes" in refused.stderr


def test_the_baseline_trains_its_scales_in_one_process_group(base_project: Path, tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    shutil.copytree(base_project, paths.root)
    one_step = {"epochs": 1, "decay_epochs": 0, "samples_per_video": 1, "start_frames": 4, "max_frames": 4}
    cfg = small_config(
        SAMPLE,
        model={"preset": "tiny", "norm": "instance", "feature_channels": 0},
        train={"num_scales": 2, "device": "cpu", "loss_vgg": 0.0, "batch_size": 2, "nproc_per_node": 2},
        train_scale0=one_step,
        train_scale1=one_step,
    )
    segment.run(cfg, paths)
    flow.run(cfg, paths)
    paths.params.write_text(params_file(cfg, "test"))
    result = stage(paths.root, name="train_baseline")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "--nproc_per_node 2 --standalone -m v2v.stages.train_baseline" in result.stderr
    model = torch.load(paths.baseline_dir / MODEL_FILE, weights_only=True)
    assert model["config"]["world_size"] == 2 and model["config"]["scale"] == 1  # scale 1 grew from scale 0's
    assert json.loads(paths.baseline_metrics.read_text())["steps"] == 2  # one global batch of 2 per scale
    assert (paths.locks / "train_baseline.lock").read_text() == ""


def test_the_launch_command_follows_the_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert launch_command(config().train, "train_scale0", []) is None  # one process: no launcher
    two = launch_command(config(nproc_per_node=2).train, "train_scale1", ["--root", "p"])
    assert two is not None and two[1:] == [
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m", "v2v.stages.train_scale1",
        "--root", "p",
    ]  # fmt: skip
    multi = config(nproc_per_node=2, nnodes=2, rdzv_endpoint="10.0.0.1:29400", batch_size=4)
    nodes = launch_command(multi.train, "train_scale0", [])
    assert nodes is not None and "--rdzv_endpoint" in nodes and nodes[nodes.index("--nnodes") + 1] == "2"
    monkeypatch.setenv("LOCAL_RANK", "0")  # already a rank (torchrun by hand, or the relaunched stage)
    assert launch_command(config(nproc_per_node=2).train, "train_scale0", []) is None


def test_only_one_process_holds_the_stage_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", LOCK_HELD_ENV):
        monkeypatch.delenv(var, raising=False)
    assert takes_stage_lock("train_scale0")
    monkeypatch.setenv("RANK", "1")
    assert not takes_stage_lock("train_scale0")  # torchrun by hand: rank 0 holds it
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv(LOCK_HELD_ENV, "train_scale0")
    assert not takes_stage_lock("train_scale0")  # the relaunching process holds it


def test_bad_topologies_are_refused_with_the_key() -> None:
    with pytest.raises(ConfigError, match="train.rdzv_endpoint"):
        config(nnodes=2)
    with pytest.raises(ConfigError, match=r"train.batch_size: the global batch \(2\) must split evenly .* 4 processes"):
        config(nproc_per_node=4)
    assert per_process_batch(8, 4) == 2
    with pytest.raises(ValueError, match="train.batch_size 3"):
        per_process_batch(3, 2)


def test_batch_norm_is_synchronised_on_cuda_only() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    assert not sync_batch_norm([net], torch.device("cpu"))  # SyncBatchNorm refuses CPU tensors: left as it is
    assert isinstance(net[1], torch.nn.BatchNorm2d)
    assert sync_batch_norm([net], torch.device("cuda"))  # converted (the forward pass needs a GPU)
    assert isinstance(net[1], torch.nn.SyncBatchNorm)
    assert not sync_batch_norm([torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))], torch.device("cuda"))
