"""Retraining flow: rerun the DVC pipeline when data or params changed, then apply the promotion rule.

One implementation with ``dvc repro``: the flow asks DVC what changed (``dvc status``), runs the
changed stages and everything downstream of them with ``dvc repro --single-item`` (the same task as
:mod:`pipelines.flow`, with retries), and then

1. registers the final model (``models/scale2``) in the MLflow model registry as a new version of
   ``promote.model_name`` (a pyfunc with a signature; artifacts ``model.pt`` + ``config.json``;
   the numbers of ``promote.metrics_file`` as version tags and on the run),
2. moves ``promote.alias`` (``champion``) to it only when ``promote.metric`` beats the champion's by
   more than ``promote.min_delta`` (``promote.mode`` says whether lower or higher is better).

The decision and its reason are logged and tagged on the MLflow parent run (``v2v.retrain.*``).
Nothing changed (``dvc status`` clean and ``dvc.lock`` as it was at the last decision): the flow
skips without running anything or opening a run. A failed stage never registers a model or moves
the alias. Examples::

    v2v retrain                 # ad hoc, no Prefect server needed
    v2v retrain --check         # only report whether retraining would run
    v2v serve                   # the same flow on the cron schedule of params.yaml (needs a Prefect server)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from pipelines import commands
from pipelines.flow import execute_stage, publish_artifacts
from v2v.config import Config, load_config
from v2v.io.files import dvc_md5
from v2v.mlops.dvcfile import DvcStage, load_stages, stage_order
from v2v.mlops.tracking import open_client, pipeline_run, tracking_uri
from v2v.paths import ProjectPaths

LAST_LOCK_TAG = "v2v.last_dvc_lock_md5"  # registered-model tag: dvc.lock md5 of the last retraining decision
DECISION_TAG = "v2v.retrain.decision"  # parent-run tags: promoted | kept | failed
REASON_TAG = "v2v.retrain.reason"
FINAL_MODEL_SCALE = 2  # models/scale2 is the final model (train_scale2 passes the model on when num_scales < 3)


class RetrainError(RuntimeError):
    """Retraining could not run or failed; the message names the stage or service and what to do."""


def dvc_status(root: Path) -> dict[str, list[str]]:
    """``dvc status`` of the pipeline: stage → what changed (empty when everything is up to date)."""
    try:
        data = commands.dvc_status(root)
    except commands.DvcError as exc:
        raise RetrainError(str(exc)) from None
    changes: dict[str, list[str]] = {}
    for name, entries in data.items():
        stage = name.split(":")[-1]
        for entry in entries:
            if isinstance(entry, dict):
                for kind, items in entry.items():
                    if isinstance(items, dict):
                        for path, what in items.items():
                            detail = ", ".join(f"{k} {v}" for k, v in what.items()) if isinstance(what, dict) else what
                            changes.setdefault(stage, []).append(f"{kind}: {path} ({detail})")
                    else:
                        changes.setdefault(stage, []).append(f"{kind}: {items}")
            else:
                changes.setdefault(stage, []).append(str(entry))
    return changes


def affected_stages(stages: dict[str, DvcStage], changed: set[str]) -> list[str]:
    """The changed stages and every stage downstream of them, in pipeline order."""
    affected: set[str] = set()
    outputs: list[str] = []
    for name in stage_order(stages):
        consumes = any(d == o or d.startswith(o.rstrip("/") + "/") for d in stages[name].deps for o in outputs)
        if name in changed or consumes:
            affected.add(name)
            outputs.extend(stages[name].outs)
    return [name for name in stage_order(stages) if name in affected]


def lock_md5(paths: ProjectPaths) -> str | None:
    lock = paths.root / "dvc.lock"
    return hashlib.md5(lock.read_bytes()).hexdigest() if lock.is_file() else None


def last_decision_lock(client: Any, model_name: str) -> str | None:
    """The ``dvc.lock`` md5 recorded by the last retraining decision (None: no decision yet)."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(model_name)
    except MlflowException:
        return None
    return model.tags.get(LAST_LOCK_TAG)


