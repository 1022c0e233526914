"""What a stage costs before it works: each stage module's import, and a map stage the task does not read, run
end to end as ``dvc repro`` runs it (``python -m v2v.stages.<name>``), medians of ``--repeats`` runs.

    .venv/bin/python benchmarks/startup.py [--code PATH] [--repeats 5]

``--code`` measures another checkout (e.g. a worktree of an older commit) with this interpreter, so a before and
after come from the same machine in one sitting. The skipped stages run on a scratch project holding only
params.yaml: with the default ``train.task: street`` pose and face are not read; with ``train.task: pose`` segment
and edges are not. Run it on an idle machine: a loaded one stretches every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MAP_STAGES = {"segment": "pose", "edges": "pose", "pose": "street", "face": "street"}  # stage: a task not reading it


def seconds(command: list[str], code: Path, cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def median_of(repeats: int, command: list[str], code: Path, cwd: Path) -> float:
    return statistics.median(seconds(command, code, cwd) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose stages are measured")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    code = args.code.resolve()
    sys.path.insert(0, str(code))
    from v2v.stages import STAGES

    python = sys.executable
    print(f"{code} (medians of {args.repeats} runs, seconds)")
    bare = median_of(args.repeats, [python, "-c", "pass"], code, code)
    print(f"  {'interpreter alone':32}{bare:7.2f}")
    imports = {}
    for name, module in STAGES.items():
        imports[name] = median_of(args.repeats, [python, "-c", f"import {module}"], code, code)
        print(f"  {'import ' + module:32}{imports[name]:7.2f}")
    print(f"  {'sum over the stages':32}{sum(imports.values()):7.2f}")
    skipped = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage, task in MAP_STAGES.items():
            root = Path(tmp) / task
            if not root.exists():
                params = yaml.safe_load((code / "params.yaml").read_text())
                params["train"]["task"] = task
                root.mkdir()
                (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            command = [python, "-m", f"v2v.stages.{stage}", "--root", str(root)]
            skipped[stage] = median_of(args.repeats, command, code, root)
            print(f"  {f'{stage}, not read by {task}':32}{skipped[stage]:7.2f}")
    print(f"  {'the four skipped map stages':32}{sum(skipped.values()):7.2f}")


if __name__ == "__main__":
    main()
