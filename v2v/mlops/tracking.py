"""MLflow tracking: one run per stage execution, grouped under one parent run per pipeline execution.

The store is ``MLFLOW_TRACKING_URI`` when set, else an embedded SQLite store with a local artifact
folder inside the project (``mlruns/``). Grouping:

* ``V2V_PARENT_RUN_ID`` set (the Prefect flow, ``v2v pipeline``): stage runs nest under that run.
* Run by ``dvc repro``: DVC starts every stage from one ``dvc`` process; the first stage opens a
  parent run tagged with that process's identity (``v2v.pipeline_key``) and later stages of the
  same ``dvc repro`` find it, so one execution is one parent run with one child per stage.
* Otherwise (a stage run by hand) the stage run stands alone.

Every stage run carries its params section, the git commit (and whether the tree was dirty), and
the DVC-style md5 of each input the stage declares in ``dvc.yaml`` (``v2v.dep.<path>``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from v2v.config import Config, flatten, to_dict
from v2v.io.files import dvc_md5
from v2v.mlops.dvcfile import load_stages
from v2v.paths import ProjectPaths

log = logging.getLogger(__name__)

PARENT_ENV = "V2V_PARENT_RUN_ID"
PIPELINE_KEY_ENV = "V2V_PIPELINE_KEY"
PIPELINE_KEY_TAG = "v2v.pipeline_key"
PARAMS_PER_BATCH = 100  # MLflow accepts at most 100 params per log_batch call
MODEL_URI_TAG = "v2v.model_uri"  # on a training run: the pyfunc model it logged (models:/<id>)
MODEL_MD5_TAG = "v2v.model_md5"  # on a training run and a model version: the DVC md5 of the model folder
PARENT_HEADLINE = ("loss/g_total", "loss/d_total")  # a stage's own metrics also logged on the parent run
GIT_TAGS = ("v2v.git_commit", "mlflow.source.git.commit", "v2v.git_dirty")
# MLflow 3 opens an experiment without this tag in its GenAI view; ours is classic model training
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
KNOWN_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


class TrackingError(RuntimeError):
    """The MLflow store cannot be used; the message names the URI and what to do."""


def health_failure(base_url: str, timeout: float) -> str | None:
    """Why the server at ``base_url`` does not answer on ``/health`` (MLflow's and Prefect's), or None when it does."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/health", timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def uri_scheme(uri: str) -> str:
    """``sqlite``, ``http``, ``postgresql``, ... of a tracking URI; a plain path is MLflow's ``file`` store."""
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri or uri.startswith("sqlite:") else "file"


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming ``uri``, when it has an unknown scheme or names a server that does not answer.

    MLflow itself retries an unreachable server for minutes before giving up; this probes its
    ``/health`` endpoint once with a short timeout instead.
    """
    scheme = uri_scheme(uri)
    if scheme not in KNOWN_SCHEMES:
        raise TrackingError(
            f"MLflow tracking URI {uri!r} has an unknown scheme {scheme!r}; use sqlite:///path/mlflow.db, "
            "http://host:port of an MLflow server, or unset MLFLOW_TRACKING_URI to use the project's mlruns/mlflow.db"
        )
    if scheme in ("http", "https") and (reason := health_failure(uri, timeout)) is not None:
        raise TrackingError(
            f"MLflow tracking server {uri} is not reachable ({reason}); start it (`v2v ui --port PORT`, or "
            "`mlflow server --host 127.0.0.1 --port PORT --backend-store-uri sqlite:///mlruns/mlflow.db`) "
            "or unset MLFLOW_TRACKING_URI to use the project's embedded store mlruns/mlflow.db"
        )


def open_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` after :func:`check_tracking_uri`."""
    from mlflow import MlflowClient

    check_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def log_params_batched(client: Any, run_id: str, params: Mapping[str, Any]) -> None:
    """Log ``params`` (any number) on a run, 100 per request."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + PARAMS_PER_BATCH])


def tracking_uri(paths: ProjectPaths) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's embedded SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    paths.mlflow_db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.mlflow_db}"


def classic_view_url(base: str, experiment_id: str | None) -> str:
    """The MLflow UI page of an experiment in the classic view (runs, metrics, registry): MLflow 3 opens
    experiments in its GenAI view unless the page asks for the machine-learning workflow."""
    if experiment_id is None:
        return f"{base}/#/experiments?workflowType=machine_learning"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def wait_for_server(base: str, seconds: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll ``base``/health until it answers (True), ``seconds`` pass or ``alive()`` says the server died (False)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while alive() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def local_artifact_root(uri: str) -> str | None:
    """A local SQLite store keeps its artifacts in ``artifacts/`` beside the database; a server decides itself."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()


