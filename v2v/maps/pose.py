"""Pose maps: keypoint backends (COCO-17), COCO-17 → OpenPose BODY_25, smoothing and rendering.

Keypoints are ``(17, 3)`` float arrays ``(x, y, c)`` per person in COCO order (pixel centres at
integer coordinates), ``c`` a confidence in [0, 1]. The written JSON follows OpenPose
(``{"people": [{"pose_keypoints_2d": [x, y, c] * 25}]}``, BODY_25 order) and keeps the COCO-17
original beside it. Rendering draws each BODY_25 limb as a stick in its own RGB colour (trunk
reds, right arm oranges/yellows, left arm greens, right leg teals, left leg blues, head purples)
with discs at the joints; a limb is skipped when either end is below the confidence threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # torch loads where a model is built or run, so a stage that skips never loads it
    import torch

from v2v.io.weights import build_torchvision_detector
from v2v.maps.detectron2 import detectron2_inputs, load_detectron2
from v2v.ops.device import inference_mode

KP = npt.NDArray[np.float64]

BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip

# COCO-17 index → BODY_25 index (Neck = mid-shoulders and MidHip = mid-hips are derived; feet stay empty)
COCO_TO_BODY25: dict[int, int] = {
    0: 0, 6: 2, 8: 3, 10: 4, 5: 5, 7: 6, 9: 7, 12: 9, 14: 10, 16: 11,
    11: 12, 13: 13, 15: 14, 2: 15, 1: 16, 4: 17, 3: 18,
}  # fmt: skip
COCO_LEFT_SHOULDER, COCO_RIGHT_SHOULDER, COCO_LEFT_HIP, COCO_RIGHT_HIP = 5, 6, 11, 12

# BODY_25 limbs (joint a, joint b) and their RGB colours, one colour per limb
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 8), (1, 2), (1, 5),  # trunk, shoulders
    (2, 3), (3, 4),  # right arm
    (5, 6), (6, 7),  # left arm
    (8, 9), (9, 10), (10, 11),  # right leg
    (8, 12), (12, 13), (13, 14),  # left leg
    (1, 0), (0, 15), (15, 17), (0, 16), (16, 18),  # head
    (14, 19), (19, 20), (14, 21),  # left foot
    (11, 22), (22, 23), (11, 24),  # right foot
)  # fmt: skip
LIMB_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (220, 40, 40), (180, 0, 30),  # trunk: reds
    (255, 140, 0), (255, 220, 0),  # right arm: orange, yellow
    (120, 255, 0), (0, 190, 60),  # left arm: greens
    (0, 255, 170), (0, 200, 200), (0, 140, 140),  # right leg: teals
    (0, 150, 255), (0, 80, 255), (0, 20, 170),  # left leg: blues
    (200, 0, 255), (150, 0, 200), (255, 0, 255), (110, 0, 150), (255, 100, 230),  # head: purples
    (0, 40, 120), (20, 20, 100), (40, 0, 140),  # left foot: dark blues
    (0, 110, 110), (0, 90, 80), (0, 70, 100),  # right foot: dark teals
)  # fmt: skip
assert len(LIMBS) == len(LIMB_COLORS) == len(set(LIMB_COLORS))


@dataclass
class Person:
    """One detected (or true) person of one frame."""

    keypoints: KP  # (17, 3) COCO-17 (x, y, c)
    score: float = 1.0  # detection score
    person_id: int = -1  # tracked id within the video (-1: untracked)
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific fields kept in the JSON

    def __post_init__(self) -> None:
        assert self.keypoints.shape == (17, 3), self.keypoints.shape


def coco_to_body25(coco: KP) -> KP:
    """``(17, 3)`` COCO-17 → ``(25, 3)`` BODY_25; Neck/MidHip are midpoints (confidence: the lower end's)."""
    assert coco.shape == (17, 3), coco.shape
    body = np.zeros((25, 3), np.float64)
    for c_index, b_index in COCO_TO_BODY25.items():
        body[b_index] = coco[c_index]
    for target, (a, b) in ((1, (COCO_LEFT_SHOULDER, COCO_RIGHT_SHOULDER)), (8, (COCO_LEFT_HIP, COCO_RIGHT_HIP))):
        if coco[a, 2] > 0 and coco[b, 2] > 0:
            body[target, :2] = (coco[a, :2] + coco[b, :2]) / 2
            body[target, 2] = min(coco[a, 2], coco[b, 2])
    return body


def line_thickness(height: int, width: int, line_width: float) -> int:
    """Stick width in pixels: ``line_width`` at a 512-pixel short side, scaled with resolution."""
    return max(1, round(line_width * min(height, width) / 512))


def render_pose(
    people: Sequence[Person],
    height: int,
    width: int,
    *,
    threshold: float = 0.01,  # points with lower confidence are not drawn
    line_width: float = 6.0,  # stick width at a 512-pixel short side
) -> npt.NDArray[np.uint8]:
    """``(H, W, 3) uint8`` RGB pose map on black: coloured limbs, discs at their joints."""
    canvas = np.zeros((height, width, 3), np.uint8)
    thick = line_thickness(height, width, line_width)
    for person in people:
        body = coco_to_body25(person.keypoints)
        for (a, b), color in zip(LIMBS, LIMB_COLORS, strict=True):
            if body[a, 2] < threshold or body[b, 2] < threshold or body[a, 2] <= 0 or body[b, 2] <= 0:
                continue
            pa = (round(float(body[a, 0])), round(float(body[a, 1])))
            pb = (round(float(body[b, 0])), round(float(body[b, 1])))
            cv2.line(canvas, pa, pb, color, thickness=thick, lineType=cv2.LINE_8)
            for p in (pa, pb):
                cv2.circle(canvas, p, max(1, thick // 2 + 1), color, thickness=-1, lineType=cv2.LINE_8)
    return canvas


def people_json(people: Sequence[Person], height: int, width: int) -> dict[str, Any]:
    """OpenPose-like JSON of one frame (BODY_25 ``pose_keypoints_2d``), with the COCO-17 original."""
    out = []
    for person in people:
        entry = {
            "person_id": person.person_id,
            "score": float(person.score),
            "pose_keypoints_2d": [float(v) for v in coco_to_body25(person.keypoints).reshape(-1)],
            "coco17_keypoints_2d": [float(v) for v in person.keypoints.reshape(-1)],
            **person.extra,
        }
        out.append(entry)
    return {"version": 1.3, "format": "BODY_25", "width": width, "height": height, "people": out}


def people_from_json(data: dict[str, Any]) -> list[Person]:
    """Read back :func:`people_json` (the COCO-17 original)."""
    return [
        Person(np.asarray(p["coco17_keypoints_2d"], np.float64).reshape(17, 3), p["score"], p["person_id"])
        for p in data["people"]
    ]


def keypoint_box(keypoints: KP, threshold: float) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of the confident points, or None when none is confident."""
    ok = keypoints[:, 2] >= max(threshold, 1e-9)
    if not ok.any():
        return None
    xs, ys = keypoints[ok, 0], keypoints[ok, 1]
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def smooth_tracks(frames: list[list[Person]], alpha: float) -> list[list[Person]]:
    """Exponential smoothing of each tracked person's keypoints over time (``alpha``: weight of the past).

    A point is smoothed only when it was confident in the previous frame too; untracked people
    (``person_id < 0``) and ``alpha == 0`` pass through unchanged.
    """
    if alpha <= 0:
        return frames
    state: dict[int, KP] = {}
    out: list[list[Person]] = []
    for people in frames:
        smoothed = []
        for person in people:
            kp = person.keypoints.copy()
            prev = state.get(person.person_id) if person.person_id >= 0 else None
            if prev is not None:
                both = (prev[:, 2] > 0) & (kp[:, 2] > 0)
                kp[both, :2] = alpha * prev[both, :2] + (1 - alpha) * kp[both, :2]
            if person.person_id >= 0:
                state[person.person_id] = kp
            smoothed.append(Person(kp, person.score, person.person_id, person.extra))
        out.append(smoothed)
    return out


class TorchvisionPose:
    """Keypoint R-CNN R50-FPN from ``torchvision.models.detection`` (COCO-17 keypoints)."""

    def __init__(
        self,
        *,
        weights: str = "default",  # "default" | "none" (random init, tests only) | state-dict path
        score_threshold: float = 0.5,  # drop people scoring below
        min_size: int = 800,  # torchvision resizes the shorter side to this before inference
        max_detections: int = 100,  # at most this many objects per frame
        device: torch.device | None = None,  # where the model runs
    ) -> None:
        import torch

        self.device = device or torch.device("cpu")
        self.net, self.weights = build_torchvision_detector(
            "keypointrcnn_resnet50_fpn",
            weights,
            "pose.weights",
            box_score_thresh=score_threshold,
            box_detections_per_img=max_detections,
            min_size=min_size,
        )
        self.net.to(self.device)
        self.score_threshold = score_threshold

    @inference_mode
    def __call__(self, frames: Sequence[npt.NDArray[np.uint8]]) -> list[list[Person]]:
        """People of each frame of a batch (one forward pass); confidences are sigmoids of the heatmap logits."""
        import torch

        tensors = []
        for rgb in frames:
            assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
            tensors.append(torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1).float() / 255)
        result = []
        for out in self.net(tensors):
            people = []
            keypoints = out["keypoints"].cpu().numpy()  # (N, 17, 3): x, y, visibility flag
            conf = torch.sigmoid(out["keypoints_scores"].float()).cpu().numpy()  # (N, 17)
            for kp, c, score, label in zip(
                keypoints, conf, out["scores"].cpu().numpy(), out["labels"].cpu().numpy(), strict=True
            ):
                if score < self.score_threshold or int(label) != 1:  # category 1 = person
                    continue
                people.append(Person(np.concatenate([kp[:, :2], c[:, None]], 1).astype(np.float64), float(score)))
            result.append(people)
        return result

    def info(self) -> dict[str, Any]:
        return {"backend": "torchvision", "weights": self.weights.as_dict(), "keypoints": "coco17"}


class Detectron2Pose:
    """A detectron2 keypoint model (e.g. ``COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml``)."""

    def __init__(
        self,
        *,
        config: str,  # detectron2 config file or model-zoo config name
        weights: str,  # weights file, "default" (model zoo URL, online) or "none"
        score_threshold: float = 0.5,  # drop people scoring below
        device: torch.device | None = None,  # where the model runs
    ) -> None:
        import torch

        self.model, self.cfg, _, self.weights = load_detectron2(config, weights, device, "pose")
        self.score_threshold = score_threshold
        self.device = device or torch.device("cpu")

    @inference_mode
    def __call__(self, frames: Sequence[npt.NDArray[np.uint8]]) -> list[list[Person]]:
        result = []
        for out in self.model(detectron2_inputs(frames, self.cfg, self.device)):
            inst = out["instances"].to("cpu")
            people = []
            for kp, score in zip(inst.pred_keypoints.numpy(), inst.scores.numpy(), strict=True):
                if score >= self.score_threshold:
                    kp = kp.astype(np.float64).copy()
                    kp[:, 2] = 1 / (1 + np.exp(-kp[:, 2]))  # heatmap logits → [0, 1]
                    people.append(Person(kp, float(score)))
            result.append(people)
        return result

    def info(self) -> dict[str, Any]:
        return {"backend": "detectron2", "weights": self.weights.as_dict(), "keypoints": "coco17"}
