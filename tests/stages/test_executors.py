"""extract and the map stages on either executor (``orchestrate.executor``): the same bytes in the same folders, a bad
video reported by name while the others are written, and nothing rerun by DVC for a change of executor."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import small_config

from v2v.config import DASK_ADDRESS_ENV, Config, load_config
from v2v.mlops.dvcfile import load_stages
from v2v.paths import ProjectPaths
from v2v.stages import edges, extract, flow, pose, segment
from v2v.stages.common import StageError

SAMPLE = {"width": 64, "height": 32, "num_frames": 6, "train_clips_per_scene": 1, "test_clips_per_scene": 0}
REPO = Path(__file__).resolve().parents[2]


def config(**sections: dict[str, Any]) -> Config:
    return small_config(SAMPLE, **sections)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A running Dask cluster (two single-threaded worker processes on 127.0.0.1), as a user's would be: the
    stages find it through ``orchestrate.dask_address``."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as running:
        yield running.scheduler_address


def on(executor: str, address: str | None = None, task: str = "street") -> Config:
    """This process, or the cluster at ``address``."""
    return config(orchestrate={"executor": executor, "dask_address": address}, train={"task": task})


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def run_map_stages(paths: ProjectPaths, executor: str, address: str | None = None) -> None:
    segment.run(on(executor, address), paths)
    edges.run(on(executor, address, task="edges"), paths)
    pose.run(on(executor, address, task="pose"), paths)
    flow.run(on(executor, address), paths)


def test_every_per_video_stage_writes_the_same_bytes_on_dask_as_serially(
    base_project: Path, tmp_path: Path, cluster: str
) -> None:
    serial, dask = (ProjectPaths.at(shutil.copytree(base_project, tmp_path / name)) for name in ("serial", "dask"))
    shutil.rmtree(dask.frames)
    extract.run(on("dask", cluster), dask)  # the frames too
    assert digests(dask.frames) == digests(serial.frames)
    run_map_stages(serial, "serial")
    run_map_stages(dask, "dask", cluster)
    for folder in ("data/maps/segment", "data/maps/edges", "data/maps/pose", "data/flow"):
        written = digests(serial.root / folder)
        assert len(written) > 10, folder
        assert digests(dask.root / folder) == written, f"{folder} differs between the executors"
    assert (dask.segment_maps / "street_000" / "label" / "000005.png").is_file()


def test_a_bad_video_comes_back_by_name_from_a_dask_worker(base_project: Path, tmp_path: Path, cluster: str) -> None:
    paths = ProjectPaths.at(shutil.copytree(base_project, tmp_path / "project"))
    (paths.frames / "street_000" / "000003.png").write_bytes(b"not a png")
    with pytest.raises(StageError) as failure:
        edges.run(on("dask", cluster, task="edges"), paths)
    message = str(failure.value)
    assert "1 video(s) failed in the edges stage" in message and "street_000" in message and "000003.png" in message
    assert (paths.edge_maps / "pose_000" / "meta.json").is_file()  # the other video's maps are written
    assert not (paths.edge_maps / "street_000").exists()  # and nothing half-written is left for the bad one
    assert not [p for p in paths.edge_maps.iterdir() if p.name.startswith(".")]


def test_the_executor_keys_are_runtime_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No DVC stage depends on ``orchestrate``: choosing an executor reruns nothing."""
    for name, stage in load_stages(REPO).items():
        assert not [key for key in stage.params if key.startswith("orchestrate")], name
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["orchestrate"].update(executor="dask", dask_address="tcp://10.0.0.5:8786", threads_per_task=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    oc = load_config(tmp_path / "params.yaml").orchestrate
    assert oc.map_options() == {
        "executor": "dask",
        "address": "tcp://10.0.0.5:8786",
        "workers": 2,
        "threads_per_task": 2,
        "retries": 1,
        "gpus": None,
    }
    monkeypatch.setenv(DASK_ADDRESS_ENV, "tcp://127.0.0.1:9999")  # one shared params file, another cluster
    assert oc.map_options()["address"] == "tcp://127.0.0.1:9999"