def git_state(root: Path) -> dict[str, str]:
    """Commit and dirtiness of the project's git checkout (empty when not a git repo)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {
        "v2v.git_commit": commit,
        "mlflow.source.git.commit": commit,
        "v2v.git_dirty": str(bool(dirty)).lower(),
    }


def source_tags(name: str) -> dict[str, str]:
    """MLflow's own context tags (Source and User columns), which ``client.create_run`` does not set itself."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"mlflow.source.name": name, "mlflow.source.type": "LOCAL", "mlflow.user": user}


def inherited_git(client: Any, parent: str | None, root: Path) -> dict[str, str]:
    """The git state measured when the pipeline execution started (its parent run's tags), else measured now.

    Measured once: during a ``dvc repro`` the lock file and the metrics files DVC tracks in git change after
    every stage, which is the pipeline's own doing, not a change of the user's.
    """
    if parent:
        tags = client.get_run(parent).data.tags
        inherited = {k: tags[k] for k in GIT_TAGS if k in tags}
        if inherited:
            return inherited
    return git_state(root)


def dvc_pipeline_key() -> str | None:
    """Identity of the ``dvc`` process that started this stage (same for all stages of one ``dvc repro``)."""
    if os.environ.get(PIPELINE_KEY_ENV):
        return os.environ[PIPELINE_KEY_ENV]
    if "DVC_STAGE" not in os.environ:
        return None
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            cmd = proc.cmdline()
            if any(Path(part).name == "dvc" for part in cmd[:3]) or cmd[1:3] == ["-m", "dvc"]:
                return f"dvc-{proc.pid}-{int(proc.create_time())}"
            proc = proc.parent()
    except (ImportError, OSError, psutil.Error):
        return None
    return None


def stage_inputs(paths: ProjectPaths, stage: str, params: Mapping[str, Any]) -> dict[str, str]:
    """DVC md5 of each existing dep the stage declares in ``dvc.yaml``."""
    if not paths.dvc_file.is_file():
        return {}
    stages = load_stages(paths.root, dict(params))
    if stage not in stages:
        return {}
    hashes = {}
    for dep in stages[stage].deps:
        full = paths.root / dep
        if full.exists():
            hashes[f"v2v.dep.{dep}"] = dvc_md5(full)
    return hashes


