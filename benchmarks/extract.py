"""Extract-stage speed against a bare decode loop of the same video, in one run.

    .venv/bin/python benchmarks/extract.py [--width 1024 --height 512 --frames 150 --repeats 3]

Prints frames/s (median of the repeats) for: a bare ``cv2.VideoCapture`` read loop (the floor any
extractor pays), and ``extract_video`` writing JPEG q95 / PNG at several settings, with the
writer threads that overlap encoding with decoding, and without them (1 thread) for contrast;
once on the clean synthetic clip and once with camera-like sensor noise (`--noise`).
Target (issue "Foundation"): the default frame format within 2x of bare decode.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from v2v.data.synthetic import generate_clip
from v2v.io.video import write_video
from v2v.preprocess.extract import FrameSpec, VideoSource, extract_video


def make_clip(path: Path, width: int, height: int, frames: int, noise: float = 0.0) -> None:
    """The synthetic street scene (camera pan, moving cars and people), H.264 at crf 18.

    ``noise`` adds Gaussian sensor noise (grey levels): real footage carries it, and it raises the
    bitrate (and the decode cost) from the clean render's unusually low one to a camera's.
    """
    rng = np.random.default_rng(0)
    clip = generate_clip("street", width=width, height=height, num_frames=frames, seed=0)

    def frames_out() -> Iterator[np.ndarray]:
        for truth in clip:
            if noise <= 0:
                yield truth.rgb
            else:
                yield np.clip(truth.rgb + rng.normal(0, noise, truth.rgb.shape), 0, 255).astype(np.uint8)

    write_video(path, frames_out(), fps=30, crf=18)


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


def timed(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
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
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 3.0], help="sensor noise levels to run")
    args = parser.parse_args()
    cv2.setNumThreads(2)

    for noise in args.noise:
        with tempfile.TemporaryDirectory() as tmp_name:
            run_cases(Path(tmp_name), args, noise)


def run_cases(tmp: Path, args: argparse.Namespace, noise: float) -> None:
    video = tmp / "bench.mp4"
    make_clip(video, args.width, args.height, args.frames, noise)
    source = VideoSource(video, "bench", "train")

    def spec(fmt: str, png_level: int = 1) -> FrameSpec:
        return FrameSpec(None, args.width, args.height, "crop", 32, fmt, 95, png_level, None)  # type: ignore[arg-type]

    def extract(name: str, fmt: str, threads: int, png_level: int = 1) -> Callable[[], int]:
        return lambda: extract_video(source, tmp / name, spec(fmt, png_level), writer_threads=threads, progress=False)[
            "num_frames"
        ]

    cases = {
        "bare decode (cv2.VideoCapture loop)": lambda: bare_decode(video),
        "extract jpg q95, 2 writer threads (default)": extract("a", "jpg", 2),
        "extract jpg q95, 1 writer thread": extract("b", "jpg", 1),
        "extract png level 1, 2 writer threads": extract("c", "png", 2, 1),
        "extract png level 3, 2 writer threads": extract("d", "png", 2, 3),
    }
    size_mb = video.stat().st_size / 1e6
    print(
        f"\n{args.frames} frames of H.264 {args.width}x{args.height}, sensor noise sigma {noise:g} "
        f"({size_mb:.1f} MB), median of {args.repeats} runs"
    )
    print(f"{'case':48} {'frames/s':>9} {'x bare decode time':>19}")
    base = None
    for name, fn in cases.items():
        seconds, count = timed(fn, args.repeats)
        base = base or seconds
        print(f"{name:48} {count / seconds:9.1f} {seconds / base:19.2f}")


if __name__ == "__main__":
    main()
