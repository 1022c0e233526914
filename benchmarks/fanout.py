"""Extract fan-out: the extract stage sequential (one process) against Prefect tasks on a Dask LocalCluster.

    .venv/bin/python benchmarks/fanout.py [--videos 8 --width 512 --height 256 --frames 120 --workers 2]

Writes ``--videos`` synthetic street clips (different seeds), then runs the extract stage on them
twice into fresh folders: sequentially, and with the per-video work mapped on a Dask LocalCluster of
``--workers`` processes (``pipelines.fanout``). Prints
wall time (Dask: cluster start-up included, Prefect's temporary server not) and frames/s of each and checks that the two frame folders are byte-identical.
Fan-out pays off with more cores than the decode + writer threads of one video already use; on a
2-core machine expect no gain.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "true")

from prefect import flow

from pipelines.fanout import dask_task_runner, extract_fanout
from v2v.config import config_from_dict
from v2v.data.synthetic import generate_clip
from v2v.io.video import write_video
from v2v.paths import ProjectPaths
from v2v.stages import extract


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@flow
def _noop() -> None:
    return None


def warm_up() -> None:
    _noop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for i in range(args.videos):
            clip = generate_clip("street", width=args.width, height=args.height, num_frames=args.frames, seed=i)
            write_video(base / "videos" / f"clip{i:02d}.mp4", (t.rgb for t in clip), fps=30, crf=18)
        params = {
            "extract": {"input_dir": str(base / "videos"), "width": args.width, "height": args.height},
            "tracking": {"enabled": False},
        }
        cfg = config_from_dict(params)
        warm_up()  # Prefect's temporary server starts once per process: not part of either timing
        results = {}
        for name in ("sequential", "dask"):
            root = base / name
            root.mkdir()
            (root / "params.yaml").write_text(
                f"extract:\n  input_dir: {base / 'videos'}\n  width: {args.width}\n  height: {args.height}\n"
                "tracking:\n  enabled: false\n"
            )
            started = time.perf_counter()
            if name == "sequential":
                metrics = extract.run(cfg, ProjectPaths.at(root))
            else:
                runner = dask_task_runner(None, args.workers)
                metrics = extract_fanout.with_options(task_runner=runner)(root=str(root))
            seconds = time.perf_counter() - started
            results[name] = (seconds, metrics["frames"], tree_hash(root / "data/frames"))
        for name, (seconds, frames, _) in results.items():
            print(f"{name:10} {seconds:7.2f} s  {frames / seconds:7.1f} frames/s  ({frames} frames)")
        same = results["sequential"][2] == results["dask"][2]
        print(f"frame folders byte-identical: {same}; {os.cpu_count()} CPU(s), {args.workers} Dask worker(s)")


if __name__ == "__main__":
    main()
