"""`v2v ui` serves the project's SQLite store on 127.0.0.1: a client of the server sees what the embedded store holds.

Slow (the server takes 10-30 s to start). With Chromium installed, scripts/mlflow_ui_check.py also renders
the runs page headless and checks that it shows the pipeline runs by name (and writes a screenshot).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from v2v.config import Config
from v2v.mlops.tracking import pipeline_run, stage_run
from v2v.paths import ProjectPaths

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "ui-check"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path, tiny_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two pipeline runs with a stage run each (params, metrics, an artifact) in the project's own SQLite store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the project's embedded store: mlruns/mlflow.db
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tracking": {"experiment": EXPERIMENT}}))
    (tmp_path / "notes.txt").write_text("an artifact")
    paths = ProjectPaths.at(tmp_path)
    for quality in (90, 70):
        time.sleep(1.1)  # pipeline runs are named by the second they start
        cfg = tiny_config(extract={"jpeg_quality": quality}, tracking={"experiment": EXPERIMENT})
        with pipeline_run(cfg, paths, driver="test"), stage_run("extract", cfg, paths, ("extract",)) as run:
            run.log_metrics({"frames": quality / 10})
            run.log_artifact(tmp_path / "notes.txt")
    return tmp_path


@pytest.fixture
def server(project: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "v2v", "ui", "--root", str(project), "--port", str(port), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = (project / "ui.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (project / "ui.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "no MLflow server after 180 s"
                time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C: the UI command and its workers stop
        process.wait(timeout=60)
        log.close()


def snapshot(client: MlflowClient) -> list[tuple]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return [
        (
            r.info.run_id,
            r.info.run_name,
            r.info.status,
            r.data.params,
            r.data.metrics,
            {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.log-model")},
            sorted(a.path for a in client.list_artifacts(r.info.run_id)),
        )
        for r in runs
    ]


def test_server_sees_the_embedded_store(project: Path, server: str) -> None:
    embedded = MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    served = MlflowClient(server)
    expected = snapshot(embedded)
    assert len(expected) == 4 and snapshot(served) == expected
    assert ["notes.txt"] in [row[-1] for row in expected]
    # and what a client writes through the server lands in the same store
    experiment_id = served.get_experiment_by_name(EXPERIMENT).experiment_id
    run = served.create_run(experiment_id, run_name="through the server")
    served.log_metric(run.info.run_id, "x", 1.5)
    assert embedded.get_run(run.info.run_id).data.metrics == {"x": 1.5}

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("no chromium: the runs page was checked through the REST API only")
    names = [row[1] for row in expected if "mlflow.parentRunId" not in row[5]]
    out = project / "pages"
    command = [sys.executable, str(REPO / "scripts/mlflow_ui_check.py"), "--url", server, "--root", str(project)]
    command += ["--out", str(out), "--chromium", chromium, "--model", ""]  # these runs logged no model
    command += [arg for name in names for arg in ("--expect", name)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(names)} expected pipeline run(s) shown" in result.stdout
    assert (out / "runs.png").stat().st_size > 10_000 and (out / "pipeline-run.png").stat().st_size > 10_000
