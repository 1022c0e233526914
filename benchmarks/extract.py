"""Extract-stage speed against a bare decode loop of the same video, in one run.

    .venv/bin/python benchmarks/extract.py [--width 1024 --height 512 --frames 150 --repeats 3]

Prints frames/s (median of the repeats) for: a bare ``cv2.VideoCapture`` read loop (the floor any
extractor pays), and ``extract_video`` writing JPEG q95 / PNG at several settings, with the
writer threads that overlap encoding with decoding, and without them (1 thread) for contrast.
Target (issue "Foundation"): the default frame format within 2x of bare decode.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from v2v.data.synthetic import generate_clip
from v2v.io.video import write_video
from v2v.preprocess.extract import FrameSpec, VideoSource, extract_video


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    """The synthetic street scene (camera pan, moving cars and people), H.264 at crf 18."""
    clip = generate_clip("street", width=width, height=height, num_frames=frames, seed=0)
    write_video(path, (truth.rgb for truth in clip), fps=30, crf=18)


def bare_decode(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        count += 1
    cap.release()
    return count


def timed(fn, repeats: int) -> tuple[float, int]:
    seconds, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(2)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = tmp / "bench.mp4"
        make_clip(video, args.width, args.height, args.frames)
        source = VideoSource(video, "bench", "train")

        def spec(fmt: str, png_level: int = 1) -> FrameSpec:
            return FrameSpec(None, args.width, args.height, "crop", 32, fmt, 95, png_level, None)  # type: ignore[arg-type]

        cases = {
            "bare decode (cv2.VideoCapture loop)": lambda: bare_decode(video),
            "extract jpg q95, 2 writer threads (default)": lambda: extract_video(
                source, tmp / "a", spec("jpg"), writer_threads=2, progress=False
            )["num_frames"],
            "extract jpg q95, 1 writer thread": lambda: extract_video(
                source, tmp / "b", spec("jpg"), writer_threads=1, progress=False
            )["num_frames"],
            "extract png level 1, 2 writer threads": lambda: extract_video(
                source, tmp / "c", spec("png", 1), writer_threads=2, progress=False
            )["num_frames"],
            "extract png level 3, 2 writer threads": lambda: extract_video(
                source, tmp / "d", spec("png", 3), writer_threads=2, progress=False
            )["num_frames"],
        }
        size_mb = video.stat().st_size / 1e6
        print(
            f"{args.frames} frames of H.264 {args.width}x{args.height} ({size_mb:.1f} MB), median of {args.repeats} runs"
        )
        print(f"{'case':48} {'frames/s':>9} {'x bare decode time':>19}")
        base = None
        for name, fn in cases.items():
            seconds, count = timed(fn, args.repeats)
            fps = count / seconds
            base = base or seconds
            print(f"{name:48} {fps:9.1f} {seconds / base:19.2f}")


if __name__ == "__main__":
    main()
