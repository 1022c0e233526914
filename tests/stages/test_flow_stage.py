"""The flow stage end to end: sample → extract → flow with EPE, RAFT, and every kind of bad input."""

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from v2v.flow.io import read_flow_meta, read_flow_pair
from v2v.io.atomic import write_json
from v2v.io.maps import write_rgb
from v2v.paths import ProjectPaths
from v2v.stages import extract, flow, sample
from v2v.stages.common import StageError, split_timing

STREET = {"scenes": ["street"], "width": 256, "height": 128, "num_frames": 8}
STREET.update({"train_clips_per_scene": 1, "test_clips_per_scene": 0})


def make_project(tmp_path: Path, tiny_config: Callable, **sections: dict) -> tuple[ProjectPaths, object]:
    paths = ProjectPaths.at(tmp_path / "project")
    cfg = tiny_config(sample=STREET, extract={"width": 256, "height": 128}, **sections)
    sample.run(cfg, paths)
    extract.run(cfg, paths)
    return paths, cfg


def test_dis_end_to_end_with_epe_and_tracking(tmp_path: Path, tiny_config: Callable, capsys) -> None:
    paths, cfg = make_project(tmp_path, tiny_config, tracking={"experiment": "flow-stage"})
    metrics = flow.run(cfg, paths)
    assert metrics["videos"] == 1 and metrics["pairs"] == 7 and metrics["clips_with_truth"] == 1
    clip = metrics["per_video"]["street_000"]
    with capsys.disabled():
        print(
            f"\nflow stage, DIS medium on the decoded 256x128 street sample: EPE {clip['epe']:.3f} px "
            f"(trusted pixels {clip['epe_valid']:.3f}), hidden pixels flagged {clip['occlusion_recall']:.2f}, "
            f"{metrics['pairs_per_second']:.0f} pairs/s"
        )
    assert clip["epe"] < 1.0 and clip["epe_valid"] <= clip["epe"]
    assert json.loads(paths.flow_metrics.read_text()) == split_timing(metrics)[0]  # timing beside it

    folder = paths.flow / "street_000"
    assert sorted(p.name for p in folder.iterdir())[:3] == ["000001.npy", "000001_valid.png", "000002.npy"]
    assert not (folder / "000000.npy").exists()
    flow_1, valid_1 = read_flow_pair(folder, 1)
    assert flow_1.shape == (128, 256, 2) and valid_1.shape == (128, 256) and 0.8 < valid_1.mean() <= 1.0
    meta = read_flow_meta(folder)
    assert meta["backend"] == "dis" and meta["settings"] == {"preset": "medium"} and meta["num_pairs"] == 7
    assert meta["confidence"]["photometric_threshold"] == 0.02 and meta["epe"] == clip["epe"]  # the reference's
    assert meta["convention"].startswith("backward")
    # no durations in the output: a rerun writes the same bytes, so DVC reruns no training stage after it
    assert not any("second" in key for key in meta)
    assert clip["pairs_per_second"] > 0  # durations and throughput live in metrics/timing

    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("flow-stage").experiment_id], "tags.`v2v.stage` = 'flow'"
    )
    assert run.data.tags["v2v.flow.weights"].startswith("none needed")
    assert run.data.metrics["epe.street_000"] == pytest.approx(clip["epe"])
    assert run.data.metrics["pairs_per_second"] > 0
    previews = {a.path for a in client.list_artifacts(run.info.run_id, "previews")}
    assert previews == {"previews/flow_colour_wheel.png", "previews/flow_street_000.png"}

    # a video that left the index loses its flow folder on the next run
    (paths.flow / "gone").mkdir()
    write_json(paths.flow / "gone" / "meta.json", {})
    flow.run(cfg, paths)
    assert not (paths.flow / "gone").exists()


def test_raft_random_weights_end_to_end(tmp_path: Path, tiny_config: Callable) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    frames = [np.random.default_rng(i).integers(0, 255, (32, 64, 3), dtype=np.uint8) for i in range(3)]
    write_frames(paths, "noise", frames)
    cfg = tiny_config(
        flow={
            "backend": "raft",
            "raft_weights": "none",
            "raft_iterations": 2,
            "batch_size": 2,
            "forward_backward": True,
        },
        tracking={"enabled": False},
    )
    metrics = flow.run(cfg, paths)
    assert metrics["pairs"] == 2 and metrics["clips_with_truth"] == 0
    meta = read_flow_meta(paths.flow / "noise")
    assert meta["weights"].startswith("none (random init") and meta["settings"]["model"] == "raft_small"
    for t in (1, 2):
        stored, valid = read_flow_pair(paths.flow / "noise", t)
        assert stored.shape == (32, 64, 2) and stored.dtype == np.float32 and valid.dtype == np.bool_


