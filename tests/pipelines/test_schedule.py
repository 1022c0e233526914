"""The scheduled retraining deployment on a real Prefect server (127.0.0.1, its own SQLite), and clear errors.

The tests that need a server use `prefect server start` on a free port, as a user runs it, rather than the
flow tests' harness; the error-message test needs none.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from pipelines.serve import register
from v2v.cli import app
from v2v.config import load_config

REPO = Path(__file__).resolve().parents[2]
SERVER_STARTUP_S = 180  # 5-11 s on a quiet machine; more when the machine is busy
SCHEDULER_WAIT_S = 90  # the server's scheduler for recently changed deployments runs every few seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start --host 127.0.0.1` on a free port with a temporary PREFECT_HOME; stopped with SIGINT."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    log = (home / "server.log").open("w")
    command = [
        str(Path(sys.executable).parent / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + SERVER_STARTUP_S
        while True:
            assert server.poll() is None, f"prefect server exited:\n{(home / 'server.log').read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no Prefect server after {SERVER_STARTUP_S} s"
            time.sleep(1)
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        server.send_signal(signal.SIGINT)  # what Ctrl-C does; the server shuts down its services cleanly
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.terminate()
            server.wait(timeout=30)
        log.close()
    assert server.returncode is not None


def project(root: Path, cron: str = "*/15 * * * *", timezone: str = "Europe/Berlin") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(
        f"orchestrate:\n  cron: '{cron}'\n  timezone: {timezone}\n  deployment: nightly\ntracking:\n  experiment: x\n"
    )
    return root


def test_scheduled_deployment_is_registered_with_its_cron(tmp_path: Path, prefect_server: str) -> None:
    root = project(tmp_path / "proj")
    deployment_id = register(root, load_config(root / "params.yaml"))
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        assert deployment.name == "nightly" and deployment.entrypoint == "pipelines.retrain.v2v_retrain"
        assert deployment.parameters == {"root": str(root)}
        (schedule,) = deployment.schedules
        assert schedule.active
        assert schedule.schedule.cron == "*/15 * * * *" and schedule.schedule.timezone == "Europe/Berlin"
        assert client.read_flow(deployment.flow_id).name == "v2v-retrain"
        # the server's scheduler turns the schedule into upcoming runs, on the quarter hours of Berlin time
        runs_filter = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
        deadline = time.monotonic() + SCHEDULER_WAIT_S
        while not (upcoming := client.read_flow_runs(flow_run_filter=runs_filter)):
            assert time.monotonic() < deadline, f"the server scheduled no run within {SCHEDULER_WAIT_S} s"
            time.sleep(2)
        berlin = ZoneInfo("Europe/Berlin")
        assert all(run.state is not None and run.state.is_scheduled() for run in upcoming)
        starts = [run.expected_start_time.astimezone(berlin) for run in upcoming if run.expected_start_time]
        assert starts and all(s.minute % 15 == 0 and s.second == 0 for s in starts)
        assert all(run.parameters == {"root": str(root)} for run in upcoming)

    # the CLI registers the same deployment again (an update, not a second one) with the new cron
    (root / "params.yaml").write_text((root / "params.yaml").read_text().replace("*/15 * * * *", "30 2 * * 1-5"))
    result = CliRunner().invoke(app, ["serve", "--root", str(root), "--register-only"])
    assert result.exit_code == 0, result.output
    assert f"registered v2v-retrain/nightly ({deployment_id}): cron '30 2 * * 1-5' Europe/Berlin" in result.output
    with get_client(sync_client=True) as client:
        (schedule,) = client.read_deployment(deployment_id).schedules
        assert schedule.schedule.cron == "30 2 * * 1-5"
        assert (
            len(
                client.read_deployments(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
            )
            == 1
        )


def test_prefect_errors_name_the_url_and_what_to_do(tmp_path: Path) -> None:
    root = project(tmp_path / "proj")
    runner = CliRunner()
    down = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    with temporary_settings({PREFECT_API_URL: down}):
        for command in (["serve", "--register-only"], ["retrain"], ["pipeline"]):
            result = runner.invoke(app, [*command, "--root", str(root)])
            assert result.exit_code == 1, (command, result.output)
            assert f"the Prefect API at {down} is not reachable" in result.output
            assert "prefect server start --host 127.0.0.1" in result.output
    with temporary_settings({PREFECT_API_URL: "localhost:4200"}):
        result = runner.invoke(app, ["serve", "--root", str(root)])
        assert result.exit_code == 1 and "PREFECT_API_URL='localhost:4200' is not an http(s) URL" in result.output
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(app, ["serve", "--root", str(root)])
        assert result.exit_code == 1 and "cron schedules need a running Prefect server" in result.output


@pytest.mark.slow  # ~1-2 min: `v2v serve` starts, polls the server, runs the flow in a subprocess
def test_served_deployment_executes_runs(dvc_project: Path, prefect_server: str) -> None:
    """`v2v serve` registers the deployment and executes its runs (here an ad-hoc run, as a schedule would start)."""
    params = yaml.safe_load((dvc_project / "params.yaml").read_text())
    params["orchestrate"]["deployment"] = "served"
    (dvc_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    command = [sys.executable, "-m", "v2v", "serve", "--root", str(dvc_project)]
    log = (dvc_project / "serve.log").open("w")
    serving = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + SERVER_STARTUP_S
            while True:
                assert serving.poll() is None, (dvc_project / "serve.log").read_text()[-3000:]
                try:
                    deployment = client.read_deployment_by_name("v2v-retrain/served")
                    break
                except ObjectNotFound:
                    assert time.monotonic() < deadline, "v2v serve registered no deployment"
                    time.sleep(2)
        flow_run = run_deployment(deployment.id, parameters={"check_only": True}, timeout=SERVER_STARTUP_S)
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
        assert any("check only: would run sample, extract" in entry.message for entry in logs), [
            entry.message for entry in logs
        ]
    finally:
        os.killpg(serving.pid, signal.SIGINT)  # Ctrl-C: the runner pauses the schedule and exits
        serving.wait(timeout=60)
        log.close()
