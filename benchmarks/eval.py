"""Evaluation cost: seconds per metric for one 30-frame 256x128 clip on CPU, and our Fréchet distance vs pytorch-fid's.

    .venv/bin/python benchmarks/eval.py [--frames 30 --width 256 --height 128 --repeats 3]

Random-initialised networks (the offline setting; real weights cost the same), two systems scored
against the real clip as the evaluate stage does (vid2vid and the baseline). Each metric is timed
on its own over the whole clip, median of ``--repeats``; network construction is reported apart.
Target (issue "Evaluation"): all metrics of a 30-frame 256x128 clip in under a minute.
Then the Fréchet distance at N = 4000, d = 2048: our symmetric eigen-decomposition next to
``pytorch_fid.fid_score.calculate_frechet_distance`` (scipy ``sqrtm``), same statistics.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from v2v.eval.features import image_feature_net, video_feature_net
from v2v.eval.frechet import frechet_distance, gaussian_stats
from v2v.eval.perceptual import LPIPS
from v2v.eval.temporal import TemporalMeter, to_signed


def clip(frames: int, width: int, height: int, seed: int) -> list[np.ndarray]:
    """A textured pan (what DIS and the networks see in the sample), uint8 RGB."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width + 2 * frames, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 2 * t : 2 * t + width]) for t in range(frames)]


def timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    real = clip(args.frames, args.width, args.height, 0)
    systems = {
        "vid2vid": clip(args.frames, args.width, args.height, 1),
        "baseline": clip(args.frames, args.width, args.height, 2),
    }
    videos = [real, *systems.values()]

    start = time.perf_counter()
    inception = image_feature_net("inception_v3", "none")
    s3d, r21d = video_feature_net("s3d", "none"), video_feature_net("r2plus1d_18", "none")
    lpips = LPIPS("none")
    build = time.perf_counter() - start

    def frames_of(video: list[np.ndarray]) -> torch.Tensor:
        return torch.cat([to_signed(f) for f in video])

    def image_features() -> None:
        for video in videos:
            for i in range(0, args.frames, 8):
                inception(frames_of(video[i : i + 8]))

    def video_features(net: object) -> Callable[[], None]:
        def run() -> None:
            for video in videos:
                for start in range(0, args.frames - 16 + 1, 8):
                    net(frames_of(video[start : start + 16]).transpose(0, 1)[None])  # type: ignore[operator]

        return run

    def lpips_to_real() -> None:
        for video in systems.values():
            for i in range(0, args.frames, 8):
                lpips(frames_of(real[i : i + 8]), frames_of(video[i : i + 8]))

    def temporal(with_lpips: bool) -> Callable[[], None]:
        def run() -> None:
            meter = TemporalMeter(lpips=lpips if with_lpips else None)
            for t in range(args.frames):
                meter.add(real[t], {name: video[t] for name, video in systems.items()})

        return run

    rows = {
        "FID features (Inception-v3, 3 videos)": timed(image_features, args.repeats),
        "FD features (S3D, 16-frame clips every 8)": timed(video_features(s3d), args.repeats),
        "FD features (R(2+1)D-18)": timed(video_features(r21d), args.repeats),
        "LPIPS to the real frames (2 systems)": timed(lpips_to_real, args.repeats),
        "warping error + tOF (DIS flows)": timed(temporal(False), args.repeats),
        "warping error + tOF + tLP": timed(temporal(True), args.repeats),
    }
    total = sum(v for k, v in rows.items() if k != "warping error + tOF (DIS flows)")
    print(f"evaluation of one {args.frames}-frame {args.width}x{args.height} clip, 2 systems + real, CPU 2 threads")
    print(f"(random-init networks; median of {args.repeats})")
    print(f"{'metric':<46} {'seconds':>8} {'per frame (ms)':>15}")
    for name, seconds in rows.items():
        print(f"{name:<46} {seconds:>8.2f} {1000 * seconds / args.frames:>15.1f}")
    print(f"{'all metrics':<46} {total:>8.2f}   (target < 60 s)")
    print(f"{'network construction (once per stage)':<46} {build:>8.2f}")

    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a = gaussian_stats(rng.normal(size=(4000, 2048)))
    b = gaussian_stats(rng.normal(size=(4000, 2048)) * 1.1 + 0.05)
    ours = timed(lambda: frechet_distance(a, b), 1)
    theirs = timed(lambda: calculate_frechet_distance(a.mean, a.cov, b.mean, b.cov), 1)
    ours_value, theirs_value = frechet_distance(a, b), float(calculate_frechet_distance(a.mean, a.cov, b.mean, b.cov))
    print("\nFréchet distance, N = 4000, d = 2048")
    print(f"{'':<22} {'seconds':>8} {'value':>14}")
    print(f"{'ours (eigh)':<22} {ours:>8.2f} {ours_value:>14.6f}")
    print(f"{'pytorch-fid (sqrtm)':<22} {theirs:>8.2f} {theirs_value:>14.6f}")
    print(f"speed-up {theirs / ours:.2f}x, relative difference {abs(ours_value - theirs_value) / theirs_value:.2e}")


if __name__ == "__main__":
    main()
