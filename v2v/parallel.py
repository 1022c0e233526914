"""Per-video work, one way: a pure function mapped over the videos, in this process or on a Dask cluster.

A heavy stage is a driver (discovery, reuse checks, index, metrics, MLflow, contact sheets) plus one
pure function per video whose unit of output is that video's folder, written atomically. This module
maps such a function over the videos:

* ``serial``: one after another in this process (the default; what a laptop wants);
* ``dask``: each video a task on a Dask cluster — a ``LocalCluster`` of ``workers`` processes started
  here, or the scheduler at ``address`` (a cluster you run) — results gathered in input order, so the
  driver cannot tell the backends apart. Failed tasks are retried ``retries`` times (Dask also
  reschedules the tasks of a worker that dies); the output folders are written atomically and
  identically by any attempt, so a duplicate attempt is harmless.

Both show one progress bar that advances as each video completes and names it. ``threads_per_task``
fixes torch's and OpenCV's threads inside every task on both backends (results must not depend on
the executor; LocalCluster workers otherwise start with one thread). :func:`worker_cache` keeps a
loaded model per process (a worker builds the segmenter once, not once per video).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")
Executor = Literal["serial", "dask"]
GpuNeed = Literal["no", "auto", "require"]


class ParallelError(RuntimeError):
    """The executor cannot run the work as asked (e.g. GPU tasks on a cluster without GPU workers)."""


_CACHE: dict[str, Any] = {}  # this process's (or this worker's) loaded models, by key
_CACHE_LOCK = threading.Lock()


def worker_cache(key: str, build: Callable[[], Any]) -> Any:
    """The object cached under ``key`` in this process, built by ``build`` on first use (a model loaded once
    per worker process, not once per video). The key must say everything the object depends on (weights,
    device, settings)."""
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = build()
        return _CACHE[key]


@contextlib.contextmanager
def scoped_cache() -> Iterator[None]:
    """What :func:`worker_cache` adds inside the block is dropped at its end: in a stage's own process (serial
    tasks, the driver) a model lives as long as the stage's work, since a test session or a Prefect flow runs many
    stages in one process and a weights file may change between them. A Dask worker keeps its cache."""
    with _CACHE_LOCK:
        before = set(_CACHE)
    try:
        yield
    finally:
        with _CACHE_LOCK:
            for key in set(_CACHE) - before:
                del _CACHE[key]


@contextlib.contextmanager
def fixed_threads(threads: int | None) -> Iterator[None]:
    """torch's and OpenCV's intra-op threads set to ``threads`` inside the block (None: left as they are)."""
    if threads is None:
        yield
        return
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def _call(function: Callable[[Item], Result], item: Item, threads: int | None) -> Result:
    with fixed_threads(threads):
        return function(item)


def map_videos(
    function: Callable[[Item], Result],  # pure per-video work: picklable for dask (a module-level function)
    items: Sequence[Item],  # one per video
    *,
    names: Sequence[str] | None = None,  # shown by the progress bar as each completes (default: the index)
    executor: Executor = "serial",
    address: str | None = None,  # dask: a running scheduler (tcp://host:8786); None starts a LocalCluster
    workers: int = 2,  # dask without address: LocalCluster worker processes
    threads_per_task: int | None = None,  # torch/OpenCV threads inside each task (None: the process default)
    retries: int = 0,  # dask: attempts after a failure
    gpus: int | None = None,  # dask without address: LocalCluster workers pinned to one GPU each (None: all GPUs)
    gpu: GpuNeed = "no",  # dask: the task runs on a worker advertising a GPU ("require"; "auto": when there is one)
    desc: str = "videos",
    progress: bool = True,
) -> list[Result]:
    """``[function(item) for item in items]``, in input order, on the chosen executor."""
    labels = list(names) if names is not None else [str(i) for i in range(len(items))]
    if len(labels) != len(items):
        raise ValueError(f"map_videos: {len(labels)} names for {len(items)} items")
    if not items:  # nothing to compute: no cluster is started
        return []
    bar = tqdm(total=len(items), desc=desc, unit="video", disable=not progress)
    try:
        if executor == "serial":
            out: list[Result] = []
            with scoped_cache():
                for item, name in zip(items, labels, strict=True):
                    out.append(_call(function, item, threads_per_task))
                    bar.set_postfix_str(name, refresh=False)
                    bar.update()
            return out
        if executor == "dask":
            return _map_dask(function, items, labels, address, workers, threads_per_task, retries, gpus, gpu, bar)
        raise ValueError(f"orchestrate.executor: unknown executor {executor!r}; use serial or dask")
    finally:
        bar.close()


def _map_dask(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    labels: list[str],
    address: str | None,
    workers: int,
    threads: int | None,
    retries: int,
    gpus: int | None,
    gpu: GpuNeed,
    bar: Any,
) -> list[Result]:
    from distributed import Client, as_completed

    with contextlib.ExitStack() as stack:
        if address:
            client = stack.enter_context(Client(address))
        else:
            client = stack.enter_context(Client(stack.enter_context(local_cluster(workers, gpus))))
        resources = _gpu_resources(client, gpu, address)
        futures = [
            client.submit(
                _call, function, item, threads, pure=False, retries=retries, key=f"{label}-{index}", resources=resources
            )
            for index, (item, label) in enumerate(zip(items, labels, strict=True))
        ]
        position = {future.key: index for index, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for future in as_completed(futures):
            index = position[future.key]
            results[index] = future.result()  # a task's own exception is raised here, after its retries
            bar.set_postfix_str(labels[index], refresh=False)
            bar.update()
        return results


def gpu_need(learned: bool, device: str) -> GpuNeed:
    """Where a stage's tasks run on a cluster: a learned backend on ``device: cuda`` needs a GPU worker, on ``auto``
    takes one when the cluster has any; ground truth, OpenCV and ``device: cpu`` run anywhere."""
    if not learned or device == "cpu":
        return "no"
    return "require" if device == "cuda" else "auto"


def visible_gpus() -> int:
    """CUDA devices this process sees (0 without torch's CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_cluster(workers: int, gpus: int | None = None) -> Any:
    """A Dask cluster on this machine, listening on 127.0.0.1 only: ``max(workers, gpus)`` single-threaded worker
    processes, the first ``gpus`` (None: every visible device) each pinned to its own device
    (``CUDA_VISIBLE_DEVICES``) and advertising the resource ``GPU=1``, so GPU tasks run one per device."""
    from distributed import Nanny, Scheduler, SpecCluster

    gpus = visible_gpus() if gpus is None else gpus
    specs = {}
    for index in range(max(workers, gpus)):
        options: dict[str, Any] = {"nthreads": 1, "host": "127.0.0.1"}
        if index < gpus:
            options |= {"resources": {"GPU": 1}, "env": {"CUDA_VISIBLE_DEVICES": str(index)}}
        specs[f"{'gpu' if index < gpus else 'cpu'}-{index}"] = {"cls": Nanny, "options": options}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    return SpecCluster(workers=specs, scheduler=scheduler, name="v2v")


def _gpu_resources(client: Any, gpu: GpuNeed, address: str | None) -> dict[str, int] | None:
    """``{"GPU": 1}`` when the tasks should run on GPU workers; fails fast (instead of waiting forever for a worker
    that will never come) when they need one and no worker of the cluster advertises it."""
    if gpu == "no":
        return None
    advertised = any(w.get("resources", {}).get("GPU") for w in client.scheduler_info()["workers"].values())
    if advertised:
        return {"GPU": 1}
    if gpu == "require":
        where = (
            f"the Dask cluster at {address}"
            if address
            else "the local Dask cluster (orchestrate.gpus 0, or no GPU here)"
        )
        raise ParallelError(
            f"the stage asks for a GPU (device: cuda) but no worker of {where} advertises one; start one worker per "
            "device with `CUDA_VISIBLE_DEVICES=<i> dask worker <scheduler> --nthreads 1 --resources GPU=1`, or set "
            "the stage's device to auto or cpu"
        )
    return None  # auto: the workers have no GPU, the backend runs on their CPUs
