"""Compare pipeline executions recorded in MLflow: the params that differ, key metrics, the best run.

One pipeline execution is one MLflow parent run (``dvc repro``, ``v2v pipeline``, ``v2v retrain``)
with a child run per stage (see :mod:`v2v.mlops.tracking`). A run's params are the parent's (every key of
``params.yaml``), completed by its stages' own; its metrics are ``<stage>.<name>`` from each stage
run (the last finished one when a stage was retried) plus the parent's own (``v2v retrain`` logs
the promotion metrics file there as ``<file stem>.<key>``). A stage DVC found up to date did not
run in that execution, so its metrics are blank for it.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["table", "csv", "markdown"]
PARENT_TAG = "mlflow.parentRunId"
# metric columns besides --metric: the headline figures (`--show '*'` for every metric)
DEFAULT_SHOW = (
    "evaluate.seg_miou",
    "evaluate.warp_error",
    "evaluate.lpips",
    "evaluate.fid_tv",
    "train_scale2.loss_g_total",
    "flow.epe_mean",
)
WIDTH = 120  # a wider text table is printed turned: one row per field, one column per run


class CompareError(ValueError):
    """Nothing to compare (no experiment, no runs, unknown run id); the message says what to do."""


@dataclass
class PipelineRun:
    """One pipeline execution as the comparison sees it."""

    run_id: str
    name: str
    started: float  # seconds since the epoch
    status: str
    driver: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)  # stages that ran in this execution


@dataclass
class Comparison:
    """The table ``v2v compare`` prints."""

    runs: list[PipelineRun]
    params: list[str]  # keys whose values differ between the runs
    metrics: list[str]  # metric columns
    metric: str  # the metric that ranks the runs
    mode: Literal["min", "max"]
    best: PipelineRun | None  # None: no run has the metric

    def header(self) -> list[str]:
        return ["run", "run_id", "status", "driver", *self.params, *self.metrics, "best"]

    def rows(self, short_ids: bool) -> list[list[str]]:
        rows = []
        for run in self.runs:
            rows.append(
                [
                    run.name,
                    run.run_id[:8] if short_ids else run.run_id,
                    run.status,
                    run.driver,
                    *(run.params.get(k, "") for k in self.params),
                    *(_number(run.metrics.get(k)) for k in self.metrics),
                    "*" if self.best is not None and run.run_id == self.best.run_id else "",
                ]
            )
        return rows

    def summary(self) -> str:
        if self.best is None:
            return f"no run has the metric {self.metric!r}; pick one with --metric (columns above, or --show '*')"
        value = self.best.metrics[self.metric]
        better = "lower" if self.mode == "min" else "higher"
        return (
            f"best by {self.metric} ({better} is better): {self.best.name} ({self.best.run_id}) = {_number(value)}; "
            f"{len(self.runs)} run(s), {len(self.params)} param(s) differ"
        )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def load_runs(
    client: Any,  # MlflowClient
    experiment: str,  # MLflow experiment name (params.yaml: tracking.experiment)
    run_ids: Sequence[str] = (),  # these pipeline runs (full ids or unique prefixes); empty: the latest `last`
    last: int = 10,  # how many of the latest pipeline runs when no ids are given
) -> list[PipelineRun]:
    """The pipeline runs of ``experiment`` with their params and per-stage metrics, newest first."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise CompareError(
            f"no MLflow experiment {experiment!r} in {client.tracking_uri}; run the pipeline first (`dvc repro`, "
            "`v2v pipeline`) or pass --experiment NAME"
        )
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=10_000)
    parents = [r for r in runs if PARENT_TAG not in r.data.tags and "v2v.stage" not in r.data.tags]
    if run_ids:
        chosen = []
        for wanted in run_ids:
            matches = [r for r in parents if r.info.run_id.startswith(wanted)]
            if len(matches) != 1:
                what = "no pipeline run" if not matches else f"{len(matches)} pipeline runs"
                raise CompareError(f"{what} of experiment {experiment!r} has an id starting with {wanted!r}")
            chosen.append(matches[0])
        parents = chosen
    else:
        parents = parents[:last]
    if not parents:
        raise CompareError(f"experiment {experiment!r} has no pipeline runs yet; run `dvc repro` or `v2v pipeline`")
    children: dict[str, list[Any]] = {}
    for run in runs:
        if PARENT_TAG in run.data.tags:
            children.setdefault(run.data.tags[PARENT_TAG], []).append(run)
    return [_pipeline_run(parent, children.get(parent.info.run_id, [])) for parent in parents]


def _pipeline_run(parent: Any, children: list[Any]) -> PipelineRun:
    params = dict(parent.data.params)
    metrics: dict[str, float] = {}
    stages: list[str] = []
    # oldest first, so the last finished run of a retried stage wins
    for child in sorted(children, key=lambda r: r.info.start_time or 0):
        stage = child.data.tags.get("v2v.stage", child.info.run_name)
        stages.append(stage)
        for key, value in child.data.params.items():
            params.setdefault(key, value)
        if child.info.status == "FINISHED":
            metrics.update({f"{stage}.{key.replace('/', '_')}": value for key, value in child.data.metrics.items()})
    metrics.update(parent.data.metrics)
    return PipelineRun(
        run_id=parent.info.run_id,
        name=parent.info.run_name or parent.info.run_id[:8],
        started=(parent.info.start_time or 0) / 1000,
        status=parent.info.status,
        driver=parent.data.tags.get("v2v.driver", ""),
        params=params,
        metrics=metrics,
        stages=sorted(set(stages), key=stages.index),
    )


def compare(
    runs: list[PipelineRun],
    metric: str,  # ranks the runs, e.g. "evaluate.warp_error"
    mode: Literal["min", "max"] = "min",  # "min": lower is better
    show: Sequence[str] = DEFAULT_SHOW,  # glob patterns of further metric columns
    all_params: bool = False,  # every param, not only those that differ
) -> Comparison:
    """The params that differ between ``runs``, the metric columns and the best run by ``metric``."""
    keys = sorted({k for run in runs for k in run.params})
    # differ: two runs know different values (a key a run does not know, e.g. from older code, is blank)
    differ = [k for k in keys if all_params or len({run.params[k] for run in runs if k in run.params}) > 1]
    names = sorted({k for run in runs for k in run.metrics})
    columns = [metric] if metric in names else []
    for pattern in show:
        columns += [n for n in names if fnmatch.fnmatchcase(n, pattern) and n not in columns]
    scored = [r for r in runs if metric in r.metrics and math.isfinite(r.metrics[metric])]
    best = None
    if scored:
        pick = min if mode == "min" else max
        best = pick(scored, key=lambda r: r.metrics[metric])
    return Comparison(runs=runs, params=differ, metrics=columns, metric=metric, mode=mode, best=best)


def render(comparison: Comparison, fmt: Format) -> str:
    """The comparison as an aligned text table, CSV or a Markdown table (text and Markdown end with the summary)."""
    header = comparison.header()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(comparison.rows(short_ids=False))
        return out.getvalue()
    rows = comparison.rows(short_ids=True)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(lines) + f"\n\n{comparison.summary()}\n"
    lines = _aligned([header, *rows])
    if max(len(line) for line in lines) > WIDTH:  # many params or metrics: fields down, runs across
        lines = _aligned([list(column) for column in zip(header, *rows, strict=True)])
    return "\n".join(lines) + f"\n\n{comparison.summary()}\n"


def _aligned(table: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(*table, strict=True)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
