"""The code's layout: no import circle between two files of v2v/ and pipelines/ (function-level imports included),
and one home for task-dependent behaviour (the ``Task`` table)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("v2v", "pipelines")


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of the two packages."""
    found = {}
    for root in ROOTS:
        for path in (REPO / root).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in modules:  # `from v2v.maps import pose` names a module; else its package
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                out.add(target)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_two_files() -> None:
    modules = module_files()
    # a package's __init__ re-exporting its modules is not a circle with them
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert not cycles(graph), f"import circles (function-level imports count too): {cycles(graph)}"


def test_no_import_circle_between_two_packages() -> None:
    """v2v's packages (io, data, flow, maps, models, ...) and top-level modules import one way: config sits
    below data, flow and maps, which take explicit settings rather than config sections."""
    modules = module_files()

    def package(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if len(parts) > 2 or (REPO / Path(*parts)).is_dir() else name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        for target in imports_of(name, path, modules):
            if package(target) != package(name):
                graph.setdefault(package(name), set()).add(package(target))
    assert not cycles(graph), f"package import circles (function-level imports count too): {cycles(graph)}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_only_the_task_table_compares_a_task_name() -> None:
    """Task-dependent code asks :class:`v2v.data.tasks.Task` (``one_hot_labels``, ``maps``, ...): adding a task
    touches one file."""
    from v2v.data.tasks import TASKS

    offenders = []
    for name, path in module_files().items():
        if name == "v2v.data.tasks":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            names = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in TASKS]
            subjects = [ast.unparse(s) for s in sides if not isinstance(s, ast.Constant)]
            if names and any("task" in subject for subject in subjects):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "compare train.task through v2v.data.tasks.Task instead:\n" + "\n".join(offenders)


def test_the_mlops_wing_sits_above_the_core() -> None:
    """Stages, the CLI and ``pipelines/`` use ``v2v.mlops``; nothing of the ML core imports it, and it imports no
    stage (arrows: stages → mlops → core)."""
    modules = module_files()
    users = ("v2v.mlops", "v2v.stages", "v2v.cli", "v2v.summary", "v2v.registry", "pipelines")
    wrong = [
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in imports_of(name, path, modules)
        if (target.startswith("v2v.mlops") and not name.startswith(users))
        or (name.startswith("v2v.mlops") and target.startswith(("v2v.stages", "v2v.cli", "pipelines")))
    ]
    assert not wrong, "\n".join(wrong)
