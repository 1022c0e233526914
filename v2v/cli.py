"""The ``v2v`` command: run stages, check params, run the pipeline with Prefect, open MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
import yaml

from v2v.config import ConfigError, describe, load_config, params_file, to_dict
from v2v.io.atomic import write_text
from v2v.paths import ProjectPaths
from v2v.stages import STAGES, get_stage
from v2v.stages.common import USER_ERRORS, configure_logging, report_error

app = typer.Typer(
    help="vid2vid as a reproducible pipeline. Most users run `dvc repro`; these commands run pieces of it.",
    no_args_is_help=True,
    add_completion=False,
)

RootOption = Annotated[Path, typer.Option("--root", help="project folder (holds params.yaml and dvc.yaml)")]


class Driver(StrEnum):
    dvc = "dvc"
    direct = "direct"


class Fanout(StrEnum):
    none = "none"
    dask = "dask"


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
        report_error(f"{stage} stage", exc)
        raise typer.Exit(1) from None


@app.command("params")
def params_command(
    root: RootOption = Path("."),
    params: ParamsOption = None,
    list_keys: Annotated[bool, typer.Option("--list", help="list every key with its default and meaning")] = False,
    profile: Annotated[
        Path | None, typer.Option("--profile", help="a profile (profiles/*.yaml): the keys it changes")
    ] = None,
    write: Annotated[
        Path | None, typer.Option("--write", help="with --profile: write the whole params file it makes here")
    ] = None,
) -> None:
    """Validate params.yaml (exit 1 naming each bad key), list every key with --list, or make a params file
    from a profile (v2v's defaults, i.e. the shipped params.yaml, with the profile's keys changed).

    Examples: `v2v params`, `v2v params --list`,
    `v2v params --profile profiles/face-carphone.yaml --write params.yaml`
    """
    if list_keys:
        for key, default, text in describe():
            typer.echo(f"{key:32} {default!s:24} {text}")
        return
    if write is not None and profile is None:
        typer.echo("error: --write needs --profile (the profile whose params file to write)", err=True)
        raise typer.Exit(1)
    path = profile or params or ProjectPaths.at(root).params
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if write is not None:
        write_text(write, params_file(cfg, f"made by `v2v params --profile {path} --write {write}`"))
        typer.echo(f"wrote {write} (v2v's defaults with {path}'s changes)")
        return
    given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [name for name in to_dict(cfg) if name not in given]
    note = f" (not given, so the shipped defaults apply: {', '.join(missing)})" if missing else ""
    typer.echo(f"{path}: ok{note}")


@app.command("pipeline")
def pipeline_command(
    root: RootOption = Path("."),
    stage: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages (repeatable)")] = None,
    driver: Annotated[
        Driver, typer.Option(help="dvc: dvc repro per stage (skips up-to-date ones); direct: call the stages")
    ] = Driver.dvc,
    fanout: Annotated[
        Fanout | None,
        typer.Option(help="dask: extract's per-video work as tasks on Dask; none; default: orchestrate.fanout"),
    ] = None,
) -> None:
    """Run the pipeline as a Prefect flow (no Prefect server needed), grouped under one MLflow run.

    Examples: `v2v pipeline --stage sample --stage extract`, `v2v pipeline --fanout dask`
    """
    from pipelines.flow import StageFailed, v2v_pipeline
    from pipelines.serve import PrefectApiError, check_prefect_api

    configure_logging()
    try:
        check_prefect_api()
    except PrefectApiError as exc:
        typer.echo(f"error: pipeline: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        v2v_pipeline(
            root=str(ProjectPaths.at(root).root),
            stages=stage or None,
            driver=driver.value,
            fanout=fanout.value if fanout is not None else None,
        )
    except StageFailed as exc:
        typer.echo(
            f"error: pipeline: {exc}\nFix the cause above and run it again: DVC reruns only what is not up to date "
            f"(`dvc repro {exc.stage}` reproduces that stage alone).",
            err=True,
        )
        raise typer.Exit(1) from None
    except USER_ERRORS as exc:  # the direct driver raises the stage's own error
        report_error("pipeline", exc)
        raise typer.Exit(1) from None


@app.command("summary")
def summary_command(root: RootOption = Path(".")) -> None:
    """A short summary of the last run (quality per system, training, stage seconds) that fits 120 columns.

    Example: `v2v summary` (`make demo` ends with it)
    """
    from v2v.summary import summary

    typer.echo(summary(ProjectPaths.at(root)), nl=False)


@app.command("plots")
def plots_command(
    root: RootOption = Path("."),
    out: Annotated[Path, typer.Option("--out", help="folder for the PNG files")] = Path("dvc_plots"),
) -> None:
    """Draw `dvc plots show` as PNG files without a browser or a network (DVC's HTML needs a CDN).

    Example: `v2v plots` writes dvc_plots/generator_loss.png, discriminator_loss.png, per_frame_lpips.png, ...
    """
    from v2v.mlops.plots import PlotsError, render_plots

    paths = ProjectPaths.at(root)
    try:
        written = render_plots(paths.root, out if out.is_absolute() else paths.root / out)
    except PlotsError as exc:
        typer.echo(f"error: plots: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(str(p) for p in written))


@app.command("ui")
def ui_command(
    root: RootOption = Path("."),
    port: Annotated[int, typer.Option(help="port to serve on")] = 5000,
    host: Annotated[str, typer.Option(help="address to bind; keep 127.0.0.1 unless you know why")] = "127.0.0.1",
    workers: Annotated[int | None, typer.Option(help="server worker processes (MLflow's default: 4)")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for the server before giving up")] = 180.0,
) -> None:
    """Serve the MLflow UI for this project's runs (Ctrl-C stops it); prints the experiment's page once it answers.

    The page is MLflow's classic experiment view (runs, metrics, the model registry), not the GenAI view
    MLflow 3 opens by default. Example: `v2v ui --port 5000`
    """
    from v2v.mlops.tracking import classic_view_url, local_artifact_root, open_client, tracking_uri, wait_for_server

    paths = ProjectPaths.at(root)
    uri = tracking_uri(paths)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    if artifacts := local_artifact_root(uri):
        command += ["--artifacts-destination", artifacts]
    experiment = open_client(uri).get_experiment_by_name(load_config(paths.params).tracking.experiment)
    typer.echo(f"starting the MLflow UI (store: {uri}) ...")
    process = subprocess.Popen(command, env=os.environ.copy())
    try:
        base = f"http://{host}:{port}"
        if not wait_for_server(base, wait, alive=lambda: process.poll() is None):
            process.terminate()
            typer.echo(f"error: ui: the MLflow server did not answer on {base} within {wait:g} s", err=True)
            raise typer.Exit(1)
        typer.echo(f"MLflow UI: {classic_view_url(base, experiment.experiment_id if experiment else None)}")
        raise typer.Exit(process.wait())
    except KeyboardInterrupt:
        process.terminate()
        raise typer.Exit(process.wait()) from None


def _orchestration_errors() -> tuple[type[Exception], ...]:
    from pipelines.retrain import RetrainError
    from pipelines.serve import PrefectApiError
    from v2v.mlops.registry import PromotionError
    from v2v.mlops.tracking import TrackingError

    return (RetrainError, PrefectApiError, PromotionError, TrackingError, ConfigError)


@app.command("retrain")
def retrain_command(
    root: RootOption = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="run and apply the promotion rule even if nothing changed")
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="only report whether retraining would run")] = False,
) -> None:
    """Retrain if raw data or params changed (dvc status), then promote the model only if it beats the champion.

    Runs the changed stages and everything downstream with `dvc repro` (as a Prefect flow, no server needed),
    registers models/scale2 in the MLflow model registry and moves the alias of `promote` in params.yaml when
    the rule says so. The decision and its reason are logged and tagged on the MLflow run (v2v.retrain.*).

    Examples: `v2v retrain`, `v2v retrain --check`, `v2v retrain --force`
    """
    from pipelines.retrain import plan, v2v_retrain
    from pipelines.serve import check_prefect_api

    configure_logging()
    try:
        if check:  # read-only: DVC and MLflow answer it, no Prefect flow (nor server) is started
            outcome = plan(str(ProjectPaths.at(root).root), force)
        else:
            check_prefect_api()
            outcome = v2v_retrain(root=str(ProjectPaths.at(root).root), force=force)
    except _orchestration_errors() as exc:
        typer.echo(f"error: retrain: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{outcome['decision']}: {outcome['reason']}")


@app.command("serve")
def serve_command(
    root: RootOption = Path("."),
    register_only: Annotated[
        bool, typer.Option("--register-only", help="register the scheduled deployment and return, do not serve")
    ] = False,
) -> None:
    """Serve the retraining flow on the cron schedule of params.yaml (orchestrate.cron) against a Prefect server.

    Needs a running Prefect server: `prefect server start --host 127.0.0.1 --port 4200` in another terminal and
    `export PREFECT_API_URL=http://127.0.0.1:4200/api`. Ctrl-C stops serving (the schedule is paused).

    Examples: `v2v serve`, `v2v serve --register-only`, then `prefect deployment ls`
    """
    from pipelines.serve import register, serve

    configure_logging()
    paths = ProjectPaths.at(root)
    try:
        cfg = load_config(paths.params)
        oc = cfg.orchestrate
        if register_only:
            deployment_id = register(paths.root, cfg)
            typer.echo(f"registered v2v-retrain/{oc.deployment} ({deployment_id}): cron {oc.cron!r} {oc.timezone}")
            return
        typer.echo(f"serving v2v-retrain/{oc.deployment}: cron {oc.cron!r} {oc.timezone} (Ctrl-C stops)")
        serve(paths.root, cfg)
    except _orchestration_errors() as exc:
        typer.echo(f"error: serve: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("compare")
def compare_command(
    root: RootOption = Path("."),
    metric: Annotated[
        str | None,
        typer.Option(
            help="rank by this metric, <stage>.<name> (default: the promote rule's, e.g. evaluate.warp_error)"
        ),
    ] = None,
    mode: Annotated[str | None, typer.Option(help="'min' or 'max': which is better (default: promote.mode)")] = None,
    run: Annotated[
        list[str] | None, typer.Option("--run", help="compare these run ids or id prefixes (repeatable)")
    ] = None,
    last: Annotated[int, typer.Option(help="without --run: the latest N pipeline runs")] = 10,
    show: Annotated[
        list[str] | None, typer.Option("--show", help="metric columns to show, glob patterns (repeatable; '*': all)")
    ] = None,
    all_params: Annotated[
        bool, typer.Option("--all-params", help="list every param, not only those that differ")
    ] = False,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: tracking.experiment)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or markdown")] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="write to this file instead of printing")] = None,
) -> None:
    """Compare pipeline runs from MLflow: the params that differ, key metrics, and the best run by a metric.

    Examples:
      `v2v compare`
      `v2v compare --metric train_scale2.loss_g_total --mode min --last 5`
      `v2v compare --run 1a2b3c --run 4d5e6f --show 'extract.*' --format markdown --output runs.md`
    """
    from v2v.mlops import compare as cmp
    from v2v.mlops.tracking import TrackingError, open_client, tracking_uri

    if fmt not in ("table", "csv", "markdown"):
        raise typer.BadParameter("expected table, csv or markdown", param_hint="--format")
    if mode not in (None, "min", "max"):
        raise typer.BadParameter("expected min or max", param_hint="--mode")
    paths = ProjectPaths.at(root)
    errors: tuple[type[Exception], ...] = (ConfigError, TrackingError, cmp.CompareError)
    try:
        cfg = load_config(paths.params)
        from v2v.mlops.registry import promotion_rule

        rule_metric, rule_mode = promotion_rule(cfg)
        chosen = metric or f"{Path(cfg.promote.metrics_file).stem}.{rule_metric}"
        runs = cmp.load_runs(
            open_client(tracking_uri(paths)), experiment or cfg.tracking.experiment, run_ids=run or (), last=last
        )
        better = cast(Literal["min", "max"], mode or rule_mode)
        table = cmp.compare(runs, chosen, better, show=show or cmp.DEFAULT_SHOW, all_params=all_params)
    except errors as exc:
        typer.echo(f"error: compare: {exc}", err=True)
        raise typer.Exit(1) from None
    text = cmp.render(table, cast(cmp.Format, fmt))
    if output:
        write_text(output, text)
        typer.echo(f"wrote {output} ({len(runs)} runs; {table.summary()})")
    else:
        typer.echo(text, nl=False)


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


if __name__ == "__main__":
    app()
