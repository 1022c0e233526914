"""Flow speed and accuracy per backend and preset, next to bare frame decoding and the raw OpenCV call.

    .venv/bin/python benchmarks/flow.py [--sizes 256x128 512x256 1024x512 --frames 25 --repeats 3 --threads 2]

For each size, a synthetic street clip (camera pan, cars, walking people; exact backward flow) is
written as JPEG q95 frames, as the extract stage writes them. Then, in one run, medians of the
repeats, which run interleaved (round after round over all rows, so the machine's drift hits each
row alike):

* ``decode``: reading the frame files alone (``read_rgb``), the floor any flow stage pays;
* ``raw dis <preset>``: ``cv2.DISOpticalFlow.calc(gray_t, gray_t-1)`` on frames already decoded
  and converted to grey — the OpenCV call with nothing around it (OpenCV's own threads inside
  each pair); its EPE against the truth;
* ``raw dis <preset>, N side by side``: ``--threads`` single-threaded DIS instances on threads,
  each on every N-th pair, still with nothing around them — what the cores can do for the
  backend alone, the ceiling of any stage built on it;
* ``stage dis <preset>``: :func:`v2v.flow.video.compute_video_flow` — decode, flow, confidence
  mask (photometric + frame checks, the defaults), float16 + PNG writes — with one DIS instance
  (OpenCV's threads inside each pair) and with ``--threads`` instances side by side (single-threaded
  kernels, pairs in parallel: the stage's default ``flow.workers``), and each one's ratio to raw
  and to side by side;
* ``stage dis medium +fb``: the same with the forward-backward check (a second flow per pair);
* ``stage raft_small``: RAFT with random weights (``weights: none``), speed only — EPE n/a.

Threads: OpenCV and torch are both limited to ``--threads`` (2 = the project's CI machine).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, get_args

import cv2
import numpy as np
import torch

from v2v.data.synthetic import generate_clip
from v2v.flow.confidence import ConfidenceSettings
from v2v.flow.dis import DisFlow, DisPreset, to_gray
from v2v.flow.raft import RaftFlow
from v2v.flow.truth import endpoint_error
from v2v.flow.video import compute_video_flow, single_threaded_kernels
from v2v.io.frames import frame_name
from v2v.io.maps import read_rgb, write_rgb


def median_rates(cases: dict[str, tuple[int, Callable[[], object]]], repeats: int) -> dict[str, float]:
    """Items per second of each case ``name: (items, body)``, median over ``repeats`` rounds.

    Each body runs once to warm up; then every round runs every case once, in turn, so a drift of
    this machine's speed (it is a VM: ±30 % between minutes) hits all the cases alike and the
    ratios between them stay meaningful.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _, body in cases.values():
        body()
    for _ in range(repeats):
        for name, (_, body) in cases.items():
            started = time.perf_counter()
            body()
            times[name].append(time.perf_counter() - started)
    return {name: cases[name][0] / statistics.median(times[name]) for name in cases}


def make_frames(folder: Path, width: int, height: int, frames: int) -> tuple[list[Path], list[np.ndarray]]:
    """JPEG q95 frames of a synthetic street clip, and the true backward flow of frames 1..T-1."""
    files, truth = [], []
    for t, frame in enumerate(generate_clip("street", width=width, height=height, num_frames=frames, seed=0)):
        path = folder / frame_name(t, ".jpg")
        write_rgb(path, frame.rgb)
        files.append(path)
        if t > 0:
            truth.append(frame.flow)
    return files, truth


def side_by_side(grays: list[np.ndarray], instances: list[DisFlow]) -> None:
    """The backend alone on all cores: one single-threaded DIS per thread, each on every n-th pair."""
    n = len(instances)

    def share(k: int) -> None:
        for t in range(1 + k, len(grays), n):
            instances[k].calc_gray(grays[t], grays[t - 1])

    with single_threaded_kernels(n > 1), ThreadPoolExecutor(n) as pool:
        list(pool.map(share, range(n)))


