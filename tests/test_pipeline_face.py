"""Your own video through `dvc repro`, offline: the carphone clip, the face task with dlib's real landmarks, then
the edges task on the same video with learned segment/pose backends configured (which must never be built)."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support import carphone

pytest.importorskip("dlib")


def set_params(root: Path, **sections: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def metrics(root: Path, name: str) -> dict:
    return json.loads((root / "metrics" / f"{name}.json").read_text())


def own_video_project(dvc_project: Path, task: str) -> None:
    (dvc_project / "raw").mkdir()
    shutil.copy(carphone(), dvc_project / "raw" / "carphone.mp4")
    # what a user sets (input folder, task) + the tiny test sizes: the clip's own frame size, 10 fps; no MLflow
    # (tests/test_pipeline_dvc.py covers the tracking of a dvc repro)
    set_params(
        dvc_project,
        extract={"input_dir": "raw", "width": None, "height": None, "fps": 10.0},
        train={"task": task},
        tracking={"enabled": False},
    )


def test_own_video_with_the_face_task(dvc_project: Path, dvc: Callable[..., str]) -> None:
    own_video_project(dvc_project, "face")
    dvc(dvc_project, "repro")

    index = json.loads((dvc_project / "data/frames/index.json").read_text())
    assert {v["video_id"]: v["split"] for v in index["videos"]} == {"carphone_train": "train", "carphone_test": "test"}
    face = metrics(dvc_project, "face")
    assert face["needed"] == 1 and face["face_found_fraction"] >= 0.9
    for unused in ("segment", "edges", "pose", "segmenter"):
        assert metrics(dvc_project, unused)["needed"] == 0
    assert (dvc_project / "results/carphone_test/fake.mp4").is_file()
    scores = metrics(dvc_project, "evaluate")
    for key in ("landmark_error", "landmark_error_baseline", "landmark_error_real"):
        assert key in scores
    assert scores["landmark_detected_real"] >= 0.9  # the floor: real frames
    assert scores["landmark_error_real"] < 0.1  # the detector agrees with itself on real frames (smoothing aside)
    assert "seg_miou" not in scores
    assert set(scores["landmark_per_video"]) == {"carphone_test"}


@pytest.mark.slow  # the default suite checks the same per stage (tests/stages/test_face_stage.py)
def test_own_video_with_the_edges_task_builds_no_detection_model(dvc_project: Path, dvc: Callable[..., str]) -> None:
    own_video_project(dvc_project, "edges")
    # the learned (downloading, hours-on-CPU) segment and pose backends configured: they must not run
    set_params(
        dvc_project,
        segment={"backend": "torchvision", "weights": "default"},
        pose={"backend": "torchvision", "weights": "default"},
    )
    dvc(dvc_project, "repro")
    for unused in ("segment", "pose", "face", "segmenter"):
        assert metrics(dvc_project, unused)["needed"] == 0
    assert metrics(dvc_project, "edges")["needed"] == 1
    assert (dvc_project / "results/carphone_test/fake.mp4").is_file()
    scores = metrics(dvc_project, "evaluate")
    assert "landmark_error" not in scores and "seg_miou" not in scores
    # the edges task's verdict: the real frames are its ceiling (their own Canny edges, matched exactly)
    assert scores["edge_f_real"] == 1.0 and 0 <= scores["edge_f"] <= 1 and 0 <= scores["edge_f_baseline"] <= 1
    assert set(scores["edge_per_video"]) == {"carphone_test"}
    report = (dvc_project / "evaluation" / "report.html").read_text()
    assert "The edge scores judge whether a frame has the edges" in report and "Edge F-score" in report
