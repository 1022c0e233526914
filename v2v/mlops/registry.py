"""The MLflow model registry: register a trained generator, and the promotion rule that moves the champion alias.

A registered version is an MLflow ``pyfunc`` model whose artifacts are the training stage's own files
(``model.pt``: state dicts + config, ``config.json``), with an honest signature: the input is the
per-frame generator conditions of one video, ``(T, C, H, W)`` float32 (C from the model config: one-hot
labels + instance boundaries, or edge/pose maps), the output its synthesised frames ``(T, 3, H, W)``
in [-1, 1], generated from the conditions alone as the ``generate`` stage does. Loading it needs this
package (``v2v``) importable, since the networks are defined here::

    model = mlflow.pyfunc.load_model("models:/v2v-generator@champion")
    frames = model.predict(conditions)  # numpy (T, C, H, W) float32 -> (T, 3, H, W)
    other = model.predict(conditions, params={"seed": 3})  # another appearance (feature-encoder models)

A model with a feature encoder (``model.feature_channels > 0``) paints its features from the feature
bank with appearance ``seed`` (param, default that of the ``generate`` stage). The conditions carry no
instance ids, so every region of one class gets one appearance: street models read the class of each
pixel from the one-hot label channels; edge and pose models have a single class.

The promotion rule (``promote`` in ``params.yaml``) compares one metric of the new model with the
champion's and moves the alias only when the new one is better by more than ``min_delta``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import mlflow.pyfunc
import numpy as np

from v2v.config import Config, ConfigError
from v2v.data.tasks import get_task
from v2v.mlops.tracking import MODEL_MD5_TAG, MODEL_URI_TAG

log = logging.getLogger(__name__)

METRIC_TAG = "v2v.metric."  # model version tags: v2v.metric.<key> = value, one per metric of the metrics file
LOCK_TAG = "v2v.dvc_lock_md5"  # md5 of dvc.lock when the version was evaluated (what "nothing changed" compares)
PROMOTED_TAG = "v2v.promoted"  # "true" when the rule moved the alias to this version
MODEL_FILES = ("model.pt", "config.json")


class PromotionError(RuntimeError):
    """The promotion rule cannot be applied (missing metrics file or key); the message names them."""


@dataclass(frozen=True)
class Decision:
    """What the promotion rule decided and why."""

    promote: bool
    reason: str
    value: float | None  # the new model's metric
    champion_value: float | None  # the champion's metric (None: no champion, or it lacks the metric)
    champion_version: str | None


def promotion_rule(cfg: Config) -> tuple[str, Literal["min", "max"]]:
    """``(metric, mode)`` of ``promote``, with ``auto`` resolved from ``train.task``'s verdict."""
    pc = cfg.promote
    verdict, better = get_task(cfg.train.task).verdict
    metric = verdict if pc.metric == "auto" else pc.metric
    if pc.mode != "auto":
        return metric, pc.mode
    if metric != verdict:
        raise ConfigError(
            f"params.yaml: promote.mode: auto knows the direction of the task's own metric ({verdict!r}) only; set "
            f"min or max for promote.metric {metric!r}"
        )
    return metric, better


def read_metric(metrics_file: Path, key: str) -> float:
    """The number at ``key`` (dots for nested keys) of the JSON ``metrics_file``."""
    if not metrics_file.is_file():
        raise PromotionError(
            f"{metrics_file}: metrics file not found; the pipeline should write it (promote.metrics_file names a "
            "stage's DVC metrics file, e.g. metrics/evaluate.json)"
        )
    node: Any = json.loads(metrics_file.read_text(encoding="utf-8"))
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            found = ", ".join(sorted(flat_metrics(json.loads(metrics_file.read_text(encoding="utf-8")))))
            raise PromotionError(f"{metrics_file}: no metric {key!r} (promote.metric); it has: {found}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise PromotionError(f"{metrics_file}: {key!r} is {node!r}, not a number (promote.metric)")
    return float(node)


def flat_metrics(data: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a metrics JSON, with dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1.0}``)."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flat_metrics(value, f"{prefix}{key}."))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        out[prefix.rstrip(".")] = float(data)
    return out


