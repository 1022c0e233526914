"""The conditioning tasks (``train.task``): what each one feeds the generator, in one table.

A task says which map stage makes its conditions, how many channels the generator sees per
frame, whether instance boundaries and a foreground branch apply, and how a condition is shown
as a picture. The data loader, the model preset, the MLflow signature, the pictures and the map
stages all read it from here.

* ``street``: one-hot Cityscapes labels (35) + an instance-boundary channel (the segment stage);
* ``edges``: one binary edge map (the edges stage);
* ``pose``: the rendered RGB pose map (the pose stage);
* ``face``: the face sketch (landmark polylines + background edges) + 14 distance-transform maps,
  one per facial-part edge: the reference's 15-channel edge→face input (the face stage);
* ``face_edges``: the face sketch alone (the reference's ``--no_dist_map``, 1 channel).

Each task also names its first-frame policy at generation (``Task.first_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from v2v.data.labels import label_id

TaskName = Literal["street", "edges", "pose", "face", "face_edges"]
MapStage = Literal["segment", "edges", "pose", "face"]

# Cityscapes label ids (= one-hot channels) always synthesised by the foreground branch: person, rider, car,
# truck, bus, caravan, trailer, train, motorcycle, bicycle
CITYSCAPES_FOREGROUND_IDS = tuple(range(label_id("person"), label_id("bicycle") + 1))
FACE_PART_EDGES = 14  # the face sketch's part curves, each with a distance map (v2v.maps.face draws them)


@dataclass(frozen=True)
class Task:
    """What one task feeds the generator."""

    name: TaskName
    maps: MapStage  # the stage that writes its per-frame conditions
    label_classes: int  # condition channels besides the instance boundary (one-hot classes for street)
    instance_boundary: bool  # one more channel: instance boundaries (street)
    foreground_ids: tuple[int, ...]  # label ids of the foreground branch (street); () = none
    picture: Literal["labels", "grey", "rgb"]  # how a condition is shown: label colours, its first channel, RGB
    # who makes the first context frames at generation (``generate.first_frames: auto``): the per-frame model
    # (single_g: the reference's street and face recipes, --use_single_G) or the generator itself from labels alone
    # (hallucinate: pose, --no_first_img)
    first_frames: Literal["single_g", "hallucinate"] = "single_g"
    part_distances: bool = False  # the sketch is followed by a distance map per facial-part edge (face)

    @property
    def one_hot_labels(self) -> bool:
        """The conditions are one-hot semantic labels (+ instances): what label remaps and class features act on."""
        return self.maps == "segment"

    @property
    def channels(self) -> int:
        """Per-frame condition channels the generator sees."""
        return self.label_classes + int(self.instance_boundary)

    @property
    def verdict(self) -> tuple[str, Literal["min", "max"]]:
        """The evaluation's metric for this task and which way is better (see :data:`VERDICTS`)."""
        return VERDICTS[self.maps]

    def preset_inputs(self) -> dict[str, object]:
        """The model preset fields this task decides."""
        return {
            "label_classes": self.label_classes,
            "instance_boundary": self.instance_boundary,
            "foreground_ids": self.foreground_ids,
        }


# each map stage's verdict: the key of metrics/evaluate.json saying how well generated frames follow those
# conditions, and which way is better (promote.metric / promote.mode: auto)
VERDICTS: dict[MapStage, tuple[str, Literal["min", "max"]]] = {
    "segment": ("seg_miou", "max"),  # segmentation consistency (the judge's labels vs the input labels)
    "edges": ("edge_f", "max"),  # edge consistency (Canny of the frames vs the input edges)
    "face": ("landmark_error", "min"),  # landmark consistency (dlib's 68 points vs the input sketch's)
    "pose": ("lpips", "min"),  # no keypoint judge offline: perceptual distance to the real frames
}

TASKS: dict[str, Task] = {
    "street": Task("street", "segment", 35, True, CITYSCAPES_FOREGROUND_IDS, "labels"),
    "edges": Task("edges", "edges", 1, False, (), "grey"),
    "pose": Task("pose", "pose", 3, False, (), "rgb", "hallucinate"),
    "face": Task("face", "face", 1 + FACE_PART_EDGES, False, (), "grey", part_distances=True),
    "face_edges": Task("face_edges", "face", 1, False, (), "grey"),
}
assert set(TASKS) == set(get_args(TaskName))


def get_task(name: str) -> Task:
    """The task called ``name`` (``train.task``); an error lists the known ones."""
    if name not in TASKS:
        raise ValueError(f"train.task: unknown task {name!r}; one of {', '.join(TASKS)}")
    return TASKS[name]


def needed_maps(task: str, instance_boundaries: bool = False) -> set[MapStage]:
    """Map stages whose output a run of ``task`` reads (edges with ``edges.instance_boundaries`` also segment)."""
    spec = get_task(task)
    return {spec.maps} | ({"segment"} if spec.maps == "edges" and instance_boundaries else set())
