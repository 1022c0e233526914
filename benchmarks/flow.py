"""Flow speed and accuracy per backend and preset, next to bare frame decoding and the raw OpenCV call.

    .venv/bin/python benchmarks/flow.py [--sizes 256x128 512x256 1024x512 --frames 13 --repeats 3 --threads 2]

For each size, a synthetic street clip (camera pan, cars, walking people; exact backward flow) is
written as JPEG q95 frames, as the extract stage writes them. Then, in one run, medians of the repeats:

* ``decode``: reading the frame files alone (``read_rgb``), the floor any flow stage pays;
* ``raw dis <preset>``: ``cv2.DISOpticalFlow.calc(gray_t, gray_t-1)`` on frames already decoded
  and converted to grey — the OpenCV call with nothing around it; its EPE against the truth;
* ``stage dis <preset>``: :func:`v2v.flow.video.compute_video_flow` — decode, flow, confidence
  mask (photometric + frame checks, the defaults), float16 + PNG writes — with one DIS instance
  (OpenCV's threads inside each pair) and with ``--threads`` instances side by side (single-threaded
  kernels, pairs in parallel: the stage's default ``flow.workers``), and each one's ratio to raw;
* ``stage dis medium +fb``: the same with the forward-backward check (a second flow per pair);
* ``stage raft_small``: RAFT with random weights (``weights: none``), speed only — EPE n/a.

Threads: OpenCV and torch are both limited to ``--threads`` (2 = the project's CI machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from v2v.data.synthetic import generate_clip
from v2v.flow.confidence import ConfidenceSettings
from v2v.flow.dis import PRESETS, DisFlow, to_gray
from v2v.flow.estimator import FlowEstimator
from v2v.flow.raft import RaftFlow
from v2v.flow.truth import endpoint_error
from v2v.flow.video import compute_video_flow
from v2v.io.maps import read_rgb, write_rgb


def median_rate(count: int, repeats: int, body: Callable[[], None]) -> float:
    """Items per second of ``body`` (which handles ``count`` items), median over ``repeats`` runs."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        body()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def make_frames(folder: Path, width: int, height: int, frames: int) -> tuple[list[Path], list[np.ndarray]]:
    """JPEG q95 frames of a synthetic street clip, and the true backward flow of frames 1..T-1."""
    files, truth = [], []
    for t, frame in enumerate(generate_clip("street", width=width, height=height, num_frames=frames, seed=0)):
        path = folder / f"{t:06d}.jpg"
        write_rgb(path, frame.rgb)
        files.append(path)
        if t > 0:
            truth.append(frame.flow)
    return files, truth


def stage_rate(
    files: list[Path],
    estimator: FlowEstimator | list[FlowEstimator],
    settings: ConfidenceSettings,
    out: Path,
    repeats: int,
) -> float:
    compute_video_flow(files[:2], out / "warm", estimator, settings)  # warm-up (first-call costs)
    return median_rate(len(files) - 1, repeats, lambda: compute_video_flow(files, out / "run", estimator, settings))


def bench_size(
    width: int, height: int, frames: int, repeats: int, raft_pairs: int, threads: int, tmp: Path
) -> list[dict[str, Any]]:
    folder = tmp / f"{width}x{height}"
    files, truth = make_frames(folder / "frames", width, height, frames)
    pairs = len(files) - 1
    rows: list[dict[str, Any]] = []
    size = f"{width}x{height}"
    decode = median_rate(len(files), repeats, lambda: [read_rgb(f) for f in files])
    rows.append({"size": size, "what": "decode (JPEG frames)", "per_s": decode, "epe": None})
    grays = [to_gray(read_rgb(f)) for f in files]
    settings = ConfidenceSettings()
    for preset in PRESETS:
        dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        dis.calc(grays[1], grays[0], None)
        raw = median_rate(
            pairs, repeats, lambda dis=dis: [dis.calc(grays[t], grays[t - 1], None) for t in range(1, len(grays))]
        )
        epe = float(
            np.mean(
                [
                    endpoint_error(dis.calc(grays[t], grays[t - 1], None), truth[t - 1]).mean()
                    for t in range(1, len(grays))
                ]
            )
        )
        rows.append({"size": size, "what": f"raw dis {preset}", "per_s": raw, "epe": epe})
        for workers in sorted({1, threads}):
            stage = stage_rate(files, [DisFlow(preset) for _ in range(workers)], settings, folder / preset, repeats)
            what = f"stage dis {preset}, {workers} worker{'s' if workers > 1 else ''}"
            rows.append({"size": size, "what": what, "per_s": stage, "epe": epe, "ratio": stage / raw})
    fb = ConfidenceSettings(forward_backward=True)
    rate = stage_rate(files, [DisFlow("medium") for _ in range(threads)], fb, folder / "fb", repeats)
    rows.append({"size": size, "what": f"stage dis medium +fb, {threads} workers", "per_s": rate, "epe": epe})
    raft = RaftFlow(model="small", weights="none", iterations=12)
    some = files[: raft_pairs + 1]
    rate = stage_rate(some, raft, settings, folder / "raft", 1)
    rows.append({"size": size, "what": "stage raft_small (random weights, 12 it.)", "per_s": rate, "epe": None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["256x128", "512x256", "1024x512"])
    parser.add_argument("--frames", type=int, default=25, help="frames per clip (pairs = frames - 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--raft-pairs", type=int, default=2, help="pairs timed for RAFT (slow on CPU)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.sizes:
            width, height = (int(v) for v in spec.split("x"))
            rows.extend(bench_size(width, height, args.frames, args.repeats, args.raft_pairs, args.threads, Path(tmp)))
    print(f"\nflow benchmark: {args.frames - 1} pairs per clip, median of {args.repeats}, {args.threads} threads")
    print(f"{'size':>9}  {'what':<42} {'frames/s':>9} {'EPE px':>7}  {'stage/raw':>9}")
    for row in rows:
        epe = f"{row['epe']:.3f}" if row["epe"] is not None else "n/a"
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        print(f"{row['size']:>9}  {row['what']:<42} {row['per_s']:>9.1f} {epe:>7}  {ratio:>9}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
