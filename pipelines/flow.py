"""Prefect flow running the v2v pipeline: the same stages as ``dvc repro``, with retries and one MLflow parent run.

Two drivers, one implementation of each stage:

* ``driver="dvc"`` (default) runs ``dvc repro --single-item <stage>`` per stage in ``dvc.yaml`` order, so
  DVC skips up-to-date stages and keeps ``dvc.lock`` current;
* ``driver="direct"`` calls the stages' ``run(cfg, paths)`` in this process (no DVC bookkeeping).

Runs without a Prefect server (Prefect starts a temporary one). Example::

    python -m pipelines.flow --root .            # or: v2v pipeline
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

from pipelines.commands import OUTPUT_TAIL, stage_env, stream
from pipelines.fanout import FANOUT_STAGES, run_fanout
from v2v.config import Config, load_config
from v2v.mlops.dvcfile import load_stages, stage_order
from v2v.mlops.tracking import pipeline_run
from v2v.paths import ProjectPaths
from v2v.stages import STAGES, get_stage

MLFLOW_UI = "http://127.0.0.1:5000"  # where `v2v ui` serves MLflow by default


class StageFailed(RuntimeError):
    """A stage run by the flow failed; ``stage`` names it and the message ends with its output."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # keeps ``stage`` through Prefect's result pickling
        return (type(self), (self.stage, str(self)))


@task(name="stage", task_run_name="{stage}", retries=1, retry_delay_seconds=2)
def run_stage(root: str, stage: str, driver: str, parent_run_id: str | None) -> str:
    """Run one stage; raises with the tail of its output when it fails (Prefect then retries)."""
    logger = get_run_logger()
    if driver == "direct":
        paths = ProjectPaths.at(root)  # the parent run id is already in this process's environment
        get_stage(stage)(load_config(paths.params), paths)
        return f"{stage}: ran"
    command = [sys.executable, "-m", "dvc", "repro", "--single-item", stage]
    logger.info("running %s", " ".join(command))
    returncode, output = stream(command, root, stage_env(parent_run_id), logger)
    if returncode != 0:
        raise StageFailed(stage, f"stage {stage!r} failed (exit {returncode}):\n{output[-OUTPUT_TAIL:]}")
    skipped = "didn't change, skipping" in output or "is cached - skipping" in output
    logger.info("%s: %s", stage, "up to date" if skipped else "ran")
    return f"{stage}: {'up to date' if skipped else 'ran'}"


def publish_artifacts(paths: ProjectPaths, parent_run_id: str | None, stages: list[str]) -> None:
    """Prefect artifacts of a flow run: the summary of its metrics, its MLflow run, the report."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    from v2v.summary import summary

    ran = ", ".join(stages) or "none"
    create_markdown_artifact(
        f"Stages: {ran}\n\n```\n{summary(paths)}```\n",
        key="v2v-metrics",
        description="v2v summary of this project's metrics files after the run (`v2v summary`)",
    )
    if parent_run_id:
        experiment = load_config(paths.params).tracking.experiment
        create_link_artifact(
            f"{MLFLOW_UI}/#/experiments/{_experiment_id(paths, experiment)}/runs/{parent_run_id}",
            link_text=f"MLflow run {parent_run_id}",
            key="v2v-mlflow-run",
            description="the pipeline's parent MLflow run (start the UI with `v2v ui`)",
        )
    report = paths.evaluation / "report.html"
    if report.is_file():
        create_link_artifact(
            report.resolve().as_uri(), link_text=str(report), key="v2v-report", description="the evaluation report"
        )


def _experiment_id(paths: ProjectPaths, experiment: str) -> str:
    from v2v.mlops.tracking import open_client, tracking_uri

    found = open_client(tracking_uri(paths)).get_experiment_by_name(experiment)
    return str(found.experiment_id) if found is not None else "0"


def execute_stage(root: str, stage: str, driver: str, parent_run_id: str | None, fanout: str, cfg: Config) -> str:
    """Run one stage: its per-video work on Dask when ``fanout == "dask"`` and it has any, else :func:`run_stage`."""
    if fanout == "dask" and stage in FANOUT_STAGES:
        oc = cfg.orchestrate
        return run_fanout(root, stage, driver, oc.dask_address, oc.dask_workers)
    return run_stage(root, stage, driver, parent_run_id)


@flow(name="v2v-pipeline", log_prints=True)
def v2v_pipeline(
    root: str = ".", stages: list[str] | None = None, driver: str = "dvc", fanout: str | None = None
) -> list[str]:
    """Run ``stages`` (default: all, in dependency order) of the project at ``root``.

    ``fanout``: ``"dask"`` runs extract's per-video work as mapped tasks on Dask (``orchestrate.dask_*``),
    ``"none"`` in one process; default ``orchestrate.fanout``.
    """
    paths = ProjectPaths.at(root)
    cfg = load_config(paths.params)
    fanout = fanout or cfg.orchestrate.fanout
    if fanout not in ("none", "dask"):
        raise ValueError(f"fanout: expected 'none' or 'dask', got {fanout!r}")
    order = stage_order(load_stages(paths.root)) if driver == "dvc" else list(STAGES)
    wanted = [s for s in order if stages is None or s in stages]
    unknown = sorted(set(stages or ()) - set(order))
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(order)}")
    with pipeline_run(cfg, paths, driver=f"prefect/{driver}") as parent_run_id:
        results = [execute_stage(str(paths.root), name, driver, parent_run_id, fanout, cfg) for name in wanted]
    publish_artifacts(paths, parent_run_id, wanted)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the v2v pipeline as a Prefect flow.")
    parser.add_argument("--root", default=".", help="project folder")
    parser.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    parser.add_argument("--driver", choices=("dvc", "direct"), default="dvc")
    parser.add_argument("--fanout", choices=("none", "dask"), default=None, help="default: orchestrate.fanout")
    args = parser.parse_args()
    v2v_pipeline(root=str(Path(args.root).resolve()), stages=args.stage, driver=args.driver, fanout=args.fanout)


if __name__ == "__main__":
    main()
