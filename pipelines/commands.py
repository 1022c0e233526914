"""DVC and stage subprocesses in one place: the environment they run in, their output streamed or captured.

The Prefect flows (:mod:`pipelines.flow`, :mod:`pipelines.fanout`, :mod:`pipelines.retrain`) and the tests run
``dvc`` and the stages through these, with this interpreter's environment first on ``PATH`` (DVC runs each
stage's ``python -m ...`` with it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from v2v.mlops.tracking import PARENT_ENV

OUTPUT_TAIL = 4000  # characters of a failed command's output kept in its error


class DvcError(RuntimeError):
    """A ``dvc`` command failed; the message names it, the folder and the end of its output."""


def stage_env(parent_run_id: str | None = None) -> dict[str, str]:
    """Environment of a stage or DVC subprocess: this interpreter's bin folder first on PATH, the MLflow parent."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    if parent_run_id:
        env[PARENT_ENV] = parent_run_id
    return env


def dvc(root: str | Path, *args: str) -> str:
    """Run ``dvc ARGS`` in ``root``; returns its standard output, or raises :class:`DvcError`."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=stage_env(), capture_output=True, text=True
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise DvcError(f"`dvc {' '.join(args)}` failed in {root} (exit {result.returncode}):\n{output[-OUTPUT_TAIL:]}")
    return result.stdout


def dvc_status(root: str | Path, *targets: str) -> dict[str, Any]:
    """``dvc status --json`` of the pipeline (or of ``targets``): stage → what changed; empty when up to date."""
    lines = [line for line in dvc(root, "status", "--json", *targets).splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def stream(command: list[str], cwd: str | Path, env: dict[str, str], logger: Any) -> tuple[int, str]:
    """Run ``command``, logging its output line by line as it comes (the Prefect UI and the terminal show the
    stage at work); a progress bar's redraws (``\\r``) are logged once, in their last state. Returns the exit
    code and the whole output."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert process.stdout is not None
    lines: list[str] = []
    for raw in process.stdout:
        line = raw.rstrip("\n").split("\r")[-1].rstrip()
        if line:
            lines.append(line)
            logger.info("%s", line)
    return process.wait(), "\n".join(lines)
