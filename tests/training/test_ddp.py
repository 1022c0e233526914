"""DDP: 2 CPU processes (gloo) under torchrun match one process with the same global batch (train.batch_size)."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from v2v.config import to_dict
from v2v.paths import ProjectPaths
from v2v.training.loop import MODEL_FILE, train_scale

SCRIPT = """
import json, sys
from pathlib import Path
from v2v.config import config_from_dict
from v2v.data.clips import ClipDataset
from v2v.paths import ProjectPaths
from v2v.training.loop import train_scale
cfg = config_from_dict(json.loads(sys.argv[3]))
ds = ClipDataset(paths=ProjectPaths.at(sys.argv[1]), split="train", task="street", clip_length=4,
                 samples_per_video=2, flip=False, seed=0)
train_scale(cfg, 0, ds, Path(sys.argv[2]), Path(sys.argv[2]) / "work", progress=False)
"""


def test_two_processes_match_one(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    # instance norm: batch norm statistics would differ between a batch of 2 and two batches of 1;
    # with the feature encoder E (its gradients are averaged too) and the moving averages
    cfg = train_config(
        model={"norm": "instance", "feature_channels": 3},
        train={"batch_size": 2, "ema_decay": 0.5},
        train_scale0={"epochs": 1},
    )
    train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "one", tmp_path / "one" / "work", progress=False)

    per_process = to_dict(cfg)  # train.batch_size is the global batch: each of the 2 processes takes 1 clip
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*torchrun, str(script), str(street_project.root), str(tmp_path / "two"), json.dumps(per_process)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    one = torch.load(tmp_path / "one" / MODEL_FILE, weights_only=True)
    two = torch.load(tmp_path / "two" / MODEL_FILE, weights_only=True)
    assert one["step"] == two["step"] == 1
    assert set(one["modules"]) == set(two["modules"]) >= {"encoder", "encoder_ema", "generator_ema"}
    lr = cfg.train.lr
    for net, weights in one["modules"].items():
        diff = torch.cat(
            [
                (w.float() - two["modules"][net][k].float()).abs().flatten()
                for k, w in weights.items()
                if w.is_floating_point()
            ]
        )
        # Adam's first step moves every weight by ±lr along sign(gradient): averaged gradients agree
        # up to float rounding, which can only flip the sign of near-zero gradients
        assert float((diff > 1e-6).float().mean()) < 0.02, f"{net}: gradients were not averaged like one batch"
        assert float(diff.max()) <= 2 * lr * 1.01
