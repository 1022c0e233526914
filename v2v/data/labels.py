"""The project's semantic label set: Cityscapes label ids (the reference's street setting).

Instance maps use the Cityscapes encoding: ``class_id * 1000 + k`` for pixels of the k-th object
of a "thing" class (k = 0, 1, ...), and the bare ``class_id`` for "stuff" pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Label:
    id: int  # Cityscapes labelId, the value stored in label maps
    name: str
    is_thing: bool  # countable objects that get instance ids
    color: tuple[int, int, int]  # RGB, for visualisation


LABELS: tuple[Label, ...] = (
    Label(0, "unlabeled", False, (0, 0, 0)),
    Label(7, "road", False, (128, 64, 128)),
    Label(8, "sidewalk", False, (244, 35, 232)),
    Label(11, "building", False, (70, 70, 70)),
    Label(12, "wall", False, (102, 102, 156)),
    Label(13, "fence", False, (190, 153, 153)),
    Label(17, "pole", False, (153, 153, 153)),
    Label(19, "traffic light", False, (250, 170, 30)),
    Label(20, "traffic sign", False, (220, 220, 0)),
    Label(21, "vegetation", False, (107, 142, 35)),
    Label(22, "terrain", False, (152, 251, 152)),
    Label(23, "sky", False, (70, 130, 180)),
    Label(24, "person", True, (220, 20, 60)),
    Label(25, "rider", True, (255, 0, 0)),
    Label(26, "car", True, (0, 0, 142)),
    Label(27, "truck", True, (0, 0, 70)),
    Label(28, "bus", True, (0, 60, 100)),
    Label(31, "train", True, (0, 80, 100)),
    Label(32, "motorcycle", True, (0, 0, 230)),
    Label(33, "bicycle", True, (119, 11, 32)),
)

BY_NAME: dict[str, Label] = {label.name: label for label in LABELS}
BY_ID: dict[int, Label] = {label.id: label for label in LABELS}

INSTANCE_DIVISOR = 1000


def label_id(name: str) -> int:
    """Label id of a class name; raises a ``KeyError`` listing the known names."""
    try:
        return BY_NAME[name].id
    except KeyError:
        raise KeyError(f"unknown label {name!r}; known labels: {', '.join(BY_NAME)}") from None


def instance_id(class_id: int, k: int) -> int:
    """Cityscapes instance encoding of the k-th object (k >= 0) of a thing class."""
    if not BY_ID.get(class_id, Label(class_id, "?", False, (0, 0, 0))).is_thing:
        raise ValueError(f"label id {class_id} is not a thing class; stuff pixels store the bare class id")
    if not 0 <= k < INSTANCE_DIVISOR:
        raise ValueError(f"instance index {k} out of range [0, {INSTANCE_DIVISOR})")
    return class_id * INSTANCE_DIVISOR + k


def colorize(label: np.ndarray) -> np.ndarray:
    """(H, W) label ids → (H, W, 3) RGB uint8 in the Cityscapes palette (unknown ids black)."""
    palette = np.zeros((256, 3), np.uint8)
    for item in LABELS:
        palette[item.id] = item.color
    return palette[label]
