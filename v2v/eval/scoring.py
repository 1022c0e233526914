"""Score systems (vid2vid, the per-frame baseline, ...) against the real videos, one video at a time.

:class:`Scorer` consumes aligned frames ``(real, {system: fake})`` in order and accumulates:
per-frame Inception features (FID), per-clip video features (``fd_<net>``), per-frame LPIPS to
the real frame, and the temporal metrics of :class:`v2v.eval.temporal.TemporalMeter`. It keeps a
batch of frames and one clip window, never a whole video. Real-video features are cached per
video hash and feature network (:class:`FeatureCache`), so re-evaluating a new model reads them.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from v2v.eval.features import FeatureNet
from v2v.eval.frechet import frechet_distance_of
from v2v.eval.preference import Preference, combine, preference
from v2v.eval.segmentation import ConfusionMeter, Segmenter, confusion_scores
from v2v.eval.temporal import TemporalMeter, to_signed
from v2v.io.atomic import atomic_path

REAL = "real"


@dataclass(frozen=True)
class FeatureCache:
    """Real-video features on disk: ``<folder>/<sha256 of (video hash, network, weights, preprocessing)>.npz``."""

    folder: Path

    def key(self, video_hash: str, net: FeatureNet, clip: tuple[int, int]) -> str:
        ident = {
            "video": video_hash,
            "metric": net.metric,
            "weights": net.weights.as_dict(),
            "preprocess": net.preprocess,
            "clip": list(clip) if net.kind == "video" else None,
            "format": 1,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]

    def load(self, key: str) -> np.ndarray | None:
        path = self.folder / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return np.asarray(data["features"])
        except (OSError, ValueError, KeyError):  # a damaged cache entry is recomputed, never trusted
            return None

    def save(self, key: str, features: np.ndarray) -> None:
        with atomic_path(self.folder / f"{key}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, features=features)


@dataclass
class VideoScores:
    """Everything measured on one video, per system."""

    video_id: str
    frames: int = 0
    features: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)  # metric → system → arrays
    lpips: dict[str, list[float]] = field(default_factory=dict)  # system → per-frame LPIPS to the real frame
    temporal: dict[str, list[float]] = field(default_factory=dict)  # temporal metric key → per-frame values
    cached_real: set[str] = field(default_factory=set)  # metrics whose real features came from the cache
    segmentation: dict[str, list[float]] = field(default_factory=dict)  # system → per-frame 1 - pixel accuracy
    confusion: ConfusionMeter | None = None  # segmenter prediction vs input labels, per system (incl. real)

    def stacked(self, metric: str, system: str) -> np.ndarray:
        arrays = self.features.get(metric, {}).get(system, [])
        return np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)


class Scorer:
    """Feed one video's frames with :meth:`add`; :meth:`finish` returns its :class:`VideoScores`."""

    def __init__(
        self,
        *,
        nets: Sequence[FeatureNet],
        lpips: torch.nn.Module | None,
        systems: Sequence[str],
        video_id: str,
        clip_frames: int,
        clip_stride: int,
        batch_size: int,
        cache: FeatureCache | None = None,
        video_hash: str | None = None,  # identifies the real video for the cache
        segmenter: Segmenter | None = None,  # segmentation consistency (needs the frames' label ids in add)
    ) -> None:
        self.nets, self.lpips, self.systems = list(nets), lpips, list(systems)
        self.clip = (clip_frames, clip_stride)
        self.batch_size = batch_size
        self.scores = VideoScores(video_id)
        self.meter = TemporalMeter(lpips=lpips)
        self.segmenter = segmenter
        if segmenter is not None:
            self.scores.confusion = segmenter.meter()
        self.cache, self.keys, self.cached = cache, {}, {}
        if cache is not None and video_hash is not None:
            for net in self.nets:
                self.keys[net.metric] = cache.key(video_hash, net, self.clip)
                found = cache.load(self.keys[net.metric])
                if found is not None:
                    self.cached[net.metric] = found
                    self.scores.cached_real.add(net.metric)
        self._batch: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        self._window: deque[dict[str, np.ndarray]] = deque(maxlen=clip_frames)
        self._since_clip = 0

    def _needs(self, net: FeatureNet, system: str) -> bool:
        return not (system == REAL and net.metric in self.cached)

    def add(self, real: np.ndarray, fakes: dict[str, np.ndarray], label_ids: np.ndarray | None = None) -> None:
        """Frame t of the real video and of every system, ``(H, W, 3) uint8`` each, and its input label ids
        ``(H, W)`` (segmentation consistency; scored when the scorer has a segmenter and they are given)."""
        if set(fakes) != set(self.systems):
            raise ValueError(f"expected frames of {self.systems}, got {sorted(fakes)}")
        for name, frame in fakes.items():
            if frame.shape != real.shape:
                raise ValueError(f"{self.scores.video_id}: {name} frame is {frame.shape}, the real one {real.shape}")
        self.meter.add(real, fakes)
        if self.segmenter is not None and label_ids is not None and self.scores.confusion is not None:
            for name, frame in {REAL: real, **fakes}.items():
                counts = self.scores.confusion.add(name, self.segmenter(frame), label_ids)
                accuracy = confusion_scores(counts)["accuracy"]
                if not np.isnan(accuracy):
                    self.scores.segmentation.setdefault(name, []).append(1.0 - accuracy)
        self.scores.frames += 1
        self._batch.append((real, fakes))
        if len(self._batch) >= self.batch_size:
            self._flush_batch()
        self._window.append({REAL: real, **fakes})
        self._since_clip += 1
        if len(self._window) == self.clip[0] and self._since_clip >= self.clip[1]:
            self._since_clip = 0
            self._flush_clip()

    def _record(self, metric: str, system: str, features: torch.Tensor) -> None:
        per_system = self.scores.features.setdefault(metric, {})
        per_system.setdefault(system, []).append(features.cpu().numpy().astype(np.float32))

    def _flush_batch(self) -> None:
        if not self._batch:
            return
        real = to_signed(np.stack([r for r, _ in self._batch]))
        fakes = {name: to_signed(np.stack([f[name] for _, f in self._batch])) for name in self.systems}
        for net in (n for n in self.nets if n.kind == "image"):
            for system, frames in ((REAL, real), *fakes.items()):
                if self._needs(net, system):
                    self._record(net.metric, system, net(frames))
        if self.lpips is not None:
            for name, frames in fakes.items():
                self.scores.lpips.setdefault(name, []).extend(self.lpips(real, frames).tolist())
        self._batch = []

    def _flush_clip(self) -> None:
        for net in (n for n in self.nets if n.kind == "video"):
            for system in (REAL, *self.systems):
                if self._needs(net, system):
                    clip = to_signed(np.stack([frames[system] for frames in self._window]))  # (T, 3, H, W)
                    self._record(net.metric, system, net(clip.transpose(0, 1)[None]))

    def finish(self) -> VideoScores:
        self._flush_batch()
        for metric, features in self.cached.items():
            self.scores.features.setdefault(metric, {})[REAL] = [features]
        if self.cache is not None:
            for metric, key in self.keys.items():
                if metric not in self.cached and (real := self.scores.stacked(metric, REAL)).size:
                    self.cache.save(key, real)
        self.scores.temporal = self.meter.per_frame
        return self.scores


