"""The segment stage end to end: ground truth reproduced exactly, random-init Mask R-CNN, bad input."""

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from support import small_config

from v2v.config import Config
from v2v.io.frames import apply_geometry, read_meta
from v2v.io.maps import read_instance, read_label
from v2v.paths import ProjectPaths
from v2v.stages import extract, sample, segment
from v2v.stages.common import StageError, split_timing

SAMPLE = {"width": 64, "height": 32, "num_frames": 6, "train_clips_per_scene": 1, "test_clips_per_scene": 0}
VIDEOS = ["pose_000", "street_000"]


def config(**sections: dict[str, Any]) -> Config:
    return small_config(SAMPLE, **sections)


def test_ground_truth_backend_reproduces_the_truth_exactly(project: ProjectPaths) -> None:
    cfg = config(tracking={"enabled": True, "experiment": "segment-stage"})
    metrics = segment.run(cfg, project)
    assert metrics["videos"] == 2 and metrics["frames"] == 12 and metrics["videos_failed"] == 0
    assert json.loads(project.segment_metrics.read_text()) == {
        k: v for k, v in split_timing(metrics)[0].items() if k != "videos_reused"
    }
    for video in VIDEOS:
        out = project.segment_maps / video
        truth = project.sample_truth / video
        for i in range(6):
            label = read_label(out / "label" / f"{i:06d}.png")
            instance = read_instance(out / "instance" / f"{i:06d}.png")
            np.testing.assert_array_equal(label, read_label(truth / "label" / f"{i:06d}.png"))
            np.testing.assert_array_equal(instance, read_instance(truth / "instance" / f"{i:06d}.png"))
        meta = read_meta(out)
        assert meta["backend"] == "ground_truth" and meta["num_frames"] == 6 and meta["weights"] is None
    assert read_meta(project.segment_maps / "street_000")["instances"] >= 2

    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("segment-stage").experiment_id])
    assert run.data.tags["v2v.segment.backend"] == "ground_truth" and run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "previews")} == {"previews/segment.png"}

    # a rerun reuses every video; a changed setting recomputes
    assert segment.run(config(), project)["videos_reused"] == 2


def test_ground_truth_follows_resampling_and_resizing(project: ProjectPaths) -> None:
    cfg = config(extract={"fps": 5.0, "width": 32, "height": 32})  # 15 → 5 fps, 64x32 → 32x32 centre crop
    extract.run(cfg, project)
    segment.run(cfg, project)
    meta = read_meta(project.frames / "street_000")
    assert meta["num_frames"] == 2 and meta["resampled"]
    for i in range(2):
        j = 3 * i
        assert meta["source_frames"][i] == j
        truth = read_instance(project.sample_truth / "street_000" / "instance" / f"{j:06d}.png")
        out = read_instance(project.segment_maps / "street_000" / "instance" / f"{i:06d}.png")
        assert out.shape == (32, 32)
        np.testing.assert_array_equal(out, apply_geometry(truth, meta, nearest=True))
        np.testing.assert_array_equal(out, truth[:, 16:48])  # same scale: a pure centre crop


