"""Read ``dvc.yaml``: the stages, their commands, deps, params and outs (``${...}`` resolved).

Used by the Prefect flow (stage order), by tracking (the stage a run belongs to) and by the test
that keeps ``dvc.yaml`` and the code from drifting apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

_TEMPLATE = re.compile(r"\$\{\s*([A-Za-z0-9_.]+)\s*\}")


@dataclass(frozen=True)
class DvcStage:
    name: str
    cmd: str
    deps: tuple[str, ...]
    params: tuple[str, ...]  # dotted params keys, or whole top-level sections
    outs: tuple[str, ...]  # outs, metrics and plots


def _resolve(text: str, params: dict[str, Any]) -> str:
    def lookup(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"dvc.yaml refers to ${{{match.group(1)}}}, which params.yaml does not define")
            node = node[part]
        return str(node)

    return _TEMPLATE.sub(lookup, text)


def _paths(entries: list[Any] | None) -> tuple[str, ...]:
    out: list[str] = []
    for entry in entries or []:
        out.extend(entry.keys() if isinstance(entry, dict) else [entry])
    return tuple(out)


def load_stages(root: Path, params: dict[str, Any] | None = None) -> dict[str, DvcStage]:
    """Stages of ``root/dvc.yaml`` in file order, with ``${key}`` templates filled from ``params.yaml``."""
    if params is None:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    data = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}
    stages: dict[str, DvcStage] = {}
    for name, body in (data.get("stages") or {}).items():
        param_keys: list[str] = []
        for entry in body.get("params") or []:
            if isinstance(entry, dict):  # {other_params_file: [keys]}
                for keys in entry.values():
                    param_keys.extend(keys)
            else:
                param_keys.append(entry)
        outs = _paths(body.get("outs")) + _paths(body.get("metrics")) + _paths(body.get("plots"))
        stages[name] = DvcStage(
            name=name,
            cmd=_resolve(str(body["cmd"]), params),
            deps=tuple(_resolve(d, params) for d in _paths(body.get("deps"))),
            params=tuple(param_keys),
            outs=tuple(_resolve(o, params) for o in outs),
        )
    return stages


def _covers(out: str, dep: str) -> bool:
    return dep == out or dep.startswith(out.rstrip("/") + "/") or out.startswith(dep.rstrip("/") + "/")


def stage_order(stages: dict[str, DvcStage]) -> list[str]:
    """Stage names where every stage comes after the stages producing its deps (ties: ``dvc.yaml`` order)."""
    graph = {
        name: {other.name for other in stages.values() for d in st.deps for o in other.outs if _covers(o, d)} - {name}
        for name, st in stages.items()
    }
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    position = {name: i for i, name in enumerate(stages)}
    order: list[str] = []
    pending: list[str] = []
    while sorter.is_active():
        pending = sorted([*pending, *sorter.get_ready()], key=position.__getitem__)
        first = pending.pop(0)  # one at a time, so file order decides among stages that could run
        order.append(first)
        sorter.done(first)
    return order
