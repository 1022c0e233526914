"""Two runs of one stage over one project: the second is refused with a message, never half-done; a killed
run's lock never blocks the next."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from v2v.paths import ProjectPaths
from v2v.stages import get_stage
from v2v.stages.common import StageError, stage_lock

REPO = Path(__file__).resolve().parents[2]


def test_a_second_run_of_a_stage_is_refused_while_the_first_works(tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    with stage_lock(paths, "extract"):
        out = subprocess.run(
            [sys.executable, "-m", "v2v.stages.extract", "--root", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        )
        assert out.returncode == 1
        assert f"another extract run (pid {os.getpid()}, started " in out.stderr and "Traceback" not in out.stderr
        with pytest.raises(StageError, match="another extract run"):
            get_stage("extract")(None, paths)  # the in-process driver (v2v run, the Prefect flow) too
        assert not (tmp_path / "data").exists()  # nothing was started
    with stage_lock(paths, "extract"):  # released: free again
        pass


def test_a_killed_run_leaves_no_lock_behind(tmp_path: Path) -> None:
    script = (
        "import os, sys, time; from v2v.paths import ProjectPaths; from v2v.stages.common import stage_lock\n"
        "with stage_lock(ProjectPaths.at(sys.argv[1]), 'flow'):\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(StageError, match="another flow run"), stage_lock(ProjectPaths.at(tmp_path), "flow"):
        pass
    holder.kill()
    holder.wait()
    with stage_lock(ProjectPaths.at(tmp_path), "flow"):  # the system released it with the process
        pass
