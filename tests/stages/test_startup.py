"""A stage with nothing to do finishes before the heavy imports: a map stage the task does not read loads neither
torch nor MLflow and opens no MLflow run (its time: ``benchmarks/startup.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from v2v.paths import ProjectPaths

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from v2v.stages import {stage}
{stage}.main()
print(json.dumps(sorted(m for m in ("torch", "torchvision", "mlflow", "dlib") if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ("stage", "task"), [("pose", "street"), ("face", "street"), ("segment", "pose"), ("edges", "pose")]
)
def test_a_map_stage_the_task_does_not_read_skips_torch_and_mlflow(tmp_path: Path, stage: str, task: str) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["task"] = task
    params["tracking"]["enabled"] = True  # skipping must not depend on tracking being off
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(stage=stage), "--root", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []  # none of the heavy modules was loaded
    paths = ProjectPaths.at(tmp_path)
    folder = {"pose": paths.pose_maps, "face": paths.face_maps, "segment": paths.segment_maps, "edges": paths.edge_maps}
    assert json.loads((folder[stage] / "status.json").read_text())["needed"] is False
    assert not (tmp_path / "mlruns").exists()  # no MLflow run was opened
