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
            return _map_dask(function, items, labels, address, workers, threads_per_task, retries, bar)
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
    bar: Any,
) -> list[Result]:
    from distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if address:
            client = stack.enter_context(Client(address))
        else:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",  # never listens beyond this machine
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        futures = [
            client.submit(_call, function, item, threads, pure=False, retries=retries, key=f"{label}-{index}")
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
