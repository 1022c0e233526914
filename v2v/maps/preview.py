"""Contact-sheet rows for the map stages: frame | label colours | instance boundaries | edges | pose map | face sketch.

Each stage logs the same kind of sheet from whatever maps exist on disk when it runs (a map not
made yet shows as a black tile), so the last map stage's sheet shows all of them side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from v2v.data.labels import colorize
from v2v.io.frames import frame_name
from v2v.io.maps import read_instance, read_label, read_mask, read_rgb
from v2v.maps.edges import instance_boundaries

RGB = npt.NDArray[np.uint8]
COLUMNS = ("frame", "label colours", "instance boundaries", "edges", "pose map", "face sketch")


def _blend(frame: RGB, overlay: RGB, alpha: float = 0.6) -> RGB:
    return np.clip(frame * (1 - alpha) + overlay * alpha, 0, 255).astype(np.uint8)


def preview_row(
    frame_path: Path,  # the extracted frame
    segment_dir: Path | None,  # <segment maps>/<video_id> (or None)
    edges_dir: Path | None,  # <edge maps>/<video_id> (or None)
    pose_dir: Path | None,  # <pose maps>/<video_id> (or None)
    index: int,  # frame number
    face_dir: Path | None = None,  # <face maps>/<video_id> (or None)
) -> list[RGB]:
    """The six tiles of one frame; maps blended over the frame where that reads better."""
    frame = read_rgb(frame_path)
    black = np.zeros_like(frame)
    name = frame_name(index)
    label_tile, boundary_tile, edge_tile, pose_tile = black, black, black, black
    if segment_dir is not None and (segment_dir / "label" / name).is_file():
        label_tile = _blend(frame, colorize(read_label(segment_dir / "label" / name)))
        boundary = instance_boundaries(read_instance(segment_dir / "instance" / name))
        boundary_tile = frame.copy()
        boundary_tile[boundary] = (255, 255, 255)
    if edges_dir is not None and (edges_dir / name).is_file():
        edge_tile = np.repeat(read_mask(edges_dir / name)[..., None], 3, axis=2).astype(np.uint8) * 255
    if pose_dir is not None and (pose_dir / "map" / name).is_file():
        pose = read_rgb(pose_dir / "map" / name)
        pose_tile = np.where(pose.any(axis=2, keepdims=True), pose, frame // 3).astype(np.uint8)
    face_tile = black
    if face_dir is not None and (face_dir / "map" / name).is_file():
        sketch = read_mask(face_dir / "map" / name)
        face_tile = frame // 3
        face_tile[sketch] = (255, 255, 255)
    return [frame, label_tile, boundary_tile, edge_tile, pose_tile, face_tile]
