"""Per-video preprocessing fan-out: the extract stage's videos as Prefect tasks mapped on a Dask cluster.

The stage itself (:func:`v2v.stages.extract.run`: discovery, ``index.json``, metrics, MLflow) runs in
the flow's process; only :func:`v2v.stages.extract.extract_one` per video runs on the Dask workers, so
the outputs are the ones the sequential stage writes (each video folder still appears atomically).
With the DVC driver the flow runs it only when ``dvc status extract`` says it changed and then records
the result with ``dvc commit extract``, so ``dvc.lock`` stays as ``dvc repro`` would leave it.

Examples::

    v2v pipeline --fanout dask                                 # a LocalCluster of orchestrate.dask_workers
    dask scheduler --host 127.0.0.1 --port 8786 &               # or a cluster you run: scheduler + workers
    dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1 &
    # then set orchestrate.dask_address: tcp://127.0.0.1:8786 in params.yaml and run
    v2v pipeline --fanout dask
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect_dask import DaskTaskRunner
from tqdm import tqdm

from pipelines.commands import dvc, dvc_status
from v2v.config import load_config
from v2v.paths import ProjectPaths
from v2v.preprocess.extract import VideoSource
from v2v.stages import extract
from v2v.stages.common import stage_lock

FANOUT_STAGES = ("extract",)  # stages whose per-video work can fan out


def reporting_api_url() -> str:
    """The API this process reports to: PREFECT_API_URL, or the temporary server Prefect started for it."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


def dask_task_runner(address: str | None, workers: int) -> DaskTaskRunner:
    """A runner on the Dask scheduler at ``address``, or on a new LocalCluster of ``workers`` processes.

    LocalCluster workers report their task runs to this process's Prefect API (without it, each worker
    would start a temporary Prefect server of its own: ~20 s each, and the task runs lost with it). Workers
    of a cluster at ``address`` need ``PREFECT_API_URL`` of a Prefect server they can reach in their own
    environment.
    """
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,  # extract already overlaps decoding with writer threads
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "env": {"PREFECT_API_URL": reporting_api_url()},
        },
    )


@task(name="extract-video", task_run_name="extract {source.video_id}", retries=1, retry_delay_seconds=2)
def extract_video_task(source: VideoSource, **constants: Any) -> dict[str, Any]:
    """One video's frames (on a Dask worker); errors come back as data, as in the sequential stage."""
    return extract.extract_one(source, progress=False, **constants)


def map_prefect(function: Any, sources: list[VideoSource], **constants: Any) -> list[dict[str, Any]]:
    """``map_videos`` for :func:`v2v.stages.extract.run`: one mapped task per video on the flow's task runner."""
    if function is not extract.extract_one:
        raise ValueError(f"map_prefect maps extract_one only, not {function!r}")
    same: dict[str, Any] = {key: unmapped(value) for key, value in constants.items()}  # not mapped over
    futures = extract_video_task.map(sources, **same)
    return [future.result() for future in tqdm(futures, desc="extract (dask)", unit="video")]


@flow(name="v2v-extract-fanout")
def extract_fanout(root: str) -> dict[str, Any]:
    """The extract stage with its per-video work mapped on the flow's task runner (give it a DaskTaskRunner)."""
    paths = ProjectPaths.at(root)
    with stage_lock(paths, "extract"):  # as `python -m v2v.stages.extract` holds it
        return extract.run(load_config(paths.params), paths, map_videos=map_prefect)


def run_fanout(root: str, stage: str, driver: str, address: str | None, workers: int) -> str:
    """Run ``stage`` with its per-video work on Dask; with ``driver="dvc"`` only when DVC says it changed."""
    if stage not in FANOUT_STAGES:
        raise ValueError(f"stage {stage!r} has no per-video fan-out; stages that have: {', '.join(FANOUT_STAGES)}")
    logger = get_run_logger()
    if driver == "dvc" and not dvc_status(root, stage):
        logger.info("%s: up to date", stage)
        return f"{stage}: up to date"
    where = address or f"a LocalCluster of {workers} worker(s)"
    logger.info("%s: per-video work on Dask (%s)", stage, where)
    runner: Any = dask_task_runner(address, workers)  # a TaskRunner of Dask futures
    extract_fanout.with_options(task_runner=runner)(root=str(Path(root)))
    if driver == "dvc":
        dvc(root, "commit", "--force", stage)  # dvc.lock records the outputs as `dvc repro` would
    return f"{stage}: ran (dask)"