def segment_means(values: Sequence[float], segment: int) -> list[float]:
    """Means of consecutive non-overlapping segments (a shorter tail counts if it has half a segment)."""
    out = []
    for start in range(0, len(values), segment):
        part = values[start : start + segment]
        if len(part) >= max(1, segment // 2):
            out.append(float(np.mean(part)))
    return out


# the preference dimensions: (name, per-frame series key of a system, what it stands for)
DIMENSIONS = (
    ("realism", "lpips", "per-frame LPIPS to the real frame (lower wins)"),
    (
        "realism_segmentation",
        "seg_error",
        "per-frame segmentation error: 1 - pixel accuracy of the segmenter's prediction against the input labels "
        "(lower wins)",
    ),
    ("temporal_tlp", "tlp", "tLP: perceptual change between frames vs the real video's (lower wins)"),
    ("temporal_warp", "warp_error", "warping error with the real video's flow (lower wins)"),
)


def series(scores: VideoScores, key: str, system: str) -> list[float]:
    """A per-frame series of one system: ``lpips``, ``seg_error`` or a temporal metric (``tlp``, ``warp_error``, ``tof``)."""
    if key == "lpips":
        return list(scores.lpips.get(system, []))
    if key == "seg_error":
        return list(scores.segmentation.get(system, []))
    return list(scores.temporal.get(f"{key}_{system}", []))


def preferences(videos: Sequence[VideoScores], a: str, b: str, segment: int, tolerance: float) -> dict[str, Preference]:
    """``P(a ≻ b)`` per dimension over every segment of every video, and all dimensions combined."""
    out: dict[str, Preference] = {}
    for name, key, _ in DIMENSIONS:
        sa, sb = [], []
        for scores in videos:
            xa, xb = segment_means(series(scores, key, a), segment), segment_means(series(scores, key, b), segment)
            n = min(len(xa), len(xb))
            sa += xa[:n]
            sb += xb[:n]
        if sa:
            out[name] = preference(sa, sb, lower_is_better=True, tolerance=tolerance)
    temporal = [p for k, p in out.items() if k.startswith("temporal")]
    if temporal:
        out["temporal"] = combine(temporal)
    if out:
        out["combined"] = combine([p for k, p in out.items() if k != "temporal"])
    return out


def distances(videos: Sequence[VideoScores], nets: Sequence[FeatureNet], systems: Sequence[str]) -> dict[str, Any]:
    """Fréchet distances of each system's features to the real ones, pooled over all videos."""
    out: dict[str, Any] = {}
    for net in nets:
        real = _pooled(videos, net.metric, REAL)
        for system in systems:
            fake = _pooled(videos, net.metric, system)
            key = net.metric if system == systems[0] else f"{net.metric}_{system}"
            if len(real) < 2 or len(fake) < 2:
                out[key] = None  # too few frames/clips for a covariance: recorded as missing, not invented
                continue
            out[key] = frechet_distance_of(fake, real, name=f"{net.metric} ({system})")
        out[f"{net.metric}_samples"] = len(real)
    return out


def _pooled(videos: Sequence[VideoScores], metric: str, system: str) -> np.ndarray:
    arrays = [a for v in videos if (a := v.stacked(metric, system)).size]
    return np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)


