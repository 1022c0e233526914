"""The ``v2v`` command: run stages, check params, run the pipeline with Prefect, open MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from v2v.config import ConfigError, describe, load_config
from v2v.paths import ProjectPaths
from v2v.stages import STAGES, get_stage
from v2v.stages.common import USER_ERRORS, configure_logging

app = typer.Typer(
    help="vid2vid as a reproducible pipeline. Most users run `dvc repro`; these commands run pieces of it.",
    no_args_is_help=True,
    add_completion=False,
)

RootOption = Annotated[Path, typer.Option("--root", help="project folder (holds params.yaml and dvc.yaml)")]
ParamsOption = Annotated[Path | None, typer.Option("--params", help="params file (default: ROOT/params.yaml)")]


@app.command("run")
def run_stage(
    stage: Annotated[str, typer.Argument(help=f"stage to run: {', '.join(STAGES)}")],
    root: RootOption = Path("."),
    params: ParamsOption = None,
) -> None:
    """Run one stage now, without DVC's up-to-date check.

    Example: `v2v run extract --root .`
    """
    configure_logging()
    paths = ProjectPaths.at(root)
    try:
        get_stage(stage)(load_config(params or paths.params), paths)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="STAGE") from None
    except USER_ERRORS as exc:
        typer.echo(f"error: {stage} stage: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("params")
def params_command(
    root: RootOption = Path("."),
    params: ParamsOption = None,
    list_keys: Annotated[bool, typer.Option("--list", help="list every key with its default and meaning")] = False,
) -> None:
    """Validate params.yaml (exit 1 naming each bad key), or list every key with --list.

    Examples: `v2v params`, `v2v params --list`
    """
    if list_keys:
        for key, default, text in describe():
            typer.echo(f"{key:32} {default!s:24} {text}")
        return
    path = params or ProjectPaths.at(root).params
    try:
        load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{path}: ok")


@app.command("pipeline")
def pipeline_command(
    root: RootOption = Path("."),
    stage: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages (repeatable)")] = None,
    driver: Annotated[
        str, typer.Option(help="'dvc' (dvc repro per stage, skips up-to-date ones) or 'direct' (call the stages)")
    ] = "dvc",
) -> None:
    """Run the pipeline as a Prefect flow (no Prefect server needed), grouped under one MLflow run.

    Example: `v2v pipeline --stage sample --stage extract`
    """
    from pipelines.flow import v2v_pipeline

    configure_logging()
    if driver not in ("dvc", "direct"):
        raise typer.BadParameter("expected 'dvc' or 'direct'", param_hint="--driver")
    v2v_pipeline(root=str(ProjectPaths.at(root).root), stages=stage or None, driver=driver)


@app.command("ui")
def ui_command(
    root: RootOption = Path("."),
    port: Annotated[int, typer.Option(help="port to serve on")] = 5000,
    host: Annotated[str, typer.Option(help="address to bind; keep 127.0.0.1 unless you know why")] = "127.0.0.1",
) -> None:
    """Serve the MLflow UI for this project's runs (Ctrl-C stops it).

    Example: `v2v ui --port 5000`, then open http://127.0.0.1:5000
    """
    from v2v.tracking import local_artifact_root, tracking_uri

    uri = tracking_uri(ProjectPaths.at(root))
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if artifacts := local_artifact_root(uri):
        command += ["--artifacts-destination", artifacts]
    typer.echo(f"MLflow UI on http://{host}:{port} (store: {uri})")
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))


if __name__ == "__main__":
    app()


@app.command("ab")
def ab_command(
    run_a: Annotated[str, typer.Argument(help="MLflow run id of an evaluate stage (system A)")],
    run_b: Annotated[str, typer.Argument(help="MLflow run id of another evaluate stage (system B)")],
    segment: Annotated[int, typer.Option(help="frames per preference question")] = 8,
    tolerance: Annotated[float, typer.Option(help="relative score difference counted as a tie")] = 0.02,
) -> None:
    """Preference proxies P(A ≻ B) between the vid2vid videos of two evaluated runs.

    Example: ``v2v ab 3f2c... 9ab1...`` (run ids of two ``evaluate`` stage runs, from the MLflow UI
    or ``v2v compare``). Both runs must have evaluated the same held-out videos.
    """
    import tempfile

    from mlflow import MlflowClient

    from v2v.eval.scoring import ab_preferences

    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in (run_a, run_b):
            try:
                path = MlflowClient().download_artifacts(run_id, "report/evaluate_frames.csv", tmp)
            except Exception as exc:
                typer.echo(f"error: run {run_id}: no report/evaluate_frames.csv artifact ({exc})", err=True)
                raise typer.Exit(1) from None
            tables.append(Path(path).read_text(encoding="utf-8"))
            Path(path).unlink()
    try:
        prefs = ab_preferences(tables[0], tables[1], segment, tolerance)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{'dimension':<16} {'P(A > B)':>9} {'95% Wilson':>17} {'W/T/L':>10}")
    for name, p in prefs.items():
        typer.echo(
            f"{name:<16} {p.rate:>9.3f} {f'[{p.low:.3f}, {p.high:.3f}]':>17} {f'{p.wins}/{p.ties}/{p.losses}':>10}"
        )
    typer.echo("(proxies computed from metrics, not human judgements)")
