"""Segmentation consistency: does a generated frame show what its label map says, and where?

The standard conditional-synthesis score of pix2pixHD, SPADE and world-consistent vid2vid: run a
semantic segmenter on the generated frames and compare its prediction with the input label map
(mean IoU over classes, pixel accuracy). The same segmenter on the *real* frames gives the ceiling
a perfect generator would reach.

Offline default (``segmenter.backend: trained``): :class:`SegmentationNet`, a small U-Net trained
by the ``segmenter`` stage on the training videos' real frames and label maps only (never on a
generated or a held-out frame), deterministic for a seed. Online (``deeplabv3``): torchvision's
DeepLabV3-ResNet50 with its VOC weights; the VOC classes that exist in the Cityscapes label set
(person, car, bus, train, motorcycle, bicycle) are scored, everything else is ignored.

Label maps are Cityscapes ids (:mod:`v2v.data.labels`); a segmenter predicts a compact list of
classes (``classes``, the ids it was trained on) and pixels of other ids are ignored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from v2v.io.checkpoint import write_torch

SEGMENTER_FORMAT = "v2v-segmenter-1"
IGNORE = -1  # target value of pixels whose label the segmenter does not know
# VOC class index → Cityscapes label id, for the classes both sets share (DeepLabV3's torchvision weights)
VOC_TO_CITYSCAPES = {15: 24, 7: 26, 6: 28, 19: 31, 14: 32, 2: 33}


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SegmentationNet(nn.Module):
    """A small U-Net: RGB ``(N, 3, H, W)`` in [-1, 1] → class logits ``(N, len(classes), H, W)``.

    The frame is area-downsampled by ``downsample`` first (the layout of a scene does not need every
    pixel, and CPU time does), then three stride-2 stages widen ``width`` → ``8 width``; the decoder
    upsamples bilinearly and concatenates the skip features; the logits are upsampled to the input
    size. Sizes must be multiples of ``8 * downsample``. About 0.5 M parameters at width 16.
    """

    def __init__(self, *, classes: Sequence[int], width: int = 16, downsample: int = 2) -> None:
        super().__init__()
        self.classes = tuple(int(c) for c in classes)
        self.width = width
        self.downsample = downsample
        w = width
        self.down = nn.ModuleList([_block(3, w), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 8 * w, 2)])
        self.up = nn.ModuleList([_block(12 * w, 4 * w), _block(6 * w, 2 * w), _block(3 * w, w)])
        self.head = nn.Conv2d(w, len(self.classes), 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _, c, h, w = image.shape
        multiple = 8 * self.downsample
        if c != 3 or h % multiple or w % multiple:
            raise ValueError(
                f"segmenter input must be (N, 3, H, W) with H, W multiples of {multiple}, got {tuple(image.shape)}"
            )
        skips = []
        x = F.avg_pool2d(image, self.downsample) if self.downsample > 1 else image
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        logits = self.head(x)
        if self.downsample > 1:
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits

    def config(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "width": self.width, "downsample": self.downsample}


def to_targets(label_ids: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """``(..., H, W)`` label ids → indices into ``classes`` (``IGNORE`` for ids not in it)."""
    lookup = torch.full((256,), IGNORE, dtype=torch.int64)
    for index, class_id in enumerate(classes):
        lookup[class_id] = index
    return lookup[label_ids.long().clamp(0, 255)]


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 → ``(3, H, W)`` float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(127.5).sub(1.0)


@dataclass(frozen=True)
class SegmenterTraining:
    """How the offline segmenter is trained (built from ``segmenter`` in params.yaml)."""

    steps: int  # optimiser steps
    batch_size: int  # frames per step
    lr: float  # Adam learning rate, decayed linearly to 0 over the second half
    width: int  # SegmentationNet width
    downsample: int  # SegmentationNet input downsampling factor
    seed: int  # initialisation, batch order and augmentation
    jitter: float  # random brightness/contrast change per frame (relative), so colours alone do not decide


def train_segmenter(
    images: torch.Tensor,  # (N, 3, H, W) real training frames in [-1, 1]
    label_ids: torch.Tensor,  # (N, H, W) their label ids
    settings: SegmenterTraining,
    device: torch.device,
    progress: bool = True,
) -> tuple[Segmenter, dict[str, Any]]:
    """Fit a :class:`SegmentationNet` on the given frames; returns the judge (eval mode) and a summary."""
    if images.shape[0] == 0:
        raise ValueError("no training frames for the segmenter: the train split has no videos with label maps")
    classes = sorted(int(c) for c in torch.unique(label_ids).tolist())
    targets = to_targets(label_ids, classes)
    gen = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    net = SegmentationNet(classes=classes, width=settings.width, downsample=settings.downsample).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    # class weights: rare classes (people, poles) count, as mIoU weighs every class alike
    counts = torch.bincount(targets[targets >= 0].flatten(), minlength=len(classes)).float()
    class_weight = (counts.sum() / counts.clamp(min=1)).sqrt()
    class_weight = (class_weight / class_weight.mean()).to(device)
    started = time.perf_counter()
    losses: list[float] = []
    net.train()
    for step in tqdm(range(settings.steps), desc="segmenter", disable=not progress, leave=False):
        pick = torch.randint(0, images.shape[0], (settings.batch_size,), generator=gen)
        x, y = images[pick].clone(), targets[pick].clone()
        flip = torch.rand(settings.batch_size, generator=gen) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        if settings.jitter > 0:
            scale = 1 + settings.jitter * (2 * torch.rand(settings.batch_size, 1, 1, 1, generator=gen) - 1)
            shift = settings.jitter * (2 * torch.rand(settings.batch_size, 1, 1, 1, generator=gen) - 1)
            x = (x * scale + shift).clamp(-1, 1)
        lr = settings.lr * min(1.0, 2 * (1 - step / settings.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        logits = net(x.to(device))
        loss = F.cross_entropy(logits, y.to(device), weight=class_weight, ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    tail = losses[-max(1, len(losses) // 10) :]
    summary = {
        "backend": "trained",
        "steps": settings.steps,
        "frames": int(images.shape[0]),
        "classes": classes,
        "final_loss": float(np.mean(tail)) if tail else math.nan,
        "seconds": time.perf_counter() - started,
    }
    weights = {"model": "SegmentationNet", "weights": "trained", "name": "trained on the train split", "sha256": None}
    return Segmenter(net, net.classes, device, weights), summary


@torch.no_grad()
def predict(net: nn.Module, classes: Sequence[int], rgb: np.ndarray, device: torch.device) -> np.ndarray:
    """``(H, W, 3)`` uint8 frame → ``(H, W)`` predicted label ids (of ``classes``)."""
    logits = net(image_tensor(rgb)[None].to(device))
    index = logits.argmax(1)[0].cpu().numpy()
    return np.asarray(classes, dtype=np.int64)[index]


@dataclass
class ConfusionMeter:
    """Confusion matrices of predicted vs input label ids, per system (``real``, ``vid2vid``, ...)."""

    classes: tuple[int, ...]  # the ids scored (the segmenter's classes)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, system: str, predicted: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
        """One frame (``predicted`` and ``label_ids`` are ``(H, W)`` label ids); returns its confusion counts."""
        if predicted.shape != label_ids.shape:
            raise ValueError(f"{system}: prediction {predicted.shape} vs label map {label_ids.shape}")
        k = len(self.classes)
        target = to_targets(torch.from_numpy(label_ids.astype(np.int64)), self.classes).numpy()
        guess = to_targets(torch.from_numpy(predicted.astype(np.int64)), self.classes).numpy()
        keep = (target >= 0) & (guess >= 0)
        counts = np.bincount(target[keep] * k + guess[keep], minlength=k * k).reshape(k, k)
        self.matrices[system] = self.matrices.get(system, np.zeros((k, k), np.int64)) + counts
        return counts

    def merged(self, other: ConfusionMeter) -> ConfusionMeter:
        if other.classes != self.classes:
            raise ValueError("cannot merge confusion matrices over different classes")
        out = ConfusionMeter(self.classes, {k: v.copy() for k, v in self.matrices.items()})
        for system, matrix in other.matrices.items():
            out.matrices[system] = out.matrices.get(system, np.zeros_like(matrix)) + matrix
        return out

    def scores(self, system: str) -> dict[str, float]:
        """``miou`` (mean over classes present in the label maps or the predictions) and ``accuracy``."""
        return confusion_scores(self.matrices[system])


def confusion_scores(matrix: np.ndarray) -> dict[str, float]:
    """Mean IoU (classes with a non-empty union) and pixel accuracy of a confusion matrix (rows: truth)."""
    m = matrix.astype(np.float64)
    total = m.sum()
    union = m.sum(0) + m.sum(1) - np.diag(m)
    present = union > 0
    miou = float((np.diag(m)[present] / union[present]).mean()) if present.any() else math.nan
    return {"miou": miou, "accuracy": float(np.diag(m).sum() / total) if total else math.nan}


@dataclass
class Segmenter:
    """A segmenter ready to judge frames: the network, its classes, and the weights behind it."""

    net: nn.Module
    classes: tuple[int, ...]
    device: torch.device
    weights: dict[str, Any]  # what produced the weights (recorded in the metrics' provenance)
    predict_ids: Callable[[np.ndarray], np.ndarray] | None = None  # override (pretrained backends)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.predict_ids is not None:
            return self.predict_ids(rgb)
        return predict(self.net, self.classes, rgb, self.device)

    def meter(self) -> ConfusionMeter:
        return ConfusionMeter(self.classes)


def deeplabv3_segmenter(weights: str, device: torch.device) -> Segmenter:
    """torchvision's DeepLabV3-ResNet50 (VOC classes) mapped to the Cityscapes ids both label sets have."""
    from torchvision.models import segmentation

    from v2v.io.weights import build_torchvision_model

    net, info = build_torchvision_model(
        segmentation, "deeplabv3_resnet50", weights, "segmenter.weights", weights_backbone=None, aux_loss=None
    )
    net = net.to(device).eval()
    classes = tuple(sorted(VOC_TO_CITYSCAPES.values()))
    lookup = np.zeros(21, np.int64)  # VOC classes not shared map to 0 (unlabeled), which is not scored
    for voc, city in VOC_TO_CITYSCAPES.items():
        lookup[voc] = city
    mean = torch.tensor([0.485, 0.456, 0.406], device=device)[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225], device=device)[:, None, None]

    @torch.no_grad()
    def predict_ids(rgb: np.ndarray) -> np.ndarray:
        x = (torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().to(device) / 255 - mean) / std
        out = net(x[None])["out"].argmax(1)[0].cpu().numpy()
        return lookup[out]

    return Segmenter(net, classes, device, info.as_dict(), predict_ids)