def scores_from_table(csv_text: str, system: str, as_name: str) -> list[VideoScores]:
    """One system's per-frame series back from ``plots/evaluate_frames.csv``, renamed ``as_name``.

    Lets two evaluations (two MLflow runs, two commits) be compared question by question.
    """
    videos: dict[str, VideoScores] = {}
    for row in csv.DictReader(csv_text.splitlines()):
        scores = videos.setdefault(row["video"], VideoScores(row["video"]))
        scores.frames += 1
        for _, key, _ in DIMENSIONS:
            value = row.get(f"{key}_{system}", "")
            if value == "":
                continue
            if key == "lpips":
                scores.lpips.setdefault(as_name, []).append(float(value))
            elif key == "seg_error":
                scores.segmentation.setdefault(as_name, []).append(float(value))
            else:
                scores.temporal.setdefault(f"{key}_{as_name}", []).append(float(value))
    if not videos:
        raise ValueError("the per-frame table has no rows")
    return list(videos.values())


def ab_preferences(
    table_a: str, table_b: str, segment: int, tolerance: float, system: str = "vid2vid"
) -> dict[str, Preference]:
    """``P(A ≻ B)`` between two evaluations' per-frame tables (same held-out videos), per dimension."""
    a, b = scores_from_table(table_a, system, "A"), scores_from_table(table_b, system, "B")
    by_id = {v.video_id: v for v in b}
    missing = sorted({v.video_id for v in a} ^ set(by_id))
    if missing:
        raise ValueError(f"the two evaluations cover different videos: {missing}; evaluate both on the same test set")
    merged = []
    for va in a:
        vb = by_id[va.video_id]
        merged.append(
            VideoScores(
                va.video_id,
                va.frames,
                lpips={**va.lpips, **vb.lpips},
                temporal={**va.temporal, **vb.temporal},
                segmentation={**va.segmentation, **vb.segmentation},
            )
        )
    return preferences(merged, "A", "B", segment, tolerance)
