"""``dvc plots show`` as PNG files, drawn offline: DVC's own Vega-Lite specs rendered by ``vl-convert``.

DVC's HTML page loads its chart library from a CDN, so offline it is blank. The same specs (``dvc plots
show --json``: the plots of ``dvc.yaml`` with their data) render here without a browser or a network,
one PNG per plot, named after it (``generator_loss.png``, ``plots_train_scale0.csv.png``, ...).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from v2v.io.atomic import write_bytes


class PlotsError(RuntimeError):
    """DVC could not list the plots, or a plot could not be drawn; the message says what to do."""


def dvc_plot_specs(root: Path) -> dict[str, list[dict]]:
    """``{plot name: [DVC's rendered items]}`` of ``dvc plots show --json`` in ``root``."""
    command = [sys.executable, "-m", "dvc", "plots", "show", "--json"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise PlotsError(
            f"{root}: `dvc plots show --json` failed: {done.stderr.strip()[-1000:]}; run `dvc repro` first"
        )
    data: dict[str, list[dict]] = json.loads(done.stdout).get("data", {})
    if not data:
        raise PlotsError(f"{root}: dvc.yaml's plots have no data yet; run `dvc repro` first")
    return data


def render_plots(root: Path, out: Path, scale: float = 2.0) -> list[Path]:
    """Draw every plot of ``dvc plots show`` into ``out`` as PNG (``scale``: pixels per Vega unit)."""
    import vl_convert

    written = []
    for name, items in dvc_plot_specs(root).items():
        specs = [item["content"] for item in items if item.get("type") == "vega"]
        for k, spec in enumerate(specs):
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") + (f"_{k}" if len(specs) > 1 else "")
            try:
                png = vl_convert.vegalite_to_png(spec, scale=scale)
            except ValueError as exc:
                raise PlotsError(f"plot {name!r} of dvc.yaml cannot be drawn: {exc}") from None
            path = out / f"{stem}.png"
            write_bytes(path, png)
            written.append(path)
    return written