def frames_and_labels(
    items: Iterator[tuple[np.ndarray, np.ndarray]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(rgb uint8 (H, W, 3), label ids (H, W))`` pairs into training tensors."""
    images, labels = [], []
    for rgb, ids in items:
        images.append(image_tensor(rgb))
        labels.append(torch.from_numpy(ids.astype(np.int64)))
    if not images:
        return torch.zeros(0, 3, 8, 8), torch.zeros(0, 8, 8, dtype=torch.int64)
    return torch.stack(images), torch.stack(labels)


def labelled_frames(
    frames_root: Path,  # data/frames
    label_root: Path,  # data/maps/segment
    video_ids: Sequence[str],
    max_per_video: int | None = None,  # evenly spaced frames of each video (None: all)
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rgb, label ids)`` of the frames of ``video_ids`` whose label map exists (videos without maps are skipped)."""
    from v2v.io.frames import frame_name, frame_paths
    from v2v.io.maps import read_label, read_rgb

    for video_id in video_ids:
        labels = label_root / video_id / "label"
        if not labels.is_dir():
            continue
        files = frame_paths(frames_root / video_id)
        picks = list(range(len(files)))
        if max_per_video is not None and len(files) > max_per_video:
            picks = sorted({round(i * (len(files) - 1) / max(1, max_per_video - 1)) for i in range(max_per_video)})
        for t in picks:
            label_file = labels / frame_name(t)
            if not label_file.is_file():
                raise FileNotFoundError(
                    f"{label_file}: missing label map; rerun the segment stage (`dvc repro segment`)"
                )
            rgb = read_rgb(files[t])
            ids = read_label(label_file)
            if ids.shape != rgb.shape[:2]:
                raise ValueError(f"{label_file}: {ids.shape[::-1]} label map for {rgb.shape[1::-1]} frames")
            yield rgb, ids


def save_segmenter(path: Path, segmenter: Segmenter, summary: dict[str, Any]) -> None:
    """``model.pt``: the backend, its weights' provenance and (trained backend) the state dict + network config."""
    payload = {
        "format": SEGMENTER_FORMAT,
        "weights": segmenter.weights,
        "classes": list(segmenter.classes),
        "summary": summary,
        "network": segmenter.net.config() if isinstance(segmenter.net, SegmentationNet) else None,
        "state_dict": segmenter.net.state_dict() if isinstance(segmenter.net, SegmentationNet) else None,
    }
    write_torch(path, payload)


def load_segmenter(path: Path, device: torch.device) -> Segmenter:
    """The judge the ``segmenter`` stage wrote (``weights_only`` loading)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no segmenter; run the segmenter stage first (`dvc repro segmenter`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path}: cannot read the segmenter ({type(exc).__name__}); rerun `dvc repro -f segmenter`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != SEGMENTER_FORMAT:
        raise ValueError(f"{path}: not a v2v segmenter file; rerun `dvc repro -f segmenter`")
    weights = payload["weights"]
    if payload["network"] is None:  # a pretrained backend: rebuilt from its weights policy
        return deeplabv3_segmenter(weights["weights"], device)
    net = SegmentationNet(**payload["network"])
    net.load_state_dict(payload["state_dict"])
    return Segmenter(net.to(device).eval(), tuple(payload["classes"]), device, weights)
