"""The ``ground_truth`` backend: a dataset's own maps, mapped onto the extracted frames.

The synthetic sample (and datasets that ship labels) keep their truth per clip under
``<truth_dir>/<clip>/`` with ``label/``, ``instance/`` (PNG per source frame) and
``keypoints.json``; the clip name equals the extract stage's ``video_id``. Output frame ``i``
shows source frame :func:`~v2v.io.frames.source_frame` (by presentation time); maps are resized/cropped by
:func:`~v2v.io.frames.apply_geometry` with nearest sampling, keypoints by the same
scale and crop offset (pixel centres at integer coordinates).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2v.data.labels import INSTANCE_DIVISOR
from v2v.io.frames import apply_geometry, frame_name, source_frame
from v2v.io.maps import read_instance, read_label
from v2v.maps.pose import Person

# the generator's visibility flag → confidence: 2 visible, 1 in the frame but hidden, 0 outside the frame
VISIBILITY_CONFIDENCE = {2: 1.0, 1: 0.5, 0: 0.0}


def truth_folder(truth_dir: Path, video_id: str, key: str) -> Path:
    """``<truth_dir>/<video_id>``, or a clear error saying the backend only fits videos with truth."""
    folder = truth_dir / video_id
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no ground truth for video {video_id!r}; {key}.backend: ground_truth only works for videos "
            f"that ship their maps (the synthetic sample); set {key}.backend: torchvision for your own videos"
        )
    return folder


def segmentation(folder: Path, meta: dict[str, Any], i: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32]]:
    """(label, instance) of extracted frame ``i``, mapped like the frames (nearest)."""
    name = frame_name(source_frame(meta, i))
    label = apply_geometry(read_label(folder / "label" / name), meta, nearest=True)
    instance = apply_geometry(read_instance(folder / "instance" / name), meta, nearest=True)
    return np.ascontiguousarray(label), np.ascontiguousarray(instance)


def map_point(x: float, y: float, meta: dict[str, Any]) -> tuple[float, float]:
    """A source-pixel position → the extracted frame's pixel position (scale, then crop)."""
    geo = meta["geometry"]
    sx = geo["scaled_width"] / meta["source_width"]
    sy = geo["scaled_height"] / meta["source_height"]
    if sx != 1.0:
        x = (x + 0.5) * sx - 0.5
    if sy != 1.0:
        y = (y + 0.5) * sy - 0.5
    return x - geo["x0"], y - geo["y0"]


def keypoints(folder: Path, meta: dict[str, Any]) -> list[list[Person]]:
    """People of every extracted frame from ``keypoints.json`` (COCO-17), ids = the truth's instance ids."""
    path = folder / "keypoints.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; this clip has no keypoint ground truth")
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))["frames"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"{path}: not a keypoints file with a 'frames' list ({exc})") from exc
    width, height = meta["width"], meta["height"]
    frames = []
    for i in range(meta["num_frames"]):
        j = source_frame(meta, i)
        if j >= len(truth):
            raise ValueError(f"{path}: has {len(truth)} frames, frame {i} of the video needs source frame {j}")
        people = []
        for fig in truth[j]:
            kp = np.zeros((17, 3), np.float64)
            for n, (x, y, v) in enumerate(fig["keypoints"]):
                mx, my = map_point(float(x), float(y), meta)
                inside = 0 <= round(mx) < width and 0 <= round(my) < height
                kp[n] = (mx, my, VISIBILITY_CONFIDENCE[int(v)] if inside else 0.0)
            iid = int(fig["instance_id"])
            people.append(Person(kp, 1.0, iid % INSTANCE_DIVISOR, {"instance_id": iid}))
        frames.append(people)
    return frames
