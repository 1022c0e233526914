"""``dvc plots show`` as PNG files, drawn offline: DVC's own Vega-Lite specs rendered by ``vl-convert``.

DVC's HTML page loads its chart library from a CDN, so offline it is blank. The same specs (``dvc plots
show --json``: the plots of ``dvc.yaml`` with their data) render here without a browser or a network,
one PNG per plot, named after it (``generator_loss.png``, ``plots_train_scale0.csv.png``, ...).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


FEW_POINTS = 30  # a series this short puts a marker on every point (a curve of one or two points is otherwise lost)


def readable(spec: dict[str, Any]) -> dict[str, Any]:
    """DVC's spec made legible as a still image: with one revision, each file (stage) or column gets its own
    colour instead of one colour told apart by dash patterns; short series get point markers."""
    out = copy.deepcopy(spec)
    top = out.get("encoding", {})
    revisions = top.get("color", {}).get("scale", {}).get("domain", [])
    dash = top.get("strokeDash", {})
    if len(revisions) == 1 and dash.get("field"):
        field = dash["field"]
        top.pop("strokeDash")
        top["color"] = {"field": field, "type": "nominal", "title": "stage" if field == "filename" else "series"}
        _recolour(out, field)
    values = out.get("data", {}).get("values", [])
    series: dict[Any, int] = {}
    for row in values:
        key = (row.get("rev"), row.get("filename"), row.get("field"))
        series[key] = series.get(key, 0) + 1
    if series and min(series.values()) <= FEW_POINTS:
        _add_points(out)
    return out


def _recolour(node: Any, field: str) -> None:
    """Every ``color`` encoding on ``rev`` → on ``field`` (recursively)."""
    if isinstance(node, dict):
        colour = node.get("color")
        if isinstance(colour, dict) and colour.get("field") == "rev":
            node["color"] = {**colour, "field": field}
        if any("pivot" in step for step in node.get("transform", [])):  # the hover rule: its rows have no series
            node.setdefault("encoding", {})["color"] = {"value": "grey"}
        for key, value in node.items():
            if key != "data":
                _recolour(value, field)
    elif isinstance(node, list):
        for item in node:
            _recolour(item, field)


def _add_points(node: Any) -> None:
    """Line marks → lines with a point on every datum (recursively)."""
    if isinstance(node, dict):
        mark = node.get("mark")
        if mark == "line":
            node["mark"] = {"type": "line", "point": True}
        elif isinstance(mark, dict) and mark.get("type") == "line":
            node["mark"] = {**mark, "point": True}
        for key, value in node.items():
            if key != "data":
                _add_points(value)
    elif isinstance(node, list):
        for item in node:
            _add_points(item)


def render_plots(root: Path, out: Path, scale: float = 2.0) -> list[Path]:
    """Draw every plot of ``dvc plots show`` into ``out`` as PNG (``scale``: pixels per Vega unit)."""
    import vl_convert

    written = []
    for name, items in dvc_plot_specs(root).items():
        specs = [item["content"] for item in items if item.get("type") == "vega"]
        for k, spec in enumerate(specs):
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") + (f"_{k}" if len(specs) > 1 else "")
            try:
                png = vl_convert.vegalite_to_png(readable(spec), scale=scale)
            except ValueError as exc:
                raise PlotsError(f"plot {name!r} of dvc.yaml cannot be drawn: {exc}") from None
            path = out / f"{stem}.png"
            write_bytes(path, png)
            written.append(path)
    return written
