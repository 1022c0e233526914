"""The segment stage (Mask R-CNN, random weights: CPU-bound per video) serially and on a Dask LocalCluster of 1 and
2 workers, side by side in one run, with the check that the three map folders are byte-identical.

    .venv/bin/python benchmarks/executors.py [--videos 4 --frames 8 --width 256 --height 128 --min-size 256]

Every run uses one torch thread per task (``orchestrate.threads_per_task: 1``) so the bytes can match; the serial
run is the same work in the stage's own process. The Dask times include the cluster's start-up and each worker
loading the model once (the fixed overhead, printed as the 1-worker run minus the serial one).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fanout import tree_hash

from v2v.config import config_from_dict
from v2v.paths import ProjectPaths
from v2v.stages import extract, sample, segment


def config(args: argparse.Namespace, executor: str, workers: int) -> Any:
    return config_from_dict(
        {
            "sample": {
                "scenes": ["street"],
                "train_clips_per_scene": args.videos,
                "test_clips_per_scene": 0,
                "num_frames": args.frames,
                "width": args.width,
                "height": args.height,
            },
            "extract": {"width": args.width, "height": args.height},
            "segment": {"backend": "torchvision", "weights": "none", "min_size": args.min_size, "device": "cpu"},
            "orchestrate": {"executor": executor, "dask_workers": workers, "threads_per_task": 1, "gpus": 0},
            "tracking": {"enabled": False},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--min-size", type=int, default=256, help="Mask R-CNN inference size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = ProjectPaths.at(Path(scratch) / "base")
        sample.run(config(args, "serial", 1), base)
        extract.run(config(args, "serial", 1), base)
        rows = []
        for name, executor, workers in (("serial", "serial", 1), ("dask 1", "dask", 1), ("dask 2", "dask", 2)):
            paths = ProjectPaths.at(shutil.copytree(base.root, Path(scratch) / name.replace(" ", "")))
            started = time.perf_counter()
            segment.run(config(args, executor, workers), paths)
            rows.append((name, time.perf_counter() - started, tree_hash(paths.segment_maps)))
    frames = args.videos * args.frames
    print(
        f"segment stage, {args.videos} videos x {args.frames} frames at {args.width}x{args.height}, Mask R-CNN random"
    )
    for name, seconds, _ in rows:
        print(f"  {name:8} {seconds:7.1f} s  {frames / seconds:6.2f} frames/s")
    print(f"  fixed overhead of Dask (1 worker - serial): {rows[1][1] - rows[0][1]:.1f} s")
    print(f"  2 workers vs 1: {rows[1][1] / rows[2][1]:.2f}x faster")
    print(f"bytes identical: {len({digest for *_, digest in rows}) == 1}")


if __name__ == "__main__":
    main()