class StageRun:
    """Logging handle of one stage execution (a no-op when tracking is disabled)."""

    def __init__(
        self, client: Any | None, run_id: str | None, parent_id: str | None = None, uri: str | None = None
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.parent_id = parent_id  # the pipeline execution's run, when there is one
        self.uri = uri
        self.inputs: dict[str, str] = {}  # DVC md5 of each declared input, by its path in dvc.yaml

    @contextlib.contextmanager
    def system_metrics(self, interval: float = 10.0) -> Iterator[None]:
        """Sample CPU, memory, disk, network (and GPU with ``pynvml``) into the run's ``system/*`` metrics."""
        if self.client is None or interval <= 0:
            yield
            return
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(self.run_id, sampling_interval=interval, tracking_uri=self.uri)
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()

    def log_dataset(self, folder: Path, name: str, context: str) -> None:
        """Record ``folder`` as a dataset input of the run (MLflow's Dataset column), ``context`` e.g. ``training``;
        its digest is the folder's DVC md5 (the ``v2v.dep.<path>`` tag when the stage declares it)."""
        if self.client is None:
            return
        import warnings

        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        digest = next((md5 for dep, md5 in self.inputs.items() if folder.as_posix().endswith("/" + dep)), None)
        digest = (digest or dvc_md5(folder)).removesuffix(".dir")
        # silenced: "can be interpreted in multiple ways" (MLflow registers its local source twice)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(str(folder))
        dataset = MetaDataset(source, name=name, digest=digest[:36])  # type: ignore[abstract]
        tag = InputTag(key="mlflow.data.context", value=context)
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[tag])])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None, on_parent: bool = False) -> None:
        """Log to this stage's run; ``on_parent`` also to the pipeline execution's parent run, so pipeline runs
        compare on them in the MLflow UI (the evaluation's quality figures)."""
        if self.client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)
        if on_parent and self.parent_id:
            self.client.log_batch(self.parent_id, metrics=batch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.client is None:
            return
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if self.client is None:
            return
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_image(self, rgb: np.ndarray, artifact_file: str) -> None:
        """Log an RGB uint8 image as a PNG artifact (``artifact_file`` like ``previews/frames.png``)."""
        if self.client is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(artifact_file).name
            if not cv2.imwrite(str(local), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot encode the image artifact {artifact_file}")
            self.log_artifact(local, str(Path(artifact_file).parent) if "/" in artifact_file else None)


def _experiment_id(client: Any, name: str, paths: ProjectPaths, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return str(experiment.experiment_id)
    # a local SQLite store keeps its artifacts beside the database; a server decides for itself
    location = (
        (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri() if uri.startswith("sqlite:///") else None
    )
    try:
        return str(
            client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        )
    except Exception:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


@contextlib.contextmanager
def pipeline_run(cfg: Config, paths: ProjectPaths, driver: str) -> Iterator[str | None]:
    """Open the parent run of one pipeline execution and yield its id (None when tracking is off).

    Stages started while it is open nest under it (via ``V2V_PARENT_RUN_ID``, set here for this
    process and passed on to stage subprocesses by the caller).
    """
    if not cfg.tracking.enabled:
        yield None
        return
    uri = tracking_uri(paths)
    client = open_client(uri)
    experiment_id = _experiment_id(client, cfg.tracking.experiment, paths, uri)
    tags = {"v2v.driver": driver, **git_state(paths.root), **source_tags(f"v2v pipeline ({driver})")}
    run = client.create_run(experiment_id, run_name=f"pipeline {time.strftime('%Y-%m-%d %H:%M:%S')}", tags=tags)
    log_params_batched(client, run.info.run_id, flatten(to_dict(cfg)))  # every param, for `v2v compare`
    previous = os.environ.get(PARENT_ENV)
    os.environ[PARENT_ENV] = run.info.run_id
    try:
        yield str(run.info.run_id)
    except BaseException as exc:
        client.set_tag(run.info.run_id, "v2v.error", f"{type(exc).__name__}: {exc}"[:5000])
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    finally:
        if previous is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = previous
    client.set_terminated(run.info.run_id, "FINISHED")


def _parent_run(
    client: Any, experiment_id: str, tags: Mapping[str, str], params: Mapping[str, Any] | None = None
) -> str | None:
    if os.environ.get(PARENT_ENV):
        return os.environ[PARENT_ENV]
    key = dvc_pipeline_key()
    if key is None:
        return None
    found = client.search_runs([experiment_id], filter_string=f"tags.`{PIPELINE_KEY_TAG}` = '{key}'", max_results=1)
    if found:
        return str(found[0].info.run_id)
    run = client.create_run(
        experiment_id,
        run_name=f"pipeline {time.strftime('%Y-%m-%d %H:%M:%S')}",
        tags={PIPELINE_KEY_TAG: key, "v2v.driver": "dvc repro", **tags, **source_tags("dvc repro")},
    )
    if params:
        log_params_batched(client, run.info.run_id, flatten(params))  # every param, for `v2v compare`
    return str(run.info.run_id)


@contextlib.contextmanager
def stage_run(stage: str, cfg: Config, paths: ProjectPaths, sections: tuple[str, ...]) -> Iterator[StageRun]:
    """Open the MLflow run of one stage execution; it ends FINISHED, or FAILED with the error.

    ``sections`` are the params sections the stage reads; they are logged as the run's params.
    """
    if not cfg.tracking.enabled:
        yield StageRun(None, None)
        return
    uri = tracking_uri(paths)
    client = open_client(uri)
    experiment_id = _experiment_id(client, cfg.tracking.experiment, paths, uri)
    params_dict = to_dict(cfg)
    parent = _parent_run(client, experiment_id, git_state(paths.root), params_dict)
    git = inherited_git(client, parent, paths.root)
    tags = {"v2v.stage": stage, **git, **source_tags(f"python -m v2v.stages.{stage}")}
    inputs = stage_inputs(paths, stage, params_dict)
    tags |= inputs
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, run_name=stage, tags=tags)
    handle = StageRun(client, run.info.run_id, parent, uri)
    handle.inputs = {k.removeprefix("v2v.dep."): v for k, v in inputs.items()}
    handle.log_params(flatten({s: params_dict[s] for s in sections}))
    started = time.perf_counter()
    try:
        yield handle
    except BaseException as exc:
        handle.set_tags({"v2v.error": f"{type(exc).__name__}: {exc}"[:5000]})
        client.set_terminated(run.info.run_id, "FAILED")
        if parent and not os.environ.get(PARENT_ENV):
            client.set_terminated(parent, "FAILED")
        raise
    seconds = time.perf_counter() - started
    handle.log_metrics({"stage_seconds": seconds})
    if parent:  # the execution's row in the UI compares on these too: each stage's duration, training's last losses
        own = client.get_run(run.info.run_id).data.metrics
        headline = {f"{stage}.{k.replace('/', '_')}": v for k, v in own.items() if k in PARENT_HEADLINE}
        # durations under timing/: MLflow sorts and groups metrics by name, so the quality figures (evaluate.*) lead
        StageRun(client, parent).log_metrics({f"timing/{stage}_seconds": seconds, **headline})
    client.set_terminated(run.info.run_id, "FINISHED")
    if parent and not os.environ.get(PARENT_ENV):
        client.set_terminated(parent, "FINISHED")  # a later stage of the same dvc repro may extend it
    log.info("MLflow run %s (%s) logged to %s", run.info.run_id, stage, uri)
