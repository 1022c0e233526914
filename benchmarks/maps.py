"""Map-stage speed on CPU next to bare decode, in one run: edges, segmentation and pose.

    .venv/bin/python benchmarks/maps.py [--width 512 --height 256 --frames 4 --repeats 3 --threads 2]

Builds the synthetic street clip (H.264), extracts it to JPEG frames, then prints frames/s
(median of the repeats) for:

* bare decode: a ``cv2.VideoCapture`` loop over the video, and reading the extracted JPEG frames
  (what every map stage pays first);
* edges: Canny alone, and the edges stage's per-video work (read + Canny + PNG write), 1 and 2 threads;
* segmentation: torchvision Mask R-CNN R50-FPN (v1) with random weights (``weights: none``; no
  download needed, so detections are few and the time is the backbone + heads), batch 1 vs 4;
* pose: torchvision Keypoint R-CNN with random weights, batch 1 vs 4.

Learned backends run at ``--min-size`` (default: the frame height, i.e. no upscaling; the
library default 800 upscales 512x256 to 1600x800 and costs ~10x more).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from v2v.config import EdgesConfig
from v2v.data.synthetic import generate_clip
from v2v.io.frames import frame_paths
from v2v.io.maps import read_rgb
from v2v.io.video import write_video
from v2v.maps.edges import canny
from v2v.maps.frames import batches
from v2v.maps.pose import TorchvisionPose
from v2v.maps.segmentation import TorchvisionSegmenter
from v2v.preprocess.extract import FrameSpec, VideoSource, extract_video
from v2v.stages.edges import edges_video


def timed(fn: Callable[[], int], repeats: int) -> float:
    """Median frames/s of ``fn`` (which returns the frames it processed) over ``repeats`` runs."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--frames", type=int, default=4, help="frames per learned-backend run")
    parser.add_argument("--edge-frames", type=int, default=120, help="frames per decode/edges run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads (the CI machine has 2)")
    parser.add_argument("--min-size", type=int, default=None, help="learned backends' inference size (default: height)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    min_size = args.min_size or args.height

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = tmp / "street.mp4"
        clip = generate_clip("street", width=args.width, height=args.height, num_frames=args.edge_frames, seed=0)
        write_video(video, (truth.rgb for truth in clip), fps=30, crf=18)
        spec = FrameSpec(None, args.width, args.height, "crop", 32, "jpg", 95, 1, None)
        extract_video(VideoSource(video, "bench", "train"), tmp / "frames" / "bench", spec, progress=False)
        files = frame_paths(tmp / "frames" / "bench")
        frames = [read_rgb(p) for p in files]

        def decode_video() -> int:
            cap = cv2.VideoCapture(str(video))
            count = 0
            while cap.read()[0]:
                count += 1
            cap.release()
            return count

        def read_frames() -> int:
            return len([read_rgb(p) for p in files])

        def canny_only() -> int:
            return len([canny(f) for f in frames])

        def edges_stage(workers: int) -> Callable[[], int]:
            cfg = EdgesConfig(workers=workers)
            return lambda: edges_video(tmp / "frames", "bench", tmp / "edges", cfg, None, "-")["num_frames"]

        rows: list[tuple[str, float]] = [
            ("bare decode: cv2.VideoCapture loop (H.264)", timed(decode_video, args.repeats)),
            ("bare decode: read extracted JPEG frames", timed(read_frames, args.repeats)),
            ("edges: Canny only (blur sigma 1 + L2 Canny)", timed(canny_only, args.repeats)),
            ("edges: stage, 1 worker (read JPEG + Canny + write PNG)", timed(edges_stage(1), args.repeats)),
            ("edges: stage, 2 workers (default)", timed(edges_stage(2), args.repeats)),
        ]
        few = frames[: args.frames]
        torch.manual_seed(0)
        segmenter = TorchvisionSegmenter(weights="none", min_size=min_size)
        posenet = TorchvisionPose(weights="none", min_size=min_size)
        for name, model in (("segmentation Mask R-CNN v1", segmenter), ("pose Keypoint R-CNN", posenet)):
            for batch in (1, 4):

                def infer(model=model, batch=batch) -> int:  # type: ignore[no-untyped-def]
                    for chunk in batches(few, batch):
                        model(chunk)
                    return len(few)

                model(few[:1])  # warm-up (allocator, first-call overheads)
                rows.append((f"{name}, random weights, batch {batch}", timed(infer, args.repeats)))

    print(
        f"\nmaps benchmark: {args.width}x{args.height}, CPU, {args.threads} threads, torch {torch.__version__}, "
        f"learned backends at min_size {min_size}, median of {args.repeats}"
    )
    width = max(len(name) for name, _ in rows)
    for name, rate in rows:
        print(f"  {name:<{width}}  {rate:9.2f} frames/s")
    decode = rows[1][1]
    print(f"  edges stage (default) / JPEG read: {rows[4][1] / decode:.2f}x of decode speed")
    print(f"  batch 4 vs 1: segmentation {rows[6][1] / rows[5][1]:.2f}x, pose {rows[8][1] / rows[7][1]:.2f}x")
    assert np.isfinite([r for _, r in rows]).all()


if __name__ == "__main__":
    main()