def plan(root: str, force: bool = False) -> dict[str, Any]:
    """What a retraining would do, without running anything (and without Prefect: ``v2v retrain --check``).

    ``decision`` is ``skipped`` (nothing changed since the last decision), else ``would-run`` with the
    ``stages`` to run (changed ones and everything downstream; all with ``force``) and ``changed``
    (DVC's reasons per stage).
    """
    paths = ProjectPaths.at(root)
    cfg = load_config(paths.params)
    if not cfg.tracking.enabled:
        raise RetrainError("retraining needs MLflow (the model registry): set tracking.enabled: true in params.yaml")
    changed = dvc_status(paths.root)
    lock = lock_md5(paths)
    last = last_decision_lock(open_client(tracking_uri(paths)), cfg.promote.model_name)
    stages = load_stages(paths.root)
    wanted = affected_stages(stages, set(changed)) if not force else stage_order(stages)
    if not changed and lock is not None and lock == last and not force:
        reason = f"nothing changed since the last retraining decision (dvc status clean, dvc.lock {lock})"
        return {"decision": "skipped", "reason": reason, "stages": [], "changed": changed}
    if wanted:
        reason = "would run " + ", ".join(wanted)
    else:  # e.g. after a plain `dvc repro`: up to date, but no retraining has judged this model
        reason = (
            "would run no stage: the pipeline is up to date, but no retraining decision covers its current model "
            f"(dvc.lock {lock}); `v2v retrain` would register it and apply the promotion rule"
        )
    return {"decision": "would-run", "reason": reason, "stages": wanted, "changed": changed}


@task(name="check-changes")
def check_changes(root: str, force: bool) -> dict[str, Any]:
    """:func:`plan` as a task of the flow (its result shows in the Prefect UI)."""
    return plan(root, force)


@task(name="promote")
def promote(root: str, parent_run_id: str) -> dict[str, Any]:
    """Register the final model and apply the promotion rule; returns the decision."""
    from v2v.mlops import registry

    logger = get_run_logger()
    paths = ProjectPaths.at(root)
    cfg = load_config(paths.params)
    pc = cfg.promote
    metric, mode = registry.promotion_rule(cfg)
    uri = tracking_uri(paths)
    client = open_client(uri)
    metrics_file = paths.root / pc.metrics_file
    try:
        value = registry.read_metric(metrics_file, metric)
        metrics = registry.flat_metrics(json.loads(metrics_file.read_text(encoding="utf-8")))
    except (registry.PromotionError, json.JSONDecodeError) as exc:
        # no decision can be made: nothing is registered and the last decision stays, so the next `v2v retrain`
        # decides again on this model once promote is fixed (no stage reruns)
        reason = f"{exc}; no model registered, {pc.alias} not moved"
        client.set_tag(parent_run_id, DECISION_TAG, "failed")
        client.set_tag(parent_run_id, REASON_TAG, reason[:5000])
        raise registry.PromotionError(
            f"cannot decide on the retrained model: {exc}. Set promote.metric (and promote.mode) in params.yaml to "
            "a key of that file, or `auto` for the task's own score, then run `v2v retrain` again"
        ) from exc
    prefix = Path(pc.metrics_file).stem + "."
    client.log_batch(parent_run_id, metrics=_metric_entities({prefix + k: v for k, v in metrics.items()}))
    model_dir = paths.model_dir(FINAL_MODEL_SCALE)
    current = registry.champion(client, pc.model_name, pc.alias)
    current_version = str(current.version) if current is not None else None
    champion_value = None
    if current is not None and registry.METRIC_TAG + metric in current.tags:
        champion_value = float(current.tags[registry.METRIC_TAG + metric])
    decision = registry.decide(value, champion_value, current_version, metric, mode, pc.min_delta)
    lock = lock_md5(paths)
    model_md5 = dvc_md5(model_dir) if model_dir.is_dir() else ""
    version = registry.register(
        uri,
        parent_run_id,
        model_dir,
        pc.model_name,
        metrics,
        tags={registry.LOCK_TAG: lock or "", registry.MODEL_MD5_TAG: model_md5, "v2v.run_id": parent_run_id},
        description=_description(cfg, (metric, mode), metrics, value, decision.reason, parent_run_id),
        logged_uri=registry.logged_model_uri(client, cfg.tracking.experiment, model_md5),
    )
    if decision.promote:
        client.set_registered_model_alias(pc.model_name, pc.alias, version)
    client.set_model_version_tag(pc.model_name, version, registry.PROMOTED_TAG, str(decision.promote).lower())
    client.set_registered_model_tag(pc.model_name, LAST_LOCK_TAG, lock or "")
    action = "promoted" if decision.promote else "kept"
    champion_now = version if decision.promote else (current_version or "")
    tags = {
        DECISION_TAG: action,
        REASON_TAG: decision.reason,
        "v2v.retrain.version": version,
        "v2v.retrain.champion": champion_now,
        "v2v.retrain.rule": f"{metric} ({mode}, min_delta {pc.min_delta:g}) from {pc.metrics_file}",
    }
    for key, text in tags.items():
        client.set_tag(parent_run_id, key, text)
    logger.info(
        "%s v%s: %s (%s %s v%s)", pc.model_name, version, decision.reason, pc.alias, action, champion_now or "-"
    )
    return {"decision": action, "reason": decision.reason, "version": version, "champion": champion_now}


