"""Memory of streaming generation does not grow with the video's length: 30 vs 300 frames, in one run.

    .venv/bin/python benchmarks/generate.py [--preset small --width 256 --height 128]

Each length runs in a fresh subprocess (random-initialised generator, random street-like
conditions) and reports its peak resident memory (``ru_maxrss``) and frames/s. Target (issue
"Progressive training and video generation"): peak(300) <= 1.2 x peak(30).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
import torch
from v2v.generation.synthesis import generate_stream
from v2v.models.presets import build_generator, resolve_preset
from v2v.data.conditions import condition_maps
torch.set_num_threads(2)
preset, width, height, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
p = resolve_preset(preset, label_classes=35, instance_boundary=True)
g = build_generator(p, num_scales=1).eval()
def conditions():
    for t in range(frames):
        label = torch.randint(0, 35, (1, 1, height, width))
        yield condition_maps(label, label, 35)[0, 0]
start = time.perf_counter()
for out in generate_stream(g, conditions(), torch.device("cpu")):
    pass
seconds = time.perf_counter() - start
print(json.dumps({"frames": frames, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "fps": frames / seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=128)
    args = parser.parse_args()
    rows = []
    for frames in (30, 300):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.preset, str(args.width), str(args.height), str(frames)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"streaming generation, preset {args.preset}, {args.width}x{args.height}, CPU 2 threads")
    print(f"{'frames':>7} {'peak MiB':>9} {'frames/s':>9}")
    for row in rows:
        print(f"{row['frames']:>7} {row['peak_mib']:>9.0f} {row['fps']:>9.2f}")
    print(f"peak(300) / peak(30) = {rows[1]['peak_mib'] / rows[0]['peak_mib']:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
