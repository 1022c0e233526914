"""Generator speed, memory and MACs for the ``small`` and ``reference`` presets, in one run.

    .venv/bin/python benchmarks/model.py [--threads 2 --repeats 3 --presets small reference
                                          --sizes 256x128 512x256 --precisions fp32 amp
                                          --formats contiguous channels_last --device cpu]

For every (preset, size, precision, memory format) prints, per frame (batch 1, one generator step
with previous frames, i.e. the warp path on):

* ``fwd`` — forward in eval mode under ``torch.no_grad`` (inference);
* ``fwd+bwd`` — training-mode forward with autograd plus ``backward`` of a scalar loss;
* ``floor`` — the seconds the forward's MACs take at the rate this machine runs one bare fp32 3x3
  convolution right now (printed first): a conv-bound network cannot beat it in fp32, so
  ``floor / fwd`` is how close to the machine the forward runs, whatever the machine's speed today;
* ``peak MiB`` — peak resident memory of the measuring process above its level once the model is
  built (activations, gradients, workspaces), from a fresh subprocess per configuration (CPU);
  on CUDA, ``torch.cuda.max_memory_allocated`` above the model's own allocation;
* ``GMAC`` — multiply–accumulates of one forward (``torch.utils.flop_counter``, FLOPs / 2).

Precision ``amp`` is what ``train.amp: true`` does: ``torch.autocast`` in bfloat16 on CPU (fast
where the CPU has AVX-512 BF16 or AMX), float16 on CUDA. Medians (and minima: on a shared machine
the minimum is the least disturbed run) over ``--repeats`` after one warm-up. Target (issue 5): the
``reference`` generator no slower than the official implementation on the same CPU (about 2.2 s
forward and 5.5–7.8 s backward per 256×128 frame on 2 threads; 1058 GMAC per 512×256 frame).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import resource
import statistics
import sys
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from v2v.models.layers import count_parameters
from v2v.models.presets import build_generator, resolve_preset


def _rss_mib() -> float:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _inputs(
    preset: Any, width: int, height: int, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    classes = torch.randint(preset.label_classes, (1, preset.num_frames_g, height // 16, width // 16), generator=gen)
    classes = classes.repeat_interleave(16, dim=2).repeat_interleave(16, dim=3)
    onehot = torch.nn.functional.one_hot(classes, preset.label_classes).permute(0, 1, 4, 2, 3).float()
    labels = torch.cat([onehot, torch.zeros(1, preset.num_frames_g, 1, height, width)], dim=2)
    prev = torch.rand(1, preset.num_frames_g - 1, 3, height, width, generator=gen) * 2 - 1
    labels, prev = labels.to(device), prev.to(device)
    if channels_last:  # the stacked (N, C, H, W) inputs are what the convs see
        labels = labels.contiguous(memory_format=torch.channels_last_3d)
        prev = prev.contiguous(memory_format=torch.channels_last_3d)
    return labels, prev


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    preset_name: str,
    width: int,
    height: int,
    channels_last: bool,
    amp: bool,
    repeats: int,
    threads: int,
    device_name: str,
) -> dict[str, float]:
    """Time one configuration (run in a fresh process so that peak memory is its own)."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    preset = resolve_preset(preset_name)
    model = build_generator(preset).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    labels, prev = _inputs(preset, width, height, device, channels_last)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        meta_model = build_generator(preset, seed=None)
        meta_model.step(labels.to("meta"), prev.to("meta"))
    gmac = counter.get_total_flops() / 2e9

    base_rss = _rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base_cuda = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0

    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def forward() -> None:
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            model.step(labels, prev)
        _sync(device)

    def forward_backward() -> None:
        model.train()
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            out = model.step(labels, prev)
            loss = out["fake"].float().mean() + out["flow"].float().abs().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        _sync(device)

    result: dict[str, float] = {"gmac": gmac, "params_m": count_parameters(model) / 1e6}
    for name, fn in (("fwd", forward), ("fwd_bwd", forward_backward)):
        fn()  # warm-up (oneDNN primitive creation, allocator)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        result[name] = statistics.median(seconds)
        result[name + "_min"] = min(seconds)
    if device.type == "cuda":
        result["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base_cuda) / 2**20
    else:
        result["peak_mib"] = _peak_rss_mib() - base_rss
    return result


def bare_conv_gmacs(threads: int, repeats: int = 5) -> float:
    """Machine calibration: GMAC/s of one bare 3x3 256→256 conv at 128x64 (best of ``repeats``)."""
    torch.set_num_threads(threads)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    x = torch.randn(1, 256, 64, 128)
    seconds = []
    with torch.no_grad():
        conv(x)
        for _ in range(repeats):
            start = time.perf_counter()
            conv(x)
            seconds.append(time.perf_counter() - start)
    return 256 * 256 * 9 * 64 * 128 / 1e9 / min(seconds)


def _worker(queue: Any, args: tuple[Any, ...]) -> None:
    try:
        queue.put(measure(*args))
    except Exception as exc:  # report, do not hang the parent
        queue.put({"error": repr(exc)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "reference"])
    parser.add_argument("--sizes", nargs="+", default=["256x128", "512x256"], help="WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "amp"], choices=["fp32", "amp"])
    parser.add_argument(
        "--formats",
        nargs="+",
        default=["contiguous"],
        choices=["contiguous", "channels_last"],
        help="channels_last measured no faster on CPU (oneDNN reorders either way); kept to check other machines",
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}, median of {args.repeats}")
    rate = bare_conv_gmacs(args.threads)
    print(f"calibration: a bare fp32 3x3 conv runs at {rate:.1f} GMAC/s on this machine now")
    header = (
        f"{'preset':<10} {'size':>8} {'precision':<9} {'format':<14} {'params M':>9} {'GMAC':>7} {'fwd s':>7} "
        f"{'(min)':>6} {'floor s':>7} {'floor/fwd':>9} {'fwd+bwd s':>9} {'(min)':>6} {'peak MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            for precision, fmt in itertools.product(args.precisions, args.formats):
                config = (preset, width, height, fmt == "channels_last", precision == "amp")
                queue = ctx.Queue()
                proc = ctx.Process(target=_worker, args=(queue, (*config, args.repeats, args.threads, args.device)))
                proc.start()
                res = queue.get()
                proc.join()
                name = f"{preset:<10} {size:>8} {precision:<9} {fmt:<14}"
                if "error" in res:
                    print(f"{name} failed: {res['error']}")
                    continue
                floor = res["gmac"] / rate
                print(
                    f"{name} {res['params_m']:>9.1f} {res['gmac']:>7.1f} {res['fwd']:>7.3f} {res['fwd_min']:>6.3f} "
                    f"{floor:>7.3f} {floor / res['fwd']:>9.2f} {res['fwd_bwd']:>9.3f} {res['fwd_bwd_min']:>6.3f} "
                    f"{res['peak_mib']:>8.0f}",
                    flush=True,
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
