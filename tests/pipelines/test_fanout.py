"""Per-video extract fan-out on a local Dask cluster (2 workers) writes exactly what the sequential stage writes."""

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support import suite_config

from pipelines.fanout import dask_task_runner, extract_fanout, map_prefect
from v2v.io.files import dvc_md5
from v2v.paths import ProjectPaths
from v2v.stages import extract

VIDEOS = {"train/a.mp4": 0, "train/b clip.mp4": 1, "test/c.mp4": 2, "d.mp4": 3, "e.mp4": 4}


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make_project(root: Path, videos: Path) -> ProjectPaths:
    shutil.copytree(videos, root / "videos")  # the same input bytes in both projects
    params = "extract:\n  input_dir: videos\n  width: 64\n  height: 32\n  on_error: skip\ntracking:\n  enabled: false\n"
    (root / "params.yaml").write_text(params)
    return ProjectPaths.at(root)


def differences(a: Path, b: Path) -> str:
    """Which videos' folders differ, with both meta.json (decoder, source hash): for the failure message."""
    ha, hb = file_hashes(a), file_hashes(b)
    videos = sorted({k.split("/")[0] for k in set(ha) ^ set(hb) | {k for k in ha if ha[k] != hb.get(k)}})
    return "\n".join(f"{v}: {(a / v / 'meta.json').read_text()} vs {(b / v / 'meta.json').read_text()}" for v in videos)


@pytest.mark.usefixtures("prefect_harness")
def test_dask_fanout_matches_sequential(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    for name, seed in VIDEOS.items():
        make_video(tmp_path / "videos" / name, num_frames=7, width=96, height=64, seed=seed)
    (tmp_path / "videos" / "broken.mp4").write_text("not a video")
    sequential = make_project(tmp_path / "seq", tmp_path / "videos")
    fanned = make_project(tmp_path / "dask", tmp_path / "videos")
    cfg = suite_config(
        {
            "extract": {"input_dir": "videos", "width": 64, "height": 32, "on_error": "skip"},
            "tracking": {"enabled": False},
        }
    )
    expected = extract.run(cfg, sequential)

    metrics = extract_fanout.with_options(task_runner=dask_task_runner(None, workers=2))(root=str(fanned.root))

    volatile = {"seconds", "frames_per_second"}
    assert {k: v for k, v in metrics.items() if k not in volatile} == {
        k: v for k, v in expected.items() if k not in volatile
    }
    assert metrics["videos"] == 5 and metrics["videos_failed"] == 1
    hashes = file_hashes(fanned.frames)
    assert len([p for p in hashes if p.endswith(".jpg")]) == 5 * 7
    assert hashes.pop("index.json") != ""  # it names the broken video by its absolute path: compared below
    expected_hashes = {k: v for k, v in file_hashes(sequential.frames).items() if k != "index.json"}
    assert hashes == expected_hashes, differences(fanned.frames, sequential.frames)  # byte for byte
    index = fanned.frames_index.read_text().replace(str(fanned.root), "ROOT")
    assert index == sequential.frames_index.read_text().replace(str(sequential.root), "ROOT")
    assert "broken.mp4: cannot decode" in index
    assert not [p for p in fanned.frames.iterdir() if p.name.startswith(".tmp-")]


def test_map_prefect_maps_only_extract() -> None:
    with pytest.raises(ValueError, match="maps extract_one only"):
        map_prefect(print, [])


@pytest.mark.slow  # ~70 s: a Prefect harness, the sample stage and a Dask cluster
@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_fanout_keeps_dvc_lock_current(dvc_project: Path, dvc: Callable[..., str]) -> None:
    """`v2v pipeline --fanout dask` with the DVC driver: extract on Dask, then `dvc commit`, as `dvc repro` would."""
    from pipelines.flow import v2v_pipeline

    stages = ["sample", "extract"]
    assert v2v_pipeline(root=str(dvc_project), stages=stages, driver="dvc", fanout="dask") == [
        "sample: ran",
        "extract: ran (dask)",
    ]
    lock = yaml.safe_load((dvc_project / "dvc.lock").read_text())
    (frames,) = [o for o in lock["stages"]["extract"]["outs"] if o["path"] == "data/frames"]
    assert frames["md5"] == dvc_md5(dvc_project / "data/frames")
    assert "up to date" in dvc(dvc_project, "status", "extract")
    assert v2v_pipeline(root=str(dvc_project), stages=stages, driver="dvc", fanout="dask") == [
        "sample: up to date",
        "extract: up to date",
    ]
