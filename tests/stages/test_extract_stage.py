"""The extract stage end to end: per-video outputs, reuse, and every kind of bad input."""

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from v2v.data.clips import ClipDataset
from v2v.paths import ProjectPaths
from v2v.stages import extract
from v2v.stages.common import StageError, split_timing


@pytest.fixture
def project(tmp_path: Path, make_video: Callable) -> ProjectPaths:
    root = tmp_path / "project"
    videos = root / "videos"
    make_video(videos / "train" / "walk.mp4", num_frames=10, seed=1)
    make_video(videos / "test" / "run.mp4", num_frames=8, seed=2)
    return ProjectPaths.at(root)


def frame_dirs(paths: ProjectPaths) -> list[str]:
    return sorted(p.name for p in paths.frames.iterdir() if p.is_dir())


def test_extracts_every_video_and_tracks_it(project: ProjectPaths, tiny_config: Callable) -> None:
    cfg = tiny_config(extract={"input_dir": "videos"}, tracking={"experiment": "extract-stage"})
    metrics = extract.run(cfg, project)
    assert metrics["videos"] == 2 and metrics["frames"] == 18 and metrics["videos_failed"] == 0
    assert metrics["videos_train"] == 1 and metrics["videos_test"] == 1
    assert frame_dirs(project) == ["run", "walk"]
    index = json.loads(project.frames_index.read_text())
    assert {v["video_id"]: v["split"] for v in index["videos"]} == {"run": "test", "walk": "train"}
    assert json.loads(project.extract_metrics.read_text()) == {
        k: v for k, v in split_timing(metrics)[0].items() if k != "videos_reused"
    }

    client = MlflowClient()
    experiment = client.get_experiment_by_name("extract-stage")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["v2v.stage"] == "extract" and run.info.status == "FINISHED"
    assert run.data.params["extract.input_dir"] == "videos"
    assert run.data.metrics["frames"] == 18
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "previews")
    }
    assert {"index.json", "previews/frames.png"} <= artifacts


def test_rerun_reuses_and_follows_input_changes(
    project: ProjectPaths, tiny_config: Callable, make_video: Callable
) -> None:
    cfg = tiny_config(extract={"input_dir": "videos"}, tracking={"enabled": False})
    make_video(project.root / "videos" / "train" / "jog.mp4", num_frames=5, seed=4)
    extract.run(cfg, project)
    walk_meta = (project.frames / "walk" / "meta.json").stat().st_mtime_ns
    assert extract.run(cfg, project)["videos_reused"] == 3
    assert (project.frames / "walk" / "meta.json").stat().st_mtime_ns == walk_meta
    make_video(project.root / "videos" / "test" / "run.mp4", num_frames=6, seed=3)  # content changed
    (project.root / "videos" / "train" / "walk.mp4").unlink()  # video removed
    metrics = extract.run(cfg, project)
    assert metrics["videos_reused"] == 1 and metrics["frames"] == 11
    assert frame_dirs(project) == ["jog", "run"]
    # changing a frame setting re-extracts
    assert (
        extract.run(tiny_config(extract={"input_dir": "videos", "fps": 5.0}, tracking={"enabled": False}), project)[
            "videos_reused"
        ]
        == 0
    )


def make_bad_inputs(videos: Path, make_video: Callable) -> dict[str, str]:
    """Bad files in the input folder → the words their error must contain."""
    (videos / "empty.mp4").touch()
    (videos / "notes.mp4").write_text("not a video\n" * 100)
    good = make_video(videos.parent / "scratch" / "long.avi", num_frames=40, codec="mjpg")
    (videos / "truncated.avi").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    make_video(videos / "one frame.mp4", num_frames=1)
    (videos / "dangling.mp4").symlink_to(videos / "gone.mp4")
    return {
        "empty.mp4": "is empty (0 bytes)",
        "notes.mp4": "cannot decode",
        "truncated.avi": "looks truncated",
        "one frame.mp4": "has 1 frame(s)",
        "dangling.mp4": "does not exist",
    }


def test_bad_videos_fail_clearly_and_leave_the_rest(
    project: ProjectPaths, tiny_config: Callable, make_video: Callable
) -> None:
    videos = project.root / "videos"
    make_video(videos / "straße café.mp4", num_frames=5)  # spaces and non-ASCII are fine
    expected = make_bad_inputs(videos, make_video)
    cfg = tiny_config(extract={"input_dir": "videos"}, tracking={"experiment": "extract-bad"})
    with pytest.raises(StageError) as info:
        extract.run(cfg, project)
    message = str(info.value)
    assert f"{len(expected)} of 8 video(s) could not be extracted" in message
    for name, words in expected.items():
        line = next(line for line in message.splitlines() if name in line)
        assert words in line, line
    good = [d for d in frame_dirs(project)]
    assert len(good) == 3 and "run" in good and "walk" in good
    assert not [p for p in project.frames.iterdir() if p.name.startswith(".tmp-")]
    assert all((project.frames / d / "meta.json").is_file() for d in good)
    index = json.loads(project.frames_index.read_text())
    assert len(index["videos"]) == 3 and len(index["failed"]) == len(expected)
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("extract-bad").experiment_id])
    assert run.info.status == "FAILED" and "could not be extracted" in run.data.tags["v2v.error"]