def _metric_entities(metrics: dict[str, float]) -> list[Any]:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, value, now, 0) for key, value in metrics.items()]


def _description(
    cfg: Config, rule: tuple[str, str], metrics: dict[str, float], value: float, reason: str, run_id: str
) -> str:
    pc = cfg.promote
    shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())[:20]) or "none"
    return (
        f"vid2vid generator (task {cfg.train.task}) from retraining run {run_id}. "
        f"Rule: {rule[0]} ({rule[1]} is better, min_delta {pc.min_delta:g}) from {pc.metrics_file}; "
        f"value {value:.6g}; decision: {reason}. Metrics: {shown}. "
        "Input: generator conditions (T, C, H, W) float32; output: frames (T, 3, H, W) in [-1, 1]. "
        "Artifacts: model.pt (state dicts + config) and config.json; loading needs the v2v package."
    )


@flow(name="v2v-retrain", log_prints=True)
def v2v_retrain(root: str = ".", force: bool = False, check_only: bool = False) -> dict[str, Any]:
    """Retrain when raw data or params changed; register the model and apply the promotion rule.

    ``force`` runs (and decides) even when nothing changed; ``check_only`` only reports what would run.
    """
    logger = get_run_logger()
    paths = ProjectPaths.at(root)
    cfg = load_config(paths.params)
    pc = cfg.promote
    planned = check_changes(str(paths.root), force)
    wanted: list[str] = planned["stages"]
    for stage, what in planned["changed"].items():
        logger.info("changed: %s: %s", stage, "; ".join(what))
    if planned["decision"] == "skipped" or check_only:
        logger.info("%s: %s", planned["decision"], planned["reason"])
        return {k: planned[k] for k in ("decision", "reason", "stages")}
    logger.info("retraining: %s", ", ".join(wanted) or "no stage to run; deciding on the current model")
    with pipeline_run(cfg, paths, driver="prefect/retrain") as parent_run_id:
        assert parent_run_id is not None  # tracking is enabled
        client = open_client(tracking_uri(paths))
        client.set_tag(parent_run_id, "v2v.retrain.stages", ", ".join(wanted) or "-")
        results = []
        for number, stage in enumerate(wanted, 1):
            logger.info("[%d/%d] %s", number, len(wanted), stage)
            try:
                results.append(execute_stage(str(paths.root), stage, "dvc", parent_run_id, cfg.orchestrate.fanout, cfg))
            except Exception as exc:
                reason = f"stage {stage!r} failed; {pc.alias} not moved"
                client.set_tag(parent_run_id, DECISION_TAG, "failed")
                client.set_tag(parent_run_id, REASON_TAG, reason)
                logger.error("retraining failed: %s", reason)
                raise RetrainError(
                    f"retraining failed in stage {stage!r}; no model was registered and the {pc.alias!r} alias was "
                    f"not moved. Fix the error below, then run `v2v retrain` again (DVC reruns only what is not "
                    f"up to date; `dvc repro {stage}` reproduces it alone):\n{exc}"
                ) from exc
        outcome = promote(str(paths.root), parent_run_id)
    publish_artifacts(paths, parent_run_id, wanted)
    return {**outcome, "stages": wanted, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description="Retrain when data or params changed; promote only a better model.")
    parser.add_argument("--root", default=".", help="project folder")
    parser.add_argument("--force", action="store_true", help="run and decide even when nothing changed")
    parser.add_argument("--check", action="store_true", help="only report whether retraining would run")
    args = parser.parse_args()
    print(v2v_retrain(root=str(Path(args.root).resolve()), force=args.force, check_only=args.check))


if __name__ == "__main__":
    main()