def decide(
    value: float,  # the new model's metric
    champion_value: float | None,  # the champion's (None: there is no champion, or it lacks this metric)
    champion_version: str | None,  # registry version of the champion (None: no champion)
    metric: str,  # metric name, for the reason
    mode: Literal["min", "max"],  # "min": lower is better
    min_delta: float,  # the improvement must exceed this
) -> Decision:
    """The promotion rule: promote only a finite value that beats the champion's by more than ``min_delta``."""
    better = "lower" if mode == "min" else "higher"
    if not math.isfinite(value):
        return Decision(False, f"{metric}={value} is not a finite number", value, champion_value, champion_version)
    if champion_version is None:
        return Decision(True, f"no champion yet; {metric}={value:.6g}", value, None, None)
    if champion_value is None or not math.isfinite(champion_value):
        return Decision(
            False,
            f"champion v{champion_version} has no {metric} to compare with; move the alias by hand if this model "
            "should replace it",
            value,
            champion_value,
            champion_version,
        )
    gain = champion_value - value if mode == "min" else value - champion_value
    verdict = f"{metric}={value:.6g} vs champion v{champion_version} {champion_value:.6g} ({better} is better"
    verdict += f", gain {gain:.6g}, min_delta {min_delta:g})"
    if gain > min_delta:
        return Decision(True, f"better: {verdict}", value, champion_value, champion_version)
    return Decision(False, f"not better: {verdict}", value, champion_value, champion_version)


class GeneratorModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """pyfunc wrapper: generator conditions ``(T, C, H, W)`` → synthesised frames ``(T, 3, H, W)`` in [-1, 1].

    The logged model is the sequential generator alone, so it makes its first frames itself (the ``hallucinate``
    policy of ``generate.first_frames``); the ``generate`` stage's ``single_g`` frames need ``models/baseline`` too.
    """

    def load_context(self, context: Any) -> None:
        import torch

        from v2v.generation.synthesis import load_model

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_model(Path(context.artifacts["model"]), self.device)

    def predict(self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        from v2v.generation.synthesis import APPEARANCE_SEED, generate_stream

        conditions = torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32))
        features = None
        if self.model.feature_bank is not None:
            seed = int((params or {}).get("seed", APPEARANCE_SEED))
            features = (self.model.features(self._class_ids(c), seed) for c in conditions)
        outputs = generate_stream(self.model.generator, conditions, self.device, features=features)
        return np.stack([out["fake"].float().cpu().numpy() for out in outputs])

    def _class_ids(self, condition: Any) -> Any:
        """``(H, W)`` class ids of one frame's conditions: argmax of the one-hot labels (street), else class 0."""
        import torch

        if not get_task(self.model.config["train"]["task"]).one_hot_labels:
            return torch.zeros(condition.shape[-2:], dtype=torch.int64)
        return condition[: self.model.config["model"]["label_classes"]].argmax(0)


def _preset(config: dict[str, Any]) -> Any:
    """The model settings a model file's ``config.json`` records."""
    from v2v.models.presets import ModelPreset

    fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config["model"].items()}
    return ModelPreset(**fields)


def signature(config: dict[str, Any]) -> Any:
    """Input ``(T, C, H, W)`` float32 with C from the model config; output ``(T, 3, H, W)`` float32."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    from v2v.generation.synthesis import APPEARANCE_SEED

    preset = _preset(config)
    channels = preset.label_channels  # the task's (v2v.data.tasks), recorded in the model's config
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, preset.image_channels, -1, -1))]),
        params=ParamSchema([ParamSpec("seed", "long", APPEARANCE_SEED)]),  # feature-bank appearance (E models)
    )


def pip_requirements() -> list[str]:
    """The installed versions of what loading the model needs (besides this package)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "numpy", "opencv-python-headless", "mlflow")]