def bench_size(
    width: int, height: int, frames: int, repeats: int, raft_pairs: int, threads: int, tmp: Path
) -> list[dict[str, Any]]:
    folder = tmp / f"{width}x{height}"
    files, truth = make_frames(folder / "frames", width, height, frames)
    pairs = len(files) - 1
    grays = [to_gray(read_rgb(f)) for f in files]
    settings = ConfidenceSettings()

    def stage(files: list[Path], estimator: Any, settings: ConfidenceSettings, name: str) -> Callable[[], object]:
        return lambda: compute_video_flow(files, folder / name, estimator, settings)

    def raw(instance: DisFlow) -> Callable[[], object]:
        return lambda: [instance.calc_gray(grays[t], grays[t - 1]) for t in range(1, len(grays))]

    cases: dict[str, tuple[int, Callable[[], object]]] = {
        "decode (JPEG frames)": (len(files), lambda: [read_rgb(f) for f in files])
    }
    epes: dict[str, float] = {}  # row -> EPE of its preset
    baselines: dict[str, tuple[str, str]] = {}  # stage row -> (raw row, side-by-side row)
    for preset in get_args(DisPreset):
        dis = DisFlow(preset)
        flows = [dis.calc_gray(grays[t], grays[t - 1]) for t in range(1, len(grays))]
        epe = float(np.mean([endpoint_error(f, g).mean() for f, g in zip(flows, truth, strict=True)]))
        one, side = f"raw dis {preset}", f"raw dis {preset}, {threads} side by side"
        cases[one] = (pairs, raw(dis))
        cases[side] = (pairs, functools.partial(side_by_side, grays, [DisFlow(preset) for _ in range(threads)]))
        epes |= {one: epe, side: epe}
        for workers in sorted({1, threads}):
            what = f"stage dis {preset}, {workers} worker{'s' if workers > 1 else ''}"
            cases[what] = (pairs, stage(files, [DisFlow(preset) for _ in range(workers)], settings, what))
            epes[what], baselines[what] = epe, (one, side)
    fb = f"stage dis medium +fb, {threads} workers"
    fb_settings = ConfidenceSettings(forward_backward=True)
    cases[fb] = (pairs, stage(files, [DisFlow("medium") for _ in range(threads)], fb_settings, fb))
    epes[fb] = epes["raw dis medium"]
    rates = median_rates(cases, repeats)
    raft = RaftFlow(model="small", weights="none", iterations=12)
    raft_name = "stage raft_small (random weights, 12 it.)"
    rates |= median_rates({raft_name: (raft_pairs, stage(files[: raft_pairs + 1], raft, settings, "raft"))}, 1)

    rows: list[dict[str, Any]] = []
    for what, rate in rates.items():
        row: dict[str, Any] = {"size": f"{width}x{height}", "what": what, "per_s": rate, "epe": epes.get(what)}
        if what in baselines:
            one, side = baselines[what]
            row |= {"vs_raw": rate / rates[one], "vs_side_by_side": rate / rates[side]}
        rows.append(row)
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
    print(
        f"\nflow benchmark: {args.frames - 1} pairs per clip, median of {args.repeats} interleaved rounds, "
        f"{args.threads} threads"
    )
    print(f"{'size':>9}  {'what':<42} {'pairs/s':>9} {'EPE px':>7}  {'vs raw':>7}  {'vs side by side':>15}")
    for row in rows:
        epe = f"{row['epe']:.3f}" if row["epe"] is not None else "n/a"
        vs_raw = f"{row['vs_raw']:.2f}x" if "vs_raw" in row else ""
        vs_sbs = f"{row['vs_side_by_side']:.2f}x" if "vs_side_by_side" in row else ""
        print(f"{row['size']:>9}  {row['what']:<42} {row['per_s']:>9.1f} {epe:>7}  {vs_raw:>7}  {vs_sbs:>15}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
