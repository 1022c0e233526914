"""The short summary ``make demo`` ends with: quality per system, training, stage durations; under 120 columns.

Read from the stages' metrics files (``metrics/*.json``, ``metrics/timing/*.json``); a stage that has not run
yet is left out. The whole figures are in ``dvc metrics show --json``, the report and MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from v2v.paths import EVALUATE_METRICS, TIMING, ProjectPaths
from v2v.stages import STAGES
from v2v.stages.common import timing_path

WIDTH = 120
# (label, key in metrics/evaluate.json without the system suffix, which is better)
QUALITY = (
    ("segmentation mIoU", "seg_miou", "higher"),
    ("pixel accuracy", "seg_accuracy", "higher"),
    ("warping error", "warp_error", "lower"),
    ("tOF", "tof", "lower"),
    ("tLP", "tlp", "lower"),
    ("LPIPS to the real frames", "lpips", "lower"),
    ("FID (torchvision)", "fid_tv", "lower"),
)
SUFFIX = {"vid2vid": "", "baseline": "_baseline", "real": "_real"}


def number(value: Any) -> str:
    """Four significant figures, ``–`` for a missing value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.4g}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

    return [line(header), *(line(r) for r in rows)]


def summary(paths: ProjectPaths) -> str:
    """The summary text (ends with a newline)."""
    out: list[str] = []
    scores = _read(paths.root / EVALUATE_METRICS)
    if scores:
        rows = [
            [label, *(number(scores.get(key + s)) for s in SUFFIX.values()), better]
            for label, key, better in QUALITY
            if any(key + s in scores for s in SUFFIX.values())
        ]
        out += [f"Quality on {number(scores.get('videos'))} held-out video(s) ({EVALUATE_METRICS})", ""]
        out += table(["", *SUFFIX, "better"], rows)
        if "preference_combined" in scores:
            low, high = number(scores.get("preference_combined_low")), number(scores.get("preference_combined_high"))
            out.append(
                f"preference proxy, vid2vid over the baseline: {number(scores['preference_combined'])} "
                f"(95% interval {low} to {high}; 0.5 is a tie)"
            )
        out.append("")
    rows = []
    training = {f"train_scale{s}": paths.train_metrics(s) for s in range(3)} | {
        "train_baseline": paths.baseline_metrics
    }
    for stage, file in training.items():
        m = _read(file)
        if m:
            timing = _read(timing_path(file))
            rows.append(
                [
                    stage,
                    number(m.get("steps")),
                    number(m.get("loss_g_total")),
                    number(m.get("loss_d_total")),
                    number(timing.get("seconds")),
                ]
            )
    if rows:
        out += ["Training (last logged step)", ""]
        out += [*table(["", "steps", "G total", "D total", "seconds"], rows), ""]
    durations = [(s, _read(paths.root / TIMING / f"{s}.json").get("seconds")) for s in STAGES]
    cells = [f"{s} {number(v)}" for s, v in durations if isinstance(v, int | float)]
    if cells:
        out.append("Stage seconds (last run of each; metrics/timing/):")
        line = ""
        for cell in cells:
            if len(line) + len(cell) + 3 > WIDTH:
                out.append(line)
                line = ""
            line = f"{line} · {cell}" if line else f"  {cell}"
        out += [line, ""]
    if not out:
        return "no metrics yet: run `dvc repro` first\n"
    out.append("More: evaluation/report.html · dvc metrics show --json · dvc plots show · v2v ui (MLflow)")
    return "\n".join(out) + "\n"
