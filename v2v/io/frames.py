"""The frames-folder format the extract stage writes and every later stage reads.

``data/frames/index.json`` lists every extracted video (id, split, size, frame count); each video is a
folder ``data/frames/<video_id>/`` of numbered frames plus ``meta.json`` (the frame file pattern and count,
the source's size and rate, and the geometry that mapped source pixels to frame pixels). Readers live
here, beside nothing that decodes video: a change to the decoder reruns the extract stage only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

META_FILE = "meta.json"
FRAME_DIGITS = 6  # frame t of a video (and of every per-frame output) is the file 000000 + t: 000042.png


def frame_name(t: int, suffix: str = ".png") -> str:
    """The file name of frame ``t`` in every per-frame folder (frames, maps, flow, results): ``000042.png``."""
    return f"{t:0{FRAME_DIGITS}d}{suffix}"


def frame_pattern(suffix: str = ".png", folder: str = "") -> str:
    """The printf pattern of :func:`frame_name` that a ``meta.json`` records (``map/%06d.png``), for other tools."""
    pattern = f"%0{FRAME_DIGITS}d{suffix}"
    return f"{folder}/{pattern}" if folder else pattern


INDEX_FILE = "index.json"  # beside the video folders


def read_index(index: Path) -> list[dict[str, Any]]:
    """The videos of ``index.json`` (``video_id``, ``split``, ``num_frames``, ``width``, ``height``, ...)."""
    if not index.is_file():
        raise FileNotFoundError(f"{index}: missing; run the extract stage first (`dvc repro extract`)")
    videos: list[dict[str, Any]] = json.loads(index.read_text(encoding="utf-8"))["videos"]
    return videos


def frame_paths(folder: Path) -> list[Path]:
    """The frame files of one extracted video, in order (reads ``meta.json``)."""
    meta = read_meta(folder)
    return [folder / (meta["frame_pattern"] % i) for i in range(meta["num_frames"])]


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; this frame folder is incomplete, re-run the extract stage")
    return json.loads(path.read_text(encoding="utf-8"))


def source_frame(meta: dict[str, Any], i: int) -> int:
    """Index of the source frame that extracted frame ``i`` shows (by presentation time; recorded by extract)."""
    frames = meta.get("source_frames")
    if frames is None:
        raise ValueError(
            f"frames of {meta.get('video_id')!r}: meta.json lacks source_frames (extracted by an older version); "
            "delete data/frames and re-run the extract stage"
        )
    return int(frames[i])


def apply_geometry(image: np.ndarray, meta: dict[str, Any], nearest: bool = False) -> np.ndarray:
    """Map a per-pixel source-resolution array (a label map, a ground-truth image) the way the frames were.

    ``nearest=True`` for label and instance maps (no new values are invented).
    """
    geo = meta["geometry"]
    scaled = (geo["scaled_width"], geo["scaled_height"])
    if (image.shape[1], image.shape[0]) != (meta["source_width"], meta["source_height"]):
        raise ValueError(
            f"expected a {meta['source_width']}x{meta['source_height']} array for video {meta['video_id']}, "
            f"got {image.shape[1]}x{image.shape[0]}"
        )
    if scaled != (image.shape[1], image.shape[0]):
        shrink = scaled[0] * scaled[1] < image.shape[0] * image.shape[1]
        mode = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = cv2.resize(image, scaled, interpolation=mode)
    return image[geo["y0"] : geo["y0"] + meta["height"], geo["x0"] : geo["x0"] + meta["width"]]


SPLIT_ADVICE = (
    "put at least one video in a train/ and one in a test/ subfolder of extract.input_dir, or leave them loose "
    "and set extract.test_fraction (0 < f < 1) to hold some out (a single loose video is split in time)"
)


def split_problem(videos: list[tuple[str, str]]) -> str | None:
    """What is wrong with a split of ``(video_id, split)`` pairs (no train or no test video), or None."""
    splits = {split: [vid for vid, s in videos if s == split] for split in ("train", "test")}
    missing = [split for split, ids in splits.items() if not ids]
    if not videos or not missing:
        return None
    listing = "; ".join(f"{split}: {', '.join(ids) or 'none'}" for split, ids in splits.items())
    return f"no {' and no '.join(missing)} video ({listing}); {SPLIT_ADVICE}"