def champion(client: Any, model_name: str, alias: str) -> Any | None:
    """The model version ``alias`` points at, or None (no such model or alias yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc):
            return None
        raise


def input_example(config: dict[str, Any]) -> np.ndarray:
    """Two frames of valid conditions at a small size the generator takes: one class everywhere (the one-hot
    labels of street models), empty maps otherwise. Small on purpose: MLflow stores it as JSON beside the model."""
    preset = _preset(config)
    side = 2 ** (preset.n_downsample_g + config["scale"] + 1)  # twice the size multiple: batch norm needs 2x2
    example = np.zeros((2, preset.label_channels, side, side), np.float32)
    if get_task(config["train"]["task"]).one_hot_labels:
        example[:, 0] = 1.0
    return example


def log_generator(uri: str, run_id: str, model_dir: Path, registered_name: str | None = None) -> Any:
    """Log a training stage's model (``model.pt`` + ``config.json``) as a pyfunc under ``run_id`` with its
    signature and an input example (MLflow checks the example through ``predict`` before saving), so the run
    has a Register button and ``mlflow models serve`` works; ``registered_name`` also registers it."""
    missing = [f for f in MODEL_FILES if not (model_dir / f).is_file()]
    if missing:
        raise PromotionError(f"{model_dir}: missing {', '.join(missing)}; the training stages write them")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    mlflow.set_tracking_uri(uri)  # the fluent API logs the model; this process uses the project's store anyway
    mlflow.set_registry_uri(uri)
    # ... and the run's experiment: resuming a run fails while the process has another active experiment
    mlflow.set_experiment(experiment_id=mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).info.experiment_id)
    with mlflow.start_run(run_id=run_id):  # resumes the open run (leaving it ends the run: undone below)
        info = mlflow.pyfunc.log_model(
            name="generator",
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),  # from code: nothing pickled
            artifacts={"model": str(model_dir / "model.pt"), "config": str(model_dir / "config.json")},
            signature=signature(config),
            input_example=input_example(config),
            pip_requirements=pip_requirements(),
            registered_model_name=registered_name,
            metadata={"v2v.task": config["train"]["task"], "v2v.scales": config["scale"] + 1},
        )
        mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    # leaving start_run() ended the run; whoever opened it (the stage, the flow) ends it, so it runs on
    mlflow.MlflowClient(tracking_uri=uri).update_run(run_id, status="RUNNING")
    return info


def logged_model_uri(client: Any, experiment: str, model_md5: str) -> str | None:
    """The model a training run of ``experiment`` logged with exactly this content (its ``v2v.model_md5`` tag,
    the DVC md5 of the model folder), or None (logged with ``tracking.log_model: false``, or by no run here)."""
    found = client.get_experiment_by_name(experiment)
    if found is None or not model_md5:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{MODEL_MD5_TAG}` = '{model_md5}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    return next((str(r.data.tags[MODEL_URI_TAG]) for r in runs if MODEL_URI_TAG in r.data.tags), None)


def register(
    uri: str,  # MLflow tracking (and registry) URI
    run_id: str,  # the MLflow run the model is logged under when no training run logged it (the retraining's)
    model_dir: Path,  # the training stage's output folder (model.pt + config.json)
    model_name: str,  # registered model name
    metrics: dict[str, float],  # the evaluation metrics: version tags and description
    tags: dict[str, str],  # further version tags (dvc.lock md5, model md5, ...)
    description: str,  # shown on the version page
    logged_uri: str | None = None,  # the model its training run logged, registered as it is
) -> str:
    """Register the model (the one its training run logged, else logged now under ``run_id``); returns the version.

    A version the training stage registered for the same logged model and no decision has used yet
    (:func:`awaiting_decision`) is the one decided on, not copied into a second version."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if logged_uri is not None:
        waiting = awaiting_decision(client, model_name, logged_uri)
        version = waiting or str(mlflow.register_model(logged_uri, model_name).version)
    else:
        version = str(log_generator(uri, run_id, model_dir, registered_name=model_name).registered_model_version)
    for key, value in {**{METRIC_TAG + k: v for k, v in metrics.items()}, **tags}.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    client.update_model_version(model_name, version, description=description)
    return version


def awaiting_decision(client: Any, model_name: str, logged_uri: str) -> str | None:
    """The version of ``model_name`` registered from ``logged_uri`` (by the training stage, at ``dvc repro``) that no
    promotion decision has tagged yet, or None."""
    try:
        found = client.search_model_versions(f"name = '{model_name}'")
    except mlflow.exceptions.MlflowException:
        return None
    waiting = [v for v in found if v.source == logged_uri and PROMOTED_TAG not in v.tags]
    return str(min(waiting, key=lambda v: int(v.version)).version) if waiting else None
