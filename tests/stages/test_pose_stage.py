"""The pose stage end to end: the sample's keypoints reproduced exactly, random-init Keypoint R-CNN, bad input."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from support import small_config

from v2v.config import Config
from v2v.io.frames import read_meta
from v2v.io.maps import read_rgb
from v2v.maps.ground_truth import VISIBILITY_CONFIDENCE
from v2v.maps.pose import coco_to_body25, people_from_json, render_pose
from v2v.paths import ProjectPaths
from v2v.stages import extract, pose
from v2v.stages.common import StageError

SAMPLE = {"width": 64, "height": 32, "num_frames": 4, "train_clips_per_scene": 1, "test_clips_per_scene": 0}


def config(**sections: dict[str, Any]) -> Config:
    return small_config(SAMPLE, **{"train": {"task": "pose"}, **sections})  # the maps this task reads


def truth_frames(project: ProjectPaths, video: str) -> list:
    return json.loads((project.sample_truth / video / "keypoints.json").read_text())["frames"]


def test_ground_truth_keypoints_are_reproduced_exactly(project: ProjectPaths) -> None:
    metrics = pose.run(config(tracking={"enabled": True, "experiment": "pose-stage"}), project)
    assert metrics["videos"] == 2 and metrics["frames"] == 8 and metrics["people_frames"] > 4
    for video in ("pose_000", "street_000"):
        truth = truth_frames(project, video)
        for i in range(4):
            data = json.loads((project.pose_maps / video / "keypoints" / f"{i:06d}.json").read_text())
            assert len(data["people"]) == len(truth[i])
            for person, fig in zip(data["people"], truth[i], strict=True):
                assert person["instance_id"] == fig["instance_id"] and person["person_id"] == fig["instance_id"] % 1000
                coco = np.asarray(person["coco17_keypoints_2d"]).reshape(17, 3)
                expected = np.asarray(fig["keypoints"], np.float64)
                np.testing.assert_array_equal(coco[:, :2], expected[:, :2])  # exact, not approximately
                np.testing.assert_array_equal(coco[:, 2], [VISIBILITY_CONFIDENCE[int(v)] for v in expected[:, 2]])
                body = np.asarray(person["pose_keypoints_2d"]).reshape(25, 3)
                np.testing.assert_array_equal(body, coco_to_body25(coco))
            pose_map = read_rgb(project.pose_maps / video / "map" / f"{i:06d}.png")
            np.testing.assert_array_equal(pose_map, render_pose(people_from_json(data), 32, 64, threshold=0.01))
    assert read_rgb(project.pose_maps / "pose_000" / "map" / "000000.png").any()
    meta = read_meta(project.pose_maps / "pose_000")
    assert meta["backend"] == "ground_truth" and meta["people"] == 1 and meta["line_thickness_px"] == 1


def test_keypoints_follow_the_crop(project: ProjectPaths) -> None:
    cfg = config(extract={"width": 32, "height": 32})  # centre crop: x - 16
    extract.run(cfg, project)
    pose.run(cfg, project)
    truth = truth_frames(project, "pose_000")
    data = json.loads((project.pose_maps / "pose_000" / "keypoints" / "000002.json").read_text())
    coco = np.asarray(data["people"][0]["coco17_keypoints_2d"]).reshape(17, 3)
    expected = np.asarray(truth[2][0]["keypoints"])
    np.testing.assert_array_equal(coco[:, 0], expected[:, 0] - 16)
    np.testing.assert_array_equal(coco[:, 1], expected[:, 1])
    outside = (np.rint(coco[:, 0]) < 0) | (np.rint(coco[:, 0]) >= 32)
    assert (coco[outside, 2] == 0).all()


def test_random_init_keypoint_rcnn_end_to_end(project: ProjectPaths) -> None:
    torch.manual_seed(0)
    settings = {"backend": "torchvision", "weights": "none", "min_size": 32, "score_threshold": 0.0}
    cfg = config(pose={**settings, "max_detections": 3, "batch_size": 2, "smoothing": 0.5}, extract={"max_frames": 2})
    extract.run(cfg, project)
    assert pose.run(cfg, project)["frames"] == 4
    meta = read_meta(project.pose_maps / "street_000")
    assert meta["backend"] == "torchvision" and meta["weights"]["name"] == "random-init"
    assert meta["settings"]["smoothing"] == 0.5
    for i in range(2):
        data = json.loads((project.pose_maps / "street_000" / "keypoints" / f"{i:06d}.json").read_text())
        assert data["width"] == 64 and data["height"] == 32 and len(data["people"]) <= 3
        for person in data["people"]:
            body = np.asarray(person["pose_keypoints_2d"]).reshape(25, 3)
            assert ((body[:, 2] >= 0) & (body[:, 2] <= 1)).all() and len(person["coco17_keypoints_2d"]) == 51
        pose_map = read_rgb(project.pose_maps / "street_000" / "map" / f"{i:06d}.png")
        assert pose_map.shape == (32, 64, 3) and pose_map.dtype == np.uint8


def test_bad_input_fails_clearly(project: ProjectPaths, tmp_path: Path) -> None:
    pose.run(config(), project)
    (project.sample_truth / "street_000" / "keypoints.json").unlink()
    with pytest.raises(StageError, match=r"street_000: .*keypoints.json: missing"):
        pose.run(config(pose={"smoothing": 0.2}), project)
    assert read_meta(project.pose_maps / "pose_000")["settings"]["smoothing"] == 0.2  # the other video is done
    wrong = tmp_path / "wrong.pth"
    torch.save({"weight": torch.zeros(2)}, wrong)
    with pytest.raises(StageError, match=r"pose.weights: .*wrong.pth: this state dict does not fit keypointrcnn"):
        pose.run(config(pose={"backend": "torchvision", "weights": str(wrong)}), project)