def test_skip_mode_records_failures_and_succeeds(
    project: ProjectPaths, tiny_config: Callable, make_video: Callable
) -> None:
    make_bad_inputs(project.root / "videos", make_video)
    cfg = tiny_config(extract={"input_dir": "videos", "on_error": "skip"}, tracking={"enabled": False})
    metrics = extract.run(cfg, project)
    assert metrics["videos"] == 2 and metrics["videos_failed"] == 5


def test_missing_or_empty_input_folder(tmp_path: Path, tiny_config: Callable) -> None:
    paths = ProjectPaths.at(tmp_path)
    cfg = tiny_config(extract={"input_dir": "nowhere"}, tracking={"enabled": False})
    with pytest.raises(FileNotFoundError, match="nowhere: input folder not found"):
        extract.run(cfg, paths)
    (tmp_path / "nowhere").mkdir()
    with pytest.raises(StageError, match="no video files found"):
        extract.run(cfg, paths)


def test_entry_point_reports_params_typo(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("extract:\n  fsp: 10\n")
    result = subprocess.run(
        [sys.executable, "-m", "v2v.stages.extract", "--root", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "extract.fsp: unknown key (did you mean 'extract.fps'?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_folders_of_an_older_format_are_re_extracted(
    project: ProjectPaths, tiny_config: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    import v2v.preprocess.extract as library

    cfg = tiny_config(extract={"input_dir": "videos"}, tracking={"enabled": False})
    monkeypatch.setattr(library, "META_FORMAT", library.META_FORMAT - 1)  # written by an older version
    extract.run(cfg, project)
    assert extract.run(cfg, project)["videos_reused"] == 2
    monkeypatch.undo()
    assert extract.run(cfg, project)["videos_reused"] == 0  # same source and settings, newer format


def test_a_video_named_like_the_index_never_replaces_it(
    tmp_path: Path, tiny_config: Callable, make_video: Callable
) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    make_video(paths.root / "videos" / "train" / "index.json.mp4", num_frames=6, seed=1)
    make_video(paths.root / "videos" / "test" / "walk.mp4", num_frames=6, seed=2)
    extract.run(tiny_config(extract={"input_dir": "videos"}, tracking={"enabled": False}), paths)
    index = json.loads(paths.frames_index.read_text())  # still the index: a file, readable
    (odd,) = [v["video_id"] for v in index["videos"] if v["video_id"] != "walk"]
    assert odd.startswith("index.json-") and (paths.frames / odd / "000000.jpg").is_file()
    assert paths.frames_index.is_file()


def test_a_split_without_test_videos_says_which_video_went_where(
    tmp_path: Path, make_video: Callable, tiny_config: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "project"
    make_video(root / "videos" / "train" / "walk.mp4", num_frames=6, seed=1)
    make_video(root / "videos" / "train" / "jog.mp4", num_frames=6, seed=2)
    paths = ProjectPaths.at(root)
    expected = r"no test video \(train: jog, walk; test: none\); put at least one video in a train/ and one in a test/"
    with caplog.at_level(logging.WARNING):
        extract.run(tiny_config(extract={"input_dir": "videos"}), paths)  # maps can still be made: a warning here
    assert re.search(expected, caplog.text)
    with pytest.raises(ValueError, match=expected):  # and an error where a test video is needed
        ClipDataset(paths=paths, split="test", task="edges", clip_length=2)
    with pytest.raises(ValueError, match=r"no train video whose id starts with 'x' \(the train videos: jog, walk\)"):
        ClipDataset(paths=paths, split="train", task="edges", clip_length=2, prefix="x")


def test_one_loose_video_gives_a_train_and_a_test_part(
    tmp_path: Path, make_video: Callable, tiny_config: Callable
) -> None:
    root = tmp_path / "project"
    make_video(root / "videos" / "talk.mp4", num_frames=10, seed=3)
    metrics = extract.run(tiny_config(extract={"input_dir": "videos"}), ProjectPaths.at(root))
    assert (metrics["videos_train"], metrics["videos_test"], metrics["frames"]) == (1, 1, 10)
