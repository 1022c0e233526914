"""Instance segmentation backends → per-frame detections in the project's Cityscapes label ids.

Label sets (what each backend can emit, mapped to :mod:`v2v.data.labels` by class name):

==============  ===============================================================  ======================
backend         source classes                                                   Cityscapes ids emitted
==============  ===============================================================  ======================
torchvision     COCO (Mask R-CNN R50-FPN v1/v2): person, bicycle, car,           24, 26, 27, 28, 31,
                motorcycle, bus, train, truck (COCO has no *rider*)              32, 33
detectron2      COCO models: as torchvision; Cityscapes models: person, rider,   24..33 (25 = rider
                car, truck, bus, train, motorcycle, bicycle                      only from Cityscapes)
ground_truth    the dataset's own label and instance maps                        every id of the dataset
==============  ===============================================================  ======================

``segment.classes`` restricts the emitted classes. All other pixels are 0 (*unlabeled*): these
backends segment things, not stuff. :func:`compose` paints masks from the lowest to the highest
score, so the most confident object wins where masks overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

if TYPE_CHECKING:  # torch loads where a model is built or run, so a stage that skips never loads it
    import torch

import v2v.maps.ground_truth as ground_truth
from v2v.data.labels import BY_NAME
from v2v.io.atomic import atomic_dir, write_json
from v2v.io.frames import META_FILE, frame_name, frame_pattern
from v2v.io.maps import write_instance, write_label
from v2v.io.weights import build_torchvision_detector
from v2v.maps.detectron2 import detectron2_inputs, load_detectron2
from v2v.maps.frames import batches, open_video, read_frame
from v2v.maps.tracking import InstanceTracker
from v2v.ops.device import inference_mode

RGB = npt.NDArray[np.uint8]

# source class name → Cityscapes class name (the names the backends' category lists use)
SOURCE_TO_CITYSCAPES: dict[str, str] = {
    "person": "person",
    "rider": "rider",
    "car": "car",
    "truck": "truck",
    "bus": "bus",
    "train": "train",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
}


@dataclass(frozen=True)
class Detections:
    """Objects found in one frame."""

    classes: npt.NDArray[np.int64]  # (N,) Cityscapes label ids
    scores: npt.NDArray[np.float32]  # (N,) in [0, 1]
    masks: npt.NDArray[np.bool_]  # (N, H, W)

    def __post_init__(self) -> None:
        n = len(self.classes)
        assert self.scores.shape == (n,) and self.masks.ndim == 3 and self.masks.shape[0] == n, (
            self.classes.shape,
            self.scores.shape,
            self.masks.shape,
        )

    @staticmethod
    def empty(height: int, width: int) -> Detections:
        return Detections(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, height, width), bool))


def class_map(categories: Sequence[str], keep: Sequence[str]) -> dict[int, int]:
    """Backend category index → Cityscapes id, for the kept Cityscapes class names."""
    for name in keep:
        if name not in BY_NAME or not BY_NAME[name].is_thing:
            raise ValueError(f"segment.classes: {name!r} is not a Cityscapes thing class")
    return {
        index: BY_NAME[SOURCE_TO_CITYSCAPES[cat]].id
        for index, cat in enumerate(categories)
        if cat in SOURCE_TO_CITYSCAPES and SOURCE_TO_CITYSCAPES[cat] in keep
    }


def compose(
    detections: Detections, ids: npt.NDArray[np.int64], height: int, width: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32]]:
    """Label map ``(H, W) uint8`` and instance map ``(H, W) int32`` (``class*1000+k``), lowest score first."""
    label = np.zeros((height, width), np.uint8)
    instance = np.zeros((height, width), np.int32)
    assert ids.shape == detections.classes.shape, (ids.shape, detections.classes.shape)
    for n in np.argsort(detections.scores, kind="stable"):
        mask = detections.masks[n]
        label[mask] = detections.classes[n]
        instance[mask] = ids[n]
    return label, instance


def kept(labels: np.ndarray, scores: np.ndarray, classes: dict[int, int], score_threshold: float) -> np.ndarray:
    """Which detections a backend keeps: a class it maps to Cityscapes, scoring at least the threshold."""
    return np.array(
        [int(lab) in classes and s >= score_threshold for lab, s in zip(labels, scores, strict=True)], dtype=bool
    )


def _to_tensors(frames: Sequence[RGB], device: torch.device) -> list[torch.Tensor]:
    """RGB uint8 frames → list of ``(3, H, W)`` float tensors in [0, 1] on ``device``."""
    import torch

    out = []
    for rgb in frames:
        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
        out.append(torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1).float().div_(255.0))
    return out


class TorchvisionSegmenter:
    """Mask R-CNN R50-FPN (v1 or v2) from ``torchvision.models.detection``, COCO categories."""

    def __init__(
        self,
        *,
        model: str = "maskrcnn_resnet50_fpn",  # or "maskrcnn_resnet50_fpn_v2"
        weights: str = "default",  # "default" | "none" (random init, tests only) | state-dict path
        classes: Sequence[str] = ("person", "car", "truck", "bus", "train", "motorcycle", "bicycle"),  # kept
        score_threshold: float = 0.5,  # drop detections scoring below
        mask_threshold: float = 0.5,  # mask probability above which a pixel belongs to the object
        min_size: int = 800,  # torchvision resizes the shorter side to this before inference
        max_detections: int = 100,  # at most this many objects per frame
        device: torch.device | None = None,  # where the model runs
    ) -> None:
        from torchvision.models import detection as tv_detection
        from torchvision.models import get_model_weights

        if model not in ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2"):
            raise ValueError(f"segment.model: expected maskrcnn_resnet50_fpn or maskrcnn_resnet50_fpn_v2, got {model}")
        import torch

        self.device = device or torch.device("cpu")
        self.net, self.weights = build_torchvision_detector(
            model,
            weights,
            "segment.weights",
            box_score_thresh=score_threshold,
            box_detections_per_img=max_detections,
            min_size=min_size,
        )
        self.net.to(self.device)
        categories = get_model_weights(getattr(tv_detection, model)).DEFAULT.meta["categories"]
        self.class_map = class_map(categories, classes)
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.label_set = sorted(set(self.class_map.values()))

    @inference_mode
    def __call__(self, frames: Sequence[RGB]) -> list[Detections]:
        """Detect objects in a batch of RGB frames (one forward pass)."""
        import torch

        outputs = self.net(_to_tensors(frames, self.device))
        result = []
        for rgb, out in zip(frames, outputs, strict=True):
            h, w = rgb.shape[:2]
            labels = out["labels"].cpu().numpy()
            scores = out["scores"].cpu().numpy().astype(np.float32)
            keep = kept(labels, scores, self.class_map, self.score_threshold)
            if not keep.any():
                result.append(Detections.empty(h, w))
                continue
            masks = out["masks"][torch.from_numpy(keep).to(out["masks"].device), 0] > self.mask_threshold
            assert masks.shape[1:] == (h, w), masks.shape
            classes = np.array([self.class_map[int(lab)] for lab in labels[keep]], np.int64)
            result.append(Detections(classes, scores[keep], masks.cpu().numpy()))
        return result

    def info(self) -> dict[str, Any]:
        return {"backend": "torchvision", "weights": self.weights.as_dict(), "label_set": self.label_set}


class Detectron2Segmenter:
    """A detectron2 instance-segmentation model (Mask R-CNN, or the things of Panoptic FPN) from a config + weights."""

    def __init__(
        self,
        *,
        config: str,  # detectron2 config file (.yaml), or a model-zoo name like "COCO-InstanceSegmentation/..."
        weights: str,  # path to the model's .pkl/.pth weights (or "default": the model zoo's URL when online)
        classes: Sequence[str] = ("person", "car", "truck", "bus", "train", "motorcycle", "bicycle"),  # kept
        score_threshold: float = 0.5,  # drop detections scoring below
        device: torch.device | None = None,  # where the model runs
        key: str = "segment",  # params section named in errors
    ) -> None:
        import torch

        self.model, self.cfg, categories, self.weights = load_detectron2(config, weights, device, key)
        if hasattr(self.cfg.MODEL, "ROI_HEADS"):
            self.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_threshold
        self.class_map = class_map(categories, classes)
        self.score_threshold = score_threshold
        self.label_set = sorted(set(self.class_map.values()))
        self.device = device or torch.device("cpu")

    @inference_mode
    def __call__(self, frames: Sequence[RGB]) -> list[Detections]:
        outputs = self.model(detectron2_inputs(frames, self.cfg, self.device))
        result = []
        for rgb, out in zip(frames, outputs, strict=True):
            h, w = rgb.shape[:2]
            inst = out["instances"].to("cpu")
            labels = inst.pred_classes.numpy()
            scores = inst.scores.numpy().astype(np.float32)
            keep = kept(labels, scores, self.class_map, self.score_threshold)
            if not keep.any():
                result.append(Detections.empty(h, w))
                continue
            classes = np.array([self.class_map[int(lab)] for lab in labels[keep]], np.int64)
            result.append(Detections(classes, scores[keep], inst.pred_masks.numpy()[keep].astype(bool)))
        return result

    def info(self) -> dict[str, Any]:
        return {"backend": "detectron2", "weights": self.weights.as_dict(), "label_set": self.label_set}


def segment_video(
    frames_root: Path,  # data/frames
    video_id: str,  # which video
    dest: Path,  # its output folder (replaced atomically)
    recorded: dict[str, Any],  # the settings that decide the maps, for meta.json
    truth_root: Path,  # ground_truth backend: folder of <video_id>/ truth
    truth_name: str,  # how meta.json names that folder (segment.ground_truth_dir)
    model: TorchvisionSegmenter | Detectron2Segmenter | None,  # learned backend (None for ground_truth)
    fingerprint_value: str,  # recorded in meta.json
    *,
    batch_size: int,  # frames per forward pass of the learned backend (segment.batch_size)
    track_iou: float,  # least mask IoU to keep an object's id (segment.track_iou)
    track_max_gap: int,  # frames an object may vanish and keep its id (segment.track_max_gap)
) -> dict[str, Any]:
    """Segment one video into ``dest``; returns its ``meta.json`` content."""
    meta, files = open_video(frames_root, video_id)
    h, w = meta["height"], meta["width"]
    instances: set[int] = set()
    detections = 0
    labels_seen: set[int] = set()
    with atomic_dir(dest) as tmp:
        bar = tqdm(total=len(files), desc=f"segment {video_id}", unit="frame", leave=False)
        if model is None:
            folder = ground_truth.truth_folder(truth_root, video_id, "segment")
            for i in range(len(files)):
                label, instance = ground_truth.segmentation(folder, meta, i)
                if label.shape != (h, w):
                    raise ValueError(f"{folder}: truth maps give {label.shape}, frames are {(h, w)}")
                _write(tmp, i, label, instance, instances, labels_seen)
                bar.update()
            info: dict[str, Any] = {
                "backend": "ground_truth",
                "truth": f"{truth_name}/{video_id}",
                "weights": None,
            }
        else:
            tracker = InstanceTracker(iou_threshold=track_iou, max_gap=track_max_gap)
            i = 0
            for chunk in batches(files, batch_size):
                frames = [read_frame(p, meta) for p in chunk]
                for det in model(frames):
                    ids = tracker.update(det.classes, det.masks)
                    label, instance = compose(det, ids, h, w)
                    detections += len(ids)
                    _write(tmp, i, label, instance, instances, labels_seen)
                    i += 1
                    bar.update()
            info = model.info()
        bar.close()
        out = {
            "video_id": video_id,
            "num_frames": len(files),
            "width": w,
            "height": h,
            "frame_pattern": frame_pattern(),
            "label_dir": "label",
            "instance_dir": "instance",
            "instance_encoding": "class_id*1000+k for things (k tracked through the clip), class_id for stuff",
            **info,
            "settings": recorded,
            "labels_present": sorted(labels_seen),
            "instances": len(instances),
            "detections": detections,
            "fingerprint": fingerprint_value,
        }
        write_json(tmp / META_FILE, out)
    return out


def _write(
    folder: Path, i: int, label: np.ndarray, instance: np.ndarray, instances: set[int], labels_seen: set[int]
) -> None:
    write_label(folder / "label" / frame_name(i), label)
    write_instance(folder / "instance" / frame_name(i), instance)
    instances.update(int(v) for v in np.unique(instance) if v >= 1000)
    labels_seen.update(int(v) for v in np.unique(label))
