"""`v2v compare`: params that differ, per-stage metrics, the best run; table/CSV/Markdown; clear errors.

Runs are created with the tracking module exactly as the stages create them (the end-to-end check on runs
of the real pipeline is in tests/pipelines/test_retrain.py).
"""

import csv
import io
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from v2v.cli import app
from v2v.config import Config
from v2v.mlops.compare import CompareError, compare, load_runs, render
from v2v.mlops.tracking import TrackingError, check_tracking_uri, pipeline_run, stage_run
from v2v.paths import ProjectPaths

runner = CliRunner()


@pytest.fixture
def two_runs(tmp_path: Path, tiny_config: Callable[..., Config]) -> tuple[Path, str, list[str]]:
    """Two pipeline executions that differ in extract.jpeg_quality, with known metrics; returns root, experiment, ids."""
    experiment = f"compare-{tmp_path.name}"
    paths = ProjectPaths.at(tmp_path)
    ids = []
    for quality, fps, loss in ((95, 100.0, 2.0), (80, 140.0, 3.0)):
        cfg = tiny_config(extract={"jpeg_quality": quality}, tracking={"experiment": experiment})
        with pipeline_run(cfg, paths, driver="test") as parent:
            ids.append(parent)
            with pytest.raises(RuntimeError), stage_run("extract", cfg, paths, ("extract",)) as run:
                run.log_metrics({"frames_per_second": 1.0})
                raise RuntimeError("first attempt fails")  # a retried stage: only the finished attempt counts
            with stage_run("extract", cfg, paths, ("extract",)) as run:
                run.log_metrics({"frames_per_second": fps, "frames": 24})
            with stage_run("train_scale2", cfg, paths, ("train",)) as run:
                run.log_metrics({"loss/g_total": loss + 1}, step=1)
                run.log_metrics({"loss/g_total": loss}, step=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tracking": {"experiment": experiment}}))
    return tmp_path, experiment, ids  # type: ignore[return-value]


def test_compare_finds_differing_params_metrics_and_best(two_runs: tuple[Path, str, list[str]]) -> None:
    _, experiment, (first, second) = two_runs
    runs = load_runs(MlflowClient(), experiment)
    assert [r.run_id for r in runs] == [second, first]  # newest first
    assert runs[0].stages == ["extract", "train_scale2"]
    table = compare(runs, "extract.frames_per_second", "max", show=("train_scale2.loss*",))
    assert table.params == ["extract.jpeg_quality"]
    assert table.metrics == ["extract.frames_per_second", "train_scale2.loss_g_total"]
    assert table.best is not None and table.best.run_id == second
    rows = table.rows(short_ids=False)
    assert rows[0][3:] == ["test", "80", "140", "3", "*"] and rows[1][3:] == ["test", "95", "100", "2", ""]
    by_loss = compare(runs, "train_scale2.loss_g_total", "min")
    assert by_loss.best is not None and by_loss.best.run_id == first  # the last logged step counts
    assert "best by train_scale2.loss_g_total (lower is better)" in by_loss.summary()
    everything = compare(runs, "extract.frames", "min", all_params=True)
    assert "extract.jpeg_quality" in everything.params and "model.preset" in everything.params
    assert everything.best is not None and everything.best.run_id == second  # a tie: the newest wins
    missing = compare(runs, "evaluate.fid", "min")
    assert missing.best is None and "no run has the metric 'evaluate.fid'" in missing.summary()


def test_render_formats(two_runs: tuple[Path, str, list[str]]) -> None:
    _, experiment, (first, second) = two_runs
    table = compare(load_runs(MlflowClient(), experiment), "extract.frames_per_second", "max", show=())
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert [(r["run_id"], r["extract.jpeg_quality"], r["extract.frames_per_second"], r["best"]) for r in rows] == [
        (second, "80", "140", "*"),
        (first, "95", "100", ""),
    ]
    markdown = render(table, "markdown").splitlines()
    assert markdown[0] == "| run | run_id | status | driver | extract.jpeg_quality | extract.frames_per_second | best |"
    assert markdown[1] == "|---|---|---|---|---|---|---|"
    assert markdown[2] == f"| {table.runs[0].name} | {second[:8]} | FINISHED | test | 80 | 140 | * |"
    text = render(table, "table").splitlines()
    assert text[0].split() == [
        "run",
        "run_id",
        "status",
        "driver",
        "extract.jpeg_quality",
        "extract.frames_per_second",
        "best",
    ]
    assert text[-1].startswith("best by extract.frames_per_second (higher is better)") and second in text[-1]
    # every param is far wider than a terminal: turned, one row per field and one column per run
    turned = render(compare(load_runs(MlflowClient(), experiment), "extract.frames", "max", all_params=True), "table")
    lines = turned.splitlines()
    assert lines[1].split() == ["run_id", second[:8], first[:8]] and lines[2].split() == [
        "status",
        "FINISHED",
        "FINISHED",
    ]
    assert any(line.split()[:3] == ["extract.jpeg_quality", "80", "95"] for line in lines)


def test_compare_cli(two_runs: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    root, _, (first, second) = two_runs
    out = tmp_path / "out" / "runs.md"
    args = ["compare", "--root", str(root), "--metric", "extract.frames_per_second", "--mode", "max"]
    result = runner.invoke(app, [*args, "--run", first[:10], "--format", "markdown", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (1 runs" in result.output and out.read_text().count(f"| {first[:8]} |") == 1
    result = runner.invoke(app, [*args, "--last", "2"])
    assert result.exit_code == 0 and "extract.jpeg_quality" in result.output and second in result.output
    bad = runner.invoke(app, [*args, "--run", "zzzz"])
    assert bad.exit_code == 1 and "no pipeline run of experiment" in bad.output and "'zzzz'" in bad.output
    unknown = runner.invoke(app, [*args, "--experiment", "nope-never"])
    assert unknown.exit_code == 1 and "no MLflow experiment 'nope-never'" in unknown.output
    assert runner.invoke(app, [*args, "--format", "html"]).exit_code == 2
    with pytest.raises(CompareError, match="no pipeline run"):
        load_runs(MlflowClient(), two_runs[1], run_ids=["0000"])


def test_bad_mlflow_uris_name_the_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    down = f"http://127.0.0.1:{port}"
    with pytest.raises(TrackingError, match=rf"MLflow tracking server {down} is not reachable .*v2v ui"):
        check_tracking_uri(down, timeout=2)
    with pytest.raises(TrackingError, match="unknown scheme 'foo'"):
        check_tracking_uri("foo://bar")
    check_tracking_uri("sqlite:///x.db")  # local stores need no probe
    (tmp_path / "params.yaml").write_text("tracking:\n  experiment: x\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    result = runner.invoke(app, ["compare", "--root", str(tmp_path)])
    assert result.exit_code == 1 and f"MLflow tracking server {down} is not reachable" in result.output
    # a stage run names it too, and says what to do
    (tmp_path / "videos").mkdir()
    (tmp_path / "params.yaml").write_text("extract:\n  input_dir: videos\ntracking:\n  experiment: x\n")
    result = runner.invoke(app, ["run", "extract", "--root", str(tmp_path)])
    assert (
        result.exit_code == 1
        and f"error: extract stage: MLflow tracking server {down} is not reachable" in result.output
    )
    assert "unset MLFLOW_TRACKING_URI" in result.output