# ------------------------------------------------------------------------------------- bad inputs


def write_frames(paths: ProjectPaths, video_id: str, frames: list[np.ndarray], suffix: str = "png") -> Path:
    """A frames folder as the extract stage writes it (meta.json + index.json), from RGB arrays."""
    folder = paths.frames / video_id
    for i, rgb in enumerate(frames):
        write_rgb(folder / f"{i:06d}.{suffix}", rgb)
    h, w = frames[0].shape[:2]
    meta = {
        "video_id": video_id,
        "width": w,
        "height": h,
        "num_frames": len(frames),
        "frame_pattern": f"%06d.{suffix}",
        "resampled": False,
        "source_width": w,
        "source_height": h,
        "geometry": {"scaled_width": w, "scaled_height": h, "x0": 0, "y0": 0},
    }
    write_json(folder / "meta.json", meta)
    index = json.loads(paths.frames_index.read_text()) if paths.frames_index.is_file() else {"videos": []}
    index["videos"].append({"video_id": video_id, "split": "train", "num_frames": len(frames)})
    write_json(paths.frames_index, index)
    return folder


def rgb(width: int = 64, height: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def no_tracking(tiny_config: Callable) -> object:
    return tiny_config(tracking={"enabled": False})


def test_single_frame_video_gives_an_empty_valid_output(
    tmp_path: Path, no_tracking: object, caplog: pytest.LogCaptureFixture
) -> None:
    paths = ProjectPaths.at(tmp_path)
    write_frames(paths, "still", [rgb()])
    with caplog.at_level(logging.WARNING):
        metrics = flow.run(no_tracking, paths)  # type: ignore[arg-type]
    assert metrics["pairs"] == 0 and metrics["per_video"]["still"]["num_pairs"] == 0
    assert [p.name for p in (paths.flow / "still").iterdir()] == ["meta.json"]
    assert "single frame" in caplog.text


def test_frames_of_different_sizes_are_an_error_naming_the_file(tmp_path: Path, no_tracking: object) -> None:
    paths = ProjectPaths.at(tmp_path)
    write_frames(paths, "mixed", [rgb(), rgb(), rgb()])
    write_rgb(paths.frames / "mixed" / "000002.png", rgb(width=48))
    with pytest.raises(StageError, match=r"000002\.png: frame is 48x32 but 000000\.png is 64x32"):
        flow.run(no_tracking, paths)  # type: ignore[arg-type]
    assert not (paths.flow / "mixed").exists()  # nothing half-written


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_corrupt_frame_is_an_error_naming_the_file(tmp_path: Path, no_tracking: object, suffix: str) -> None:
    paths = ProjectPaths.at(tmp_path)
    folder = write_frames(paths, "broken", [rgb(), rgb(seed=1), rgb(seed=2)], suffix=suffix)
    good = (folder / f"000001.{suffix}").read_bytes()
    (folder / f"000001.{suffix}").write_bytes(good[: len(good) // 3] if suffix == "png" else b"\xff\xd8garbage")
    with pytest.raises(StageError, match=rf"broken.*000001\.{suffix}.*corrupt"):
        flow.run(no_tracking, paths)  # type: ignore[arg-type]


def test_missing_frames_index_says_run_extract(tmp_path: Path, no_tracking: object) -> None:
    with pytest.raises(FileNotFoundError, match="run the extract stage first"):
        flow.run(no_tracking, ProjectPaths.at(tmp_path))  # type: ignore[arg-type]


def test_epe_is_skipped_when_extract_resampled(
    tmp_path: Path, tiny_config: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    paths = ProjectPaths.at(tmp_path)
    folder = write_frames(paths, "clip", [rgb(), rgb(seed=1)])
    meta = json.loads((folder / "meta.json").read_text())
    write_json(folder / "meta.json", {**meta, "resampled": True, "source_fps": 30.0, "fps": 10.0})
    (tmp_path / "truth" / "clip" / "flow").mkdir(parents=True)
    cfg = tiny_config(flow={"ground_truth_dir": "truth"}, tracking={"enabled": False})
    with caplog.at_level(logging.WARNING):
        metrics = flow.run(cfg, paths)
    assert metrics["clips_with_truth"] == 0 and "resampled the video in time" in caplog.text
    assert "resampled" in read_flow_meta(paths.flow / "clip")["epe_skipped"]
