"""Per-video work on either executor: the same results in input order, retries, one model per process."""

import os
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import torch

from v2v.parallel import ParallelError, fixed_threads, gpu_need, map_videos, scoped_cache, worker_cache

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Dask workers cannot import tests/


def slow_square(item: int) -> tuple[int, int]:
    time.sleep(0.05 * (5 - item))  # the first items finish last
    return item, item * item


def fails_once(item: tuple[str, int]) -> int:
    """Raises the first time it sees this item (a marker file remembers), then answers."""
    folder, value = item
    marker = Path(folder) / f"tried-{value}"
    if not marker.exists():
        marker.write_text("once")
        raise RuntimeError(f"transient failure on {value}")
    return value + 100


def threads_inside(_: int) -> int:
    return torch.get_num_threads()


def test_serial_and_dask_give_the_same_results_in_input_order() -> None:
    items = list(range(5))
    serial = map_videos(slow_square, items, names=[f"v{i}" for i in items], progress=False)
    assert serial == [(i, i * i) for i in items]
    dask = map_videos(slow_square, items, executor="dask", workers=2, progress=False)
    assert dask == serial


def test_a_failed_task_is_retried_on_dask(tmp_path: Path) -> None:
    items = [(str(tmp_path), v) for v in (1, 2)]
    assert map_videos(fails_once, items, executor="dask", workers=1, retries=1, progress=False) == [101, 102]
    for marker in tmp_path.iterdir():
        marker.unlink()
    with pytest.raises(RuntimeError, match="transient failure on 1"):
        map_videos(fails_once, items[:1], executor="dask", workers=1, retries=0, progress=False)


def test_threads_are_fixed_inside_each_task_and_restored() -> None:
    before = torch.get_num_threads()
    assert map_videos(threads_inside, [0, 1], threads_per_task=1, progress=False) == [1, 1]
    assert map_videos(threads_inside, [0], executor="dask", workers=1, threads_per_task=2, progress=False) == [2]
    assert torch.get_num_threads() == before
    with fixed_threads(None):
        assert torch.get_num_threads() == before


def test_a_model_is_built_once_per_process() -> None:
    built: list[int] = []
    first = worker_cache("test-model-a", lambda: built.append(1) or object())
    assert worker_cache("test-model-a", lambda: built.append(1) or object()) is first and built == [1]
    assert worker_cache("test-model-b", object) is not first


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="orchestrate.executor: unknown executor 'ray'"):
        map_videos(slow_square, [1], executor="ray", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 names for 1 items"):
        map_videos(slow_square, [1], names=["a", "b"], progress=False)


def test_the_serial_executor_drops_the_models_its_tasks_loaded() -> None:
    """A stage's process (a test session, a Prefect flow) runs many stages: a model is not kept past its stage."""
    built: list[int] = []

    def load(item: int) -> int:
        return int(worker_cache("test-model", lambda: built.append(item) or len(built)))

    assert map_videos(load, [1, 2, 3], progress=False) == [1, 1, 1]  # built once for the three videos
    assert map_videos(load, [4], progress=False) == [2]  # and again for the next stage
    with scoped_cache():
        worker_cache("outer", lambda: "driver's")
        assert map_videos(load, [5], progress=False) == [3]
        assert worker_cache("outer", lambda: "rebuilt") == "driver's"  # an outer scope's entry survives
    with scoped_cache():
        assert worker_cache("outer", lambda: "rebuilt") == "rebuilt"  # the outer scope dropped its entry


def visible_device(_: int) -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def test_gpu_tasks_run_on_workers_pinned_one_per_device() -> None:
    """``orchestrate.gpus: 2`` on a CPU machine: the two workers advertise GPU=1 and see one device each (the
    pinning is all a CPU can check; the stages' CUDA path is for a GPU machine)."""
    seen = map_videos(visible_device, list(range(4)), executor="dask", workers=1, gpus=2, gpu="require", progress=False)
    assert set(seen) <= {"0", "1"} and None not in seen


def test_gpu_tasks_fail_fast_on_a_cluster_without_gpu_workers() -> None:
    started = time.perf_counter()
    with pytest.raises(
        ParallelError, match=r"no worker of the local Dask cluster .* advertises one; start one worker per device"
    ):
        map_videos(visible_device, [0], executor="dask", workers=1, gpus=0, gpu="require", progress=False)
    assert time.perf_counter() - started < 60  # an error, not a wait for a worker that never comes
    # device auto: the CPU workers run it
    assert map_videos(visible_device, [0], executor="dask", workers=1, gpus=0, gpu="auto", progress=False) == [None]


def test_which_tasks_need_a_gpu() -> None:
    assert gpu_need(learned=False, device="cuda") == "no"  # ground truth, OpenCV
    assert gpu_need(learned=True, device="cpu") == "no"
    assert gpu_need(learned=True, device="auto") == "auto"
    assert gpu_need(learned=True, device="cuda") == "require"


def exits_once(item: tuple[str, int]) -> int:
    """Kills its worker process the first time it sees this item (a marker file remembers), then answers."""
    folder, value = item
    marker = Path(folder) / f"died-{value}"
    if not marker.exists():
        marker.write_text("once")
        os._exit(1)
    return value + 200


def test_a_task_whose_worker_dies_is_rescheduled(tmp_path: Path) -> None:
    """Dask restarts the worker and runs the task again (no `retries` needed: a lost worker is not a task error)."""
    items = [(str(tmp_path), v) for v in (1, 2, 3)]
    assert map_videos(exits_once, items, executor="dask", workers=2, retries=0, progress=False) == [201, 202, 203]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["died-1", "died-2", "died-3"]