def test_random_init_mask_rcnn_end_to_end_gives_well_formed_maps(project: ProjectPaths) -> None:
    torch.manual_seed(0)
    settings = {"backend": "torchvision", "weights": "none", "min_size": 32, "score_threshold": 0.0}
    cfg = config(segment={**settings, "max_detections": 8, "batch_size": 2}, extract={"max_frames": 2})
    extract.run(cfg, project)
    metrics = segment.run(cfg, project)
    assert metrics["videos"] == 2 and metrics["frames"] == 4
    for video in VIDEOS:
        out = project.segment_maps / video
        meta = read_meta(out)
        assert meta["backend"] == "torchvision" and meta["weights"]["name"] == "random-init"
        assert meta["label_set"] == [24, 26, 27, 28, 31, 32, 33] and meta["settings"]["score_threshold"] == 0.0
        for i in range(2):
            label = read_label(out / "label" / f"{i:06d}.png")
            instance = read_instance(out / "instance" / f"{i:06d}.png")
            assert label.shape == instance.shape == (32, 64) and label.dtype == np.uint8 and instance.dtype == np.int32
            assert set(np.unique(label).tolist()) <= {0, 24, 26, 27, 28, 31, 32, 33}
            things = instance > 0
            np.testing.assert_array_equal(instance[things] // 1000, label[things])  # class*1000+k
            assert (label[~things] == 0).all() and (instance[things] % 1000 < 1000).all()


def test_bad_input_fails_clearly_and_keeps_other_videos(project: ProjectPaths) -> None:
    segment.run(config(), project)
    good = (project.segment_maps / "pose_000" / "meta.json").read_text()
    shutil.rmtree(project.frames / "street_000")
    with pytest.raises(StageError, match=r"street_000: .*frames folder missing; re-run the extract stage"):
        segment.run(config(segment={"track_iou": 0.4}), project)
    assert (project.segment_maps / "pose_000" / "meta.json").read_text() == good
    assert (project.segment_maps / "street_000" / "meta.json").is_file()  # the previous output is kept

    extract.run(config(), project)
    (project.frames / "pose_000" / "000002.png").write_bytes(b"\x89PNG garbage")
    cfg = config(segment={"backend": "torchvision", "weights": "none", "min_size": 32}, extract={"max_frames": 3})
    assert (project.frames / "pose_000" / "000002.png").is_file()
    with pytest.raises(
        StageError, match=r"pose_000: .*pose_000/000002.png: cannot decode this image.*`dvc repro extract`"
    ):
        segment.run(cfg, project)
    assert read_meta(project.segment_maps / "street_000")["backend"] == "torchvision"  # done despite pose_000
    assert read_meta(project.segment_maps / "pose_000")["backend"] == "ground_truth"  # old output intact

    (project.root / "other").mkdir()
    shutil.copytree(project.frames / "street_000", project.frames / "mine")
    index = json.loads(project.frames_index.read_text())
    index["videos"].append({**index["videos"][0], "video_id": "mine"})
    project.frames_index.write_text(json.dumps(index))
    with pytest.raises(StageError, match=r"no ground truth for video 'mine'.*set segment.backend: torchvision"):
        segment.run(config(), project)


def test_unusable_weights_fail_before_touching_outputs(project: ProjectPaths, tmp_path: Path) -> None:
    segment.run(config(), project)
    before = read_meta(project.segment_maps / "street_000")
    wrong = tmp_path / "wrong.pth"
    torch.save(torch.nn.Conv2d(3, 8, 3).state_dict(), wrong)
    with pytest.raises(StageError, match=r"segment.weights: .*wrong.pth: this state dict does not fit maskrcnn"):
        segment.run(config(segment={"backend": "torchvision", "weights": str(wrong)}), project)
    if importlib.util.find_spec("detectron2") is None:
        with pytest.raises(StageError, match=r"detectron2 is not installed .*pip install"):
            segment.run(config(segment={"backend": "detectron2"}), project)
    assert read_meta(project.segment_maps / "street_000") == before


@pytest.mark.slow
def test_learned_backends_at_the_default_size_and_inference_resolution(tmp_path: Path) -> None:
    """Random-init Mask R-CNN and Keypoint R-CNN on the 256x128 sample at min_size 800 (minutes on CPU)."""
    from v2v.stages import pose

    paths = ProjectPaths.at(tmp_path / "project")
    street = {"width": 256, "height": 128, "num_frames": 3, "scenes": ["street"]}
    cfg = config(
        sample=street,
        extract={"width": 256, "height": 128},
        segment={"backend": "torchvision", "weights": "none", "model": "maskrcnn_resnet50_fpn_v2"},
        pose={"backend": "torchvision", "weights": "none"},
    )
    sample.run(cfg, paths)
    extract.run(cfg, paths)
    assert segment.run(cfg, paths)["frames"] == 3 and pose.run(cfg, paths)["frames"] == 3
    for i in range(3):
        assert read_instance(paths.segment_maps / "street_000" / "instance" / f"{i:06d}.png").shape == (128, 256)
        assert (paths.pose_maps / "street_000" / "map" / f"{i:06d}.png").is_file()
