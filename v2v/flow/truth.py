"""Ground-truth flow of a dataset, mapped onto the extracted frames, and the end-point error (EPE).

A dataset with true flow keeps it per clip as ``<ground_truth_dir>/<video_id>/flow/NNNNNN.npy``
(backward flow at source resolution, from frame 1 on) and ``flow_valid/NNNNNN.png`` (the pixels
that were visible in the previous frame) — the layout the ``sample`` stage writes. The truth
applies only while frame t of the extracted video is frame t of the source (``meta["resampled"]``
false); it is then resized and cropped like the frames (:func:`v2v.io.frames.apply_geometry`)
and its ``dx`` scaled by ``scaled_width / source_width``, ``dy`` by ``scaled_height / source_height``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from v2v.io.frames import apply_geometry, frame_name
from v2v.io.maps import read_flow, read_mask


def truth_folder(ground_truth_dir: Path | None, frames_meta: dict[str, Any]) -> tuple[Path | None, str]:
    """The clip's ground-truth folder, or ``None`` and the reason why EPE cannot be measured."""
    if ground_truth_dir is None:
        return None, "flow.ground_truth_dir is null"
    folder = ground_truth_dir / frames_meta["video_id"]
    if not (folder / "flow").is_dir():
        return None, f"no ground-truth flow in {folder / 'flow'}"
    if frames_meta.get("resampled"):
        return None, (
            f"extract resampled the video in time ({frames_meta.get('source_fps')} → {frames_meta.get('fps')} fps), "
            "so frame pairs are not the source's consecutive frames"
        )
    return folder, ""


def load_truth(
    folder: Path, t: int, frames_meta: dict[str, Any]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """True backward flow ``(H, W, 2)`` and visibility ``(H, W)`` of extracted frame ``t``, in frame pixels."""
    name = frame_name(t, "")
    flow = read_flow(folder / "flow" / f"{name}.npy")
    valid = read_mask(folder / "flow_valid" / f"{name}.png")
    geo = frames_meta["geometry"]
    mapped = np.array(apply_geometry(flow, frames_meta), dtype=np.float32)
    mapped[..., 0] *= geo["scaled_width"] / frames_meta["source_width"]
    mapped[..., 1] *= geo["scaled_height"] / frames_meta["source_height"]
    mapped_valid = apply_geometry(valid.astype(np.uint8), frames_meta, nearest=True).astype(bool)
    return mapped, mapped_valid


def endpoint_error(flow: np.ndarray, truth: np.ndarray) -> npt.NDArray[np.float32]:
    """Per-pixel end-point error ``|flow - truth|`` in pixels: ``(..., 2)`` each → ``(...)``."""
    if flow.shape != truth.shape:
        raise ValueError(f"endpoint_error: flow {flow.shape} and truth {truth.shape} differ")
    diff = np.asarray(flow, dtype=np.float32) - np.asarray(truth, dtype=np.float32)
    return np.asarray(np.sqrt((diff**2).sum(-1)))


@dataclass
class FlowScore:
    """Running pixel sums of one video's flow against the truth."""

    error_sum: float = 0.0  # EPE summed over all pixels
    pixels: int = 0
    valid_error_sum: float = 0.0  # EPE summed over the pixels the confidence mask trusts
    valid_pixels: int = 0
    hidden_pixels: int = 0  # pixels the truth marks as not visible in frame t-1
    hidden_flagged: int = 0  # ... of which the confidence mask rejects
    per_pair: list[float] = field(default_factory=list)  # mean EPE of each pair

    def add(self, flow: np.ndarray, truth: np.ndarray, valid: np.ndarray, truth_valid: np.ndarray) -> None:
        error = endpoint_error(flow, truth)
        self.error_sum += float(error.sum())
        self.pixels += error.size
        self.valid_error_sum += float(error[valid].sum())
        self.valid_pixels += int(np.count_nonzero(valid))
        self.hidden_pixels += truth_valid.size - int(np.count_nonzero(truth_valid))
        self.hidden_flagged += int(np.count_nonzero(~(truth_valid | valid)))
        self.per_pair.append(float(error.mean()))

    def summary(self) -> dict[str, float | None]:
        """``epe`` (all pixels), ``epe_valid`` (trusted pixels), ``occlusion_recall`` (hidden pixels flagged)."""
        return {
            "epe": self.error_sum / self.pixels if self.pixels else None,
            "epe_valid": self.valid_error_sum / self.valid_pixels if self.valid_pixels else None,
            "occlusion_recall": self.hidden_flagged / self.hidden_pixels if self.hidden_pixels else None,
        }
