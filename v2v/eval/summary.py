"""The evaluation's figures from the per-video scores: ``metrics/evaluate.json``'s numbers, the per-frame
CSV behind the DVC plots and ``v2v ab``, and the pooled series of the report."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from v2v.eval.edges import EdgeCounts
from v2v.eval.features import FeatureNet
from v2v.eval.landmarks import pooled
from v2v.eval.preference import Preference
from v2v.eval.scoring import VideoScores, distances, series

SYSTEMS = ("vid2vid", "baseline")  # the systems compared (vid2vid's metrics unsuffixed, the others _<system>)


def summarise(videos: list[VideoScores], nets: list[FeatureNet], prefs: dict[str, Preference]) -> dict[str, Any]:
    """The numbers of ``metrics/evaluate.json`` (vid2vid unsuffixed, other systems as ``<metric>_<system>``)."""
    metrics: dict[str, Any] = {"videos": len(videos), "frames": sum(v.frames for v in videos)}
    metrics.update(distances(videos, nets, SYSTEMS))
    for key in ("lpips", "warp_error", "tof", "tlp"):
        for system in (*SYSTEMS, "real"):
            values = [x for v in videos for x in series(v, key, system)]
            if values:
                metrics[key if system == SYSTEMS[0] else f"{key}_{system}"] = float(np.mean(values))
    metrics.update(segmentation_metrics(videos))
    for name, pref in prefs.items():
        metrics[f"preference_{name}"] = pref.rate
        metrics[f"preference_{name}_low"] = pref.low
        metrics[f"preference_{name}_high"] = pref.high
        metrics[f"preference_{name}_questions"] = pref.questions
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in metrics.items()}


def landmark_metrics(videos: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``landmark_error`` / ``landmark_detected`` of vid2vid, ``_baseline`` and ``_real``, pooled and per video."""
    if not videos:
        return {}
    out: dict[str, Any] = {}
    for system in (*SYSTEMS, "real"):
        suffix = "" if system == SYSTEMS[0] else f"_{system}"
        pooled_scores = pooled([scores[system] for scores in videos.values()])
        for key in ("landmark_error", "landmark_detected"):  # null (not NaN) when no face was found
            value = float(pooled_scores[key])
            out[f"{key}{suffix}"] = round(value, 5) if np.isfinite(value) else None
    out["landmark_per_video"] = {
        video: {
            f"{key}_{system}": round(float(s[key]), 5) if np.isfinite(float(s[key])) else None
            for system, s in scores.items()
            for key in ("landmark_error", "landmark_detected")
        }
        for video, scores in videos.items()
    }
    return out


def edge_metrics(videos: dict[str, dict[str, EdgeCounts]]) -> dict[str, Any]:
    """``edge_f`` / ``edge_precision`` / ``edge_recall`` of vid2vid, ``_baseline`` and ``_real``, pooled over every
    frame of every video, and per video (the edges task's verdict)."""
    if not videos:
        return {}
    out: dict[str, Any] = {}
    for system in (*SYSTEMS, "real"):
        suffix = "" if system == SYSTEMS[0] else f"_{system}"
        pooled_counts = EdgeCounts()
        for counts in videos.values():
            pooled_counts = pooled_counts.add(counts[system])
        for key, value in pooled_counts.scores().items():
            out[f"{key}{suffix}"] = round(value, 5) if value is not None else None
    out["edge_per_video"] = {
        video: {
            f"{key}_{system}": round(value, 5) if value is not None else None
            for system, c in counts.items()
            for key, value in c.scores().items()
        }
        for video, counts in videos.items()
    }
    return out


def segmentation_metrics(videos: list[VideoScores]) -> dict[str, Any]:
    """``seg_miou`` / ``seg_accuracy`` of vid2vid, ``_baseline`` and ``_real`` over all videos, and per video."""
    meters = [v.confusion for v in videos if v.confusion is not None and v.confusion.matrices]
    if not meters:
        return {}
    pooled = meters[0]
    for meter in meters[1:]:
        pooled = pooled.merged(meter)
    out: dict[str, Any] = {}
    for system in (*SYSTEMS, "real"):
        suffix = "" if system == SYSTEMS[0] else f"_{system}"
        if system in pooled.matrices:
            scores = pooled.scores(system)
            out[f"seg_miou{suffix}"], out[f"seg_accuracy{suffix}"] = scores["miou"], scores["accuracy"]
    out["seg_per_video"] = {
        v.video_id: {
            f"{name}_{system}": round(value, 5)
            for system in v.confusion.matrices
            for name, value in v.confusion.scores(system).items()
        }
        for v in videos
        if v.confusion is not None and v.confusion.matrices
    }
    return out


def per_frame_csv(videos: list[VideoScores]) -> str:
    """One row per evaluated frame: ``index, video, frame`` and every per-frame series (blank where undefined)."""
    keys = sorted(
        {f"lpips_{s}" for v in videos for s in v.lpips}
        | {f"seg_error_{s}" for v in videos for s in v.segmentation}
        | {k for v in videos for k in v.temporal}
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "video", "frame", *keys])
    index = 0
    for v in videos:
        columns = {
            **{f"lpips_{s}": values for s, values in v.lpips.items()},
            **{f"seg_error_{s}": values for s, values in v.segmentation.items()},
            **v.temporal,
        }
        for t in range(v.frames):
            row: list[Any] = [index, v.video_id, t]
            for key in keys:
                values = columns.get(key, [])
                per_frame = key.startswith(("lpips_", "seg_error_"))
                offset = t if per_frame else t - 1  # temporal series start at the pair (0, 1)
                row.append(f"{values[offset]:.6g}" if 0 <= offset < len(values) else "")
            writer.writerow(row)
            index += 1
    return buffer.getvalue()


def pooled_series(videos: list[VideoScores]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for v in videos:
        for system, values in v.lpips.items():
            out.setdefault(f"lpips_{system}", []).extend(values)
        for key, values in v.temporal.items():
            if key != "valid_fraction":
                out.setdefault(key, []).extend(values)
    return out
