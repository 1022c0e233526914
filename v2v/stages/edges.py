"""``edges`` stage: every extracted video → per-frame binary edge maps.

Outputs ``data/maps/edges/<video_id>/NNNNNN.png`` (8-bit, 0 / 255) + ``meta.json``. Canny with an
optional Gaussian pre-blur, fixed or automatic thresholds (see :mod:`v2v.maps.edges`); with
``edges.instance_boundaries: true`` the boundaries of the segment stage's instance maps are OR-ed
in (the segment maps of the video must exist). Per-video atomic folders, reused while their
fingerprint matches.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import v2v.maps.edges as edge_ops
from v2v.config import Config, EdgesConfig, to_dict
from v2v.io.atomic import atomic_dir, write_json
from v2v.io.frames import META_FILE, frame_name, frame_pattern, read_meta
from v2v.io.maps import read_instance, write_mask
from v2v.maps.frames import code_fingerprint, open_video, read_frame
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.stages.maps_common import run_map_stage

log = logging.getLogger(__name__)

CODE = code_fingerprint([edge_ops])


def settings(ec: EdgesConfig) -> dict[str, Any]:
    """The settings that decide the maps (``workers`` does not)."""
    return {k: v for k, v in to_dict(ec).items() if k != "workers"}


def edges_video(
    frames_root: Path,  # data/frames
    video_id: str,  # which video
    dest: Path,  # its output folder (replaced atomically)
    ec: EdgesConfig,  # settings
    segment_dir: Path | None,  # <segment maps>/<video_id> when instance boundaries are added
    fingerprint_value: str,  # recorded in meta.json
) -> dict[str, Any]:
    """Edge maps of one video into ``dest``; returns its ``meta.json`` content."""
    meta, files = open_video(frames_root, video_id)
    low, high = (ec.low, ec.high) if ec.thresholds == "fixed" else (None, None)
    with atomic_dir(dest) as tmp:

        def one(item: tuple[int, Path]) -> float:
            i, path = item
            edges = edge_ops.canny(
                read_frame(path, meta), sigma=ec.sigma, low=low, high=high, auto_spread=ec.auto_spread
            )
            if segment_dir is not None:
                instance = read_instance(segment_dir / "instance" / frame_name(i))
                if instance.shape != edges.shape:
                    raise ValueError(
                        f"{segment_dir}: instance map {instance.shape} does not match frames {edges.shape}"
                    )
                edges |= edge_ops.instance_boundaries(instance)
            write_mask(tmp / frame_name(i), edges)
            return float(edges.mean())

        with ThreadPoolExecutor(max_workers=ec.workers) as pool:  # OpenCV decode/Canny/encode release the GIL
            work = pool.map(one, enumerate(files))
            density = sum(tqdm(work, total=len(files), desc=f"edges {video_id}", unit="frame", leave=False))
        out = {
            "video_id": video_id,
            "num_frames": len(files),
            "width": meta["width"],
            "height": meta["height"],
            "frame_pattern": frame_pattern(),
            "encoding": "8-bit PNG, 255 = edge",
            "method": "opencv GaussianBlur + Canny (L2 gradient)",
            "settings": settings(ec),
            "edge_density": round(density / max(len(files), 1), 5),
            "fingerprint": fingerprint_value,
        }
        write_json(tmp / META_FILE, out)
    return out


def segment_dir(ec: EdgesConfig, segment_maps: Path, video_id: str) -> Path | None:
    """The video's segment maps when instance boundaries are OR-ed in (a clear error when they are missing)."""
    if not ec.instance_boundaries:
        return None
    folder = segment_maps / video_id
    if not (folder / META_FILE).is_file():
        raise FileNotFoundError(
            f"{folder}: no segment maps for {video_id}; edges.instance_boundaries needs the segment stage's "
            "output (dvc repro segment), or set edges.instance_boundaries: false"
        )
    return folder


def edges_task(
    ec: EdgesConfig, frames_root: Path, edge_maps: Path, segment_maps: Path, video_id: str, fp: str
) -> dict[str, Any]:
    """One video's edge maps (a task of :func:`for_each_video`, in this process or on a Dask worker)."""
    return edges_video(frames_root, video_id, edge_maps / video_id, ec, segment_dir(ec, segment_maps, video_id), fp)


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Edge maps for every extracted video; returns the metrics written to ``metrics/edges.json``."""
    ec = cfg.edges

    def inputs_of(video_id: str) -> dict[str, Any]:
        seg = segment_dir(ec, paths.segment_maps, video_id)
        return {"settings": settings(ec), "segment": read_meta(seg)["fingerprint"] if seg is not None else None}

    return run_map_stage(
        "edges",
        cfg,
        paths,
        CODE,
        inputs_of=inputs_of,
        work=functools.partial(edges_task, ec, paths.frames, paths.edge_maps, paths.segment_maps),
        summary=lambda done: {"edge_density": float(np.mean([m["edge_density"] for m in done])) if done else 0.0},
    )


def main() -> None:
    stage_main("edges", run)


if __name__ == "__main__":
    main()
