"""Segmentation backends: label mapping, painting order, random-init torchvision run, weights errors."""

import importlib.util
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.io.weights import WeightsError, build_torchvision_detector
from v2v.maps.detectron2 import import_detectron2
from v2v.maps.segmentation import Detections, TorchvisionSegmenter, class_map, compose

ALL = ("person", "car", "truck", "bus", "train", "motorcycle", "bicycle")


def test_coco_categories_map_to_cityscapes_ids() -> None:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    categories = MaskRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]
    mapping = class_map(categories, ALL)
    named = {categories[i]: cid for i, cid in mapping.items()}
    assert named == {"person": 24, "car": 26, "truck": 27, "bus": 28, "train": 31, "motorcycle": 32, "bicycle": 33}
    assert class_map(categories, ("car",)) == {categories.index("car"): 26}
    with pytest.raises(ValueError, match="road"):
        class_map(categories, ("road",))


def test_compose_paints_lowest_score_first() -> None:
    masks = np.zeros((2, 4, 6), bool)
    masks[0, :, :4] = True
    masks[1, :, 2:] = True
    det = Detections(np.array([26, 24]), np.array([0.9, 0.6], np.float32), masks)
    label, instance = compose(det, np.array([26000, 24003]), 4, 6)
    assert label.dtype == np.uint8 and instance.dtype == np.int32
    assert label[0].tolist() == [26, 26, 26, 26, 24, 24]  # the car (higher score) wins the overlap
    assert instance[0].tolist() == [26000] * 4 + [24003] * 2
    empty_label, empty_inst = compose(Detections.empty(4, 6), np.zeros(0, np.int64), 4, 6)
    assert not empty_label.any() and not empty_inst.any()


def test_random_init_mask_rcnn_gives_well_formed_detections() -> None:
    torch.manual_seed(0)
    model = TorchvisionSegmenter(weights="none", score_threshold=0.0, min_size=32, max_detections=5)
    info = model.info()
    assert info["weights"]["name"] == "random-init" and info["label_set"] == [24, 26, 27, 28, 31, 32, 33]
    frames = [np.random.default_rng(i).integers(0, 255, (32, 64, 3), dtype=np.uint8) for i in range(2)]
    for det in model(frames):
        n = len(det.classes)
        assert det.masks.shape == (n, 32, 64) and det.masks.dtype == bool
        assert det.scores.dtype == np.float32 and ((det.scores >= 0) & (det.scores <= 1)).all()
        assert set(det.classes.tolist()) <= {24, 26, 27, 28, 31, 32, 33}


def test_weights_file_of_another_architecture_is_a_clear_error(tmp_path: Path) -> None:
    wrong = tmp_path / "resnet_head.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), wrong)
    with pytest.raises(WeightsError, match=r"segment.weights: .*resnet_head.pth: this state dict does not fit"):
        TorchvisionSegmenter(weights=str(wrong), min_size=64)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a loadable state dict"):
        build_torchvision_detector("maskrcnn_resnet50_fpn", str(garbage), "segment.weights")
    with pytest.raises(WeightsError, match="weights file not found"):
        build_torchvision_detector("maskrcnn_resnet50_fpn", str(tmp_path / "missing.pth"), "segment.weights")


def test_a_matching_state_dict_file_loads_and_is_recorded(tmp_path: Path) -> None:
    net, _ = build_torchvision_detector("keypointrcnn_resnet50_fpn", "none", "pose.weights")
    path = tmp_path / "kp.pth"
    torch.save(net.state_dict(), path)
    loaded, info = build_torchvision_detector("keypointrcnn_resnet50_fpn", str(path), "pose.weights")
    assert info.name == "kp.pth" and info.sha256 is not None and len(info.sha256) == 64
    first = next(iter(net.state_dict()))
    assert torch.equal(loaded.state_dict()[first], net.state_dict()[first])


def test_default_weights_offline_say_where_to_put_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    import torchvision.models._api as tv_api

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)  # what the weights enum downloads with
    with pytest.raises(WeightsError) as info:
        TorchvisionSegmenter(weights="default", min_size=64)
    message = str(info.value)
    assert "segment.weights" in message and "download.pytorch.org" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is not None, reason="detectron2 is installed")
def test_missing_detectron2_says_how_to_install_it() -> None:
    with pytest.raises(WeightsError, match=r"segment.backend: detectron2: .*pip install --no-build-isolation"):
        import_detectron2("segment")
