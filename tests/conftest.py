"""Shared fixtures: tiny seeded videos, tiny configs, an isolated MLflow store and Prefect home."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support import suite_config

from v2v.config import Config
from v2v.io.video import write_video

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

REPO = Path(__file__).resolve().parents[1]

# The test tiers (README, "Tests"): `make test-fast` runs what is not e2e, slow or gpu; `make test` adds e2e.
# A test is e2e when it runs a DVC project (`dvc` subprocesses), a Prefect server or harness, or a whole
# stage chain. Most are found by the fixtures they use; the few that are not are listed by name below.
E2E_FIXTURES = {
    "dvc": "runs `dvc` subprocesses",
    "dvc_project": "a throwaway git + DVC copy of this project, usually for `dvc repro`",
    "fresh_dvc_project": "the same, several per test",
    "module_dvc_project": "the same, shared by a module (tests/pipelines/test_retrain.py)",
    "prefect_harness": "a Prefect test server and database (tests/pipelines/conftest.py)",
    "prefect_server": "`prefect server start` (tests/pipelines/test_schedule.py)",
    "evaluated": "every stage from sample to evaluate (tests/stages/test_evaluate_stage.py)",
    "cluster": "a running Dask cluster the map stages run on (tests/stages/test_executors.py)",
}
E2E_TESTS = {
    "tests/test_dvc_yaml.py::test_stage_code_deps_cover_every_imported_module": "one fresh interpreter per stage",
    "tests/stages/test_train_launch.py::test_two_processes_from_params_train_and_write_the_model": "torchrun, 2 ranks",
    "tests/stages/test_train_launch.py::test_the_baseline_trains_its_scales_in_one_process_group": "torchrun, 2 ranks",
    "tests/stages/test_train_generate_stages.py::test_generation_on_a_dask_cluster_writes_the_same_bytes": "a cluster",
}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test`: one worker per core) each worker takes its share of the cores before any
    test module imports torch, so the workers' thread pools do not oversubscribe the machine; the stages the tests
    run as subprocesses inherit it."""
    workers = getattr(config, "workerinput", {}).get("workercount", 0)
    if workers:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(max(1, (os.cpu_count() or 1) // workers)))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the e2e tier: the tests using a fixture of ``E2E_FIXTURES`` and those named in ``E2E_TESTS``."""
    collected = {item.nodeid.split("[")[0] for item in items}
    modules = {name.split("::")[0] for name in collected}
    renamed = sorted(name for name in E2E_TESTS if name.split("::")[0] in modules and name not in collected)
    if renamed:
        raise pytest.UsageError(f"tests/conftest.py E2E_TESTS names tests that do not exist: {renamed}")
    for item in items:
        if E2E_FIXTURES.keys() & set(getattr(item, "fixturenames", ())) or item.nodeid.split("[")[0] in E2E_TESTS:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def isolated_services(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One MLflow SQLite store and one Prefect home for the whole session, outside the repo."""
    base = tmp_path_factory.mktemp("services")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{base / 'mlflow.db'}"
    os.environ["PREFECT_HOME"] = str(base / "prefect")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.pop("V2V_PARENT_RUN_ID", None)
    os.environ.pop("V2V_PIPELINE_KEY", None)


def moving_frames(num_frames: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """A smooth random texture panning right by 2 px/frame: easy to encode, easy to check."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height // 8 + 2, (width + 2 * num_frames) // 8 + 2, 3)).astype(np.float32)
    big = cv2.resize(base, (base.shape[1] * 8, base.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(big[:height, 2 * t : 2 * t + width]) for t in range(num_frames)]


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, num_frames=12, width=96, height=64, fps=15, codec="h264")`` → path."""

    def make(
        path: Path,
        num_frames: int = 12,
        width: int = 96,
        height: int = 64,
        fps: float = 15.0,
        codec: str = "h264",
        seed: int = 0,
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, moving_frames(num_frames, width, height, seed), fps=fps, codec=codec)  # type: ignore[arg-type]
        return path

    return make


def _tiny_config(**sections: dict[str, Any]) -> Config:
    data: dict[str, dict[str, Any]] = {
        "sample": {"width": 64, "height": 32, "num_frames": 6, "train_clips_per_scene": 1, "test_clips_per_scene": 1},
        "extract": {"width": 64, "height": 32, "writer_threads": 2},
        "tracking": {"experiment": "tests"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return suite_config(data)


@pytest.fixture
def tiny_config() -> Callable[..., Config]:
    """``tiny_config(extract={"fps": 5})`` → a small, fast :class:`Config` with those keys overridden."""
    return _tiny_config


@pytest.fixture
def frames_factory() -> Callable[..., list[np.ndarray]]:
    """``frames_factory(num_frames, width, height, seed=0)`` → RGB uint8 frames panning 2 px/frame."""
    return moving_frames


TINY_PARAMS = {
    "sample": {
        "width": 64,
        "height": 32,
        "num_frames": 6,
        "train_clips_per_scene": 1,
        "test_clips_per_scene": 1,
    },
    "extract": {"width": 64, "height": 32},
    "model": {"preset": "tiny"},
    "train": {"num_scales": 2, "log_every": 1, "sample_every": 2, "checkpoint_every": 2},
    "train_scale0": {"epochs": 1, "decay_epochs": 0, "samples_per_video": 1, "start_frames": 4, "max_frames": 4},
    "train_scale1": {"epochs": 1, "decay_epochs": 0, "samples_per_video": 1, "start_frames": 4, "max_frames": 4},
    "segmenter": {"steps": 20, "batch_size": 4},
    "evaluate": {"video_backbones": ["r2plus1d_18"], "clip_frames": 8},
    "tracking": {"system_metrics_seconds": 0.5},  # a few samples within the tiny training runs
}


@pytest.fixture
def dvc_project(tmp_path: Path) -> Path:
    """A throwaway copy of this project (code, dvc.yaml, tiny params) as its own git + DVC repo."""
    return make_dvc_project(tmp_path / "proj", experiment=f"e2e-{tmp_path.name}")


@pytest.fixture
def fresh_dvc_project(tmp_path: Path) -> Callable[[str], Path]:
    """``fresh_dvc_project("name")`` → one more such copy, at ``tmp_path / name`` (several per test)."""
    return lambda name: make_dvc_project(tmp_path / name, experiment=f"e2e-{tmp_path.name}")


@pytest.fixture(scope="module")
def module_dvc_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``dvc_project``, but one project shared by the tests of a module (they run in file order on it)."""
    base = tmp_path_factory.mktemp("module")
    return make_dvc_project(base / "proj", experiment=f"e2e-{base.name}")


def make_dvc_project(root: Path, experiment: str) -> Path:
    """Copy this project's code and dvc.yaml to ``root`` with tiny params, as its own git + DVC repo."""
    import shutil
    import subprocess

    import yaml

    shutil.copytree(REPO / "v2v", root / "v2v", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    params["tracking"]["experiment"] = experiment
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for command in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "init"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return root


def run_dvc(root: Path, *args: str) -> str:
    """Run ``dvc ARGS`` in ``root`` with this interpreter first on PATH; returns its output."""
    import subprocess

    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{output[-4000:]}"
    return output


@pytest.fixture
def dvc() -> Callable[..., str]:
    """``dvc(root, "repro")`` → output; fails the test with the output when DVC fails."""
    return run_dvc
