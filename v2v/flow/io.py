"""On-disk layout of the flow stage, and the one reader that the training dataset and the tests use.

``data/flow/<video_id>/``:

* ``NNNNNN.npy`` — backward flow of frame ``NNNNNN`` (from frame 1 on): ``(H, W, 2)`` float16
  pixels ``(dx, dy)``, ``warp(frame_{t-1}, flow_t) ≈ frame_t`` (see :mod:`v2v.ops.warp`); float16
  keeps 0.016 px for ``|flow| < 64`` at half the size of float32;
* ``NNNNNN_valid.png`` — its confidence mask (1-bit PNG, read as 255 = trusted), see :mod:`v2v.flow.confidence`;
* ``meta.json`` — backend, weights, settings, thresholds, pair count, EPE when measured.

A video with a single frame has no pairs: its folder holds only ``meta.json`` (``num_pairs: 0``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2v.io.frames import frame_name
from v2v.io.maps import read_flow, read_mask, write_flow, write_mask

FLOW_DTYPE = np.float16
META_FILE = "meta.json"


def flow_path(folder: Path, t: int) -> Path:
    return folder / frame_name(t, ".npy")


def valid_path(folder: Path, t: int) -> Path:
    return folder / frame_name(t, "_valid.png")


def write_flow_pair(folder: Path, t: int, flow: np.ndarray, valid: np.ndarray) -> None:
    """Write frame ``t``'s backward flow ``(H, W, 2)`` (as float16) and confidence ``(H, W) bool``.

    ``folder`` is a staging folder that the caller publishes whole (:func:`v2v.io.atomic.atomic_dir`),
    so the files go straight in, without a temporary file and rename each (0.35 ms per pair).
    """
    if t < 1:
        raise ValueError(f"flow is stored from frame 1 on (frame 0 has no previous frame), got t={t}")
    if valid.shape != flow.shape[:2]:
        raise ValueError(f"flow {flow.shape} and confidence mask {valid.shape} of frame {t} differ in size")
    write_flow(flow_path(folder, t), flow, dtype=FLOW_DTYPE, atomic=False)
    write_mask(valid_path(folder, t), valid, atomic=False)


def read_flow_pair(folder: str | Path, t: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Frame ``t``'s backward flow ``(H, W, 2) float32`` and confidence mask ``(H, W) bool``."""
    folder = Path(folder)
    if t < 1:
        raise ValueError(f"{folder}: flow is stored from frame 1 on, got t={t}")
    flow = read_flow(flow_path(folder, t))
    valid = read_mask(valid_path(folder, t))
    if valid.shape != flow.shape[:2]:
        raise ValueError(
            f"{folder}: frame {t}: flow {flow.shape[:2]} and confidence mask {valid.shape} differ in size; "
            "re-run the flow stage"
        )
    return flow, valid


def read_flow_meta(folder: str | Path) -> dict[str, Any]:
    """A video's flow ``meta.json`` (FileNotFoundError naming the file when the folder is incomplete)."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; this flow folder is incomplete, re-run the flow stage")
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return meta
