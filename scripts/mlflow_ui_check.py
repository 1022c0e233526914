"""Check that the MLflow UI shows this project's pipeline runs and model: REST API + headless-Chromium screenshots.

    python scripts/mlflow_ui_check.py --root . --out docs/mlflow          # starts `v2v ui` on a free port
    python scripts/mlflow_ui_check.py --url http://127.0.0.1:5000 --out pages --expect "pipeline 2026-01-01 03:00:00"

1. The REST API (``experiments/get-by-name``, ``runs/search``) lists the experiment's pipeline runs
   (top-level runs); ``--expect`` names must be among them (default: every pipeline run's name); the registry
   (``model-versions/search``) holds a version of ``promote.model_name`` (``--model``).
2. Chromium renders the pages as ``v2v ui`` opens them (the classic view, ``?workflowType=machine_learning``)
   headless: the runs table (``--dump-dom`` must contain every expected name), the latest pipeline run that evaluated
   and the registered model; ``--screenshot`` writes ``runs.png``, ``pipeline-run.png`` and ``registry.png`` to ``--out``.

Exit 0 when all of it holds; 1 with the reasons otherwise. Needs ``chromium`` (or ``--chromium PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

EVALUATED = "lpips"  # a figure the evaluate stage logs on its pipeline run, whatever the task
RENDER_BUDGET_MS = 20_000  # virtual time Chromium gives the single-page app to load the runs table


def api(url: str, endpoint: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None) -> Any:
    full = f"{url}/api/2.0/mlflow/{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def pipeline_runs(url: str, experiment: str) -> tuple[str, list[dict[str, Any]]]:
    """The experiment id and its pipeline (top-level) runs, newest first, via the REST API."""
    found = api(url, "experiments/get-by-name", query={"experiment_name": experiment})["experiment"]
    body = {"experiment_ids": [found["experiment_id"]], "max_results": 1000, "order_by": ["attributes.start_time DESC"]}
    runs = api(url, "runs/search", body).get("runs", [])
    top = [r for r in runs if not any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))]
    return found["experiment_id"], top


def chromium(binary: str, url: str, *args: str) -> str:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    command += ["--window-size=1600,1000", f"--virtual-time-budget={RENDER_BUDGET_MS}", *args, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def start_ui(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "v2v", "ui", "--root", str(root), "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(1)
    os.killpg(server.pid, signal.SIGINT)
    raise RuntimeError(f"the MLflow UI did not come up on {url}")


def check(url: str, experiment: str, model: str, expect: list[str], out: Path, binary: str) -> list[str]:
    """Problems found (empty: the UI shows every expected run and the registered model)."""
    experiment_id, runs = pipeline_runs(url, experiment)
    names = [r["info"]["run_name"] for r in runs]
    expect = expect or names
    problems = [f"REST API: no pipeline run named {name!r} (it has {names})" for name in expect if name not in names]
    versions = []
    if model:
        versions = api(url, "model-versions/search", query={"filter": f"name='{model}'"}).get("model_versions", [])
        problems += [] if versions else [f"registry: no version of {model!r}"]
    classic = "?workflowType=machine_learning"  # what `v2v ui` prints: MLflow 3 opens its GenAI view otherwise
    pages = {"runs.png": f"{url}/#/experiments/{experiment_id}/runs{classic}"}
    if runs:  # the newest run that evaluated (a partial rerun's run has no quality figures to show)
        shown = next((r for r in runs if any(m["key"] == EVALUATED for m in r["data"].get("metrics", []))), runs[0])
        pages["pipeline-run.png"] = f"{url}/#/experiments/{experiment_id}/runs/{shown['info']['run_id']}{classic}"
    if model:
        pages["registry.png"] = f"{url}/#/models/{model}{classic}"
    dom = chromium(binary, pages["runs.png"], "--dump-dom")
    problems += [f"runs page {pages['runs.png']}: {name!r} not shown" for name in expect if name not in dom]
    out.mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        chromium(binary, page, f"--screenshot={out / name}")
        if not (out / name).is_file() or (out / name).stat().st_size < 10_000:
            problems.append(f"{out / name}: no screenshot written of {page}")
    print(f"{len(expect)} expected pipeline run(s) shown, {len(versions)} registered version(s) of {model}; {out}/")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder (its params and MLflow store)")
    parser.add_argument("--url", help="a running MLflow server (default: start `v2v ui` for --root)")
    parser.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment of --root)")
    parser.add_argument("--expect", action="append", default=[], help="run name that must be shown (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("mlflow-pages"), help="folder of the screenshots")
    parser.add_argument("--model", help="registered model to show (default: promote.model_name; '': none)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        sys.exit(f"chromium not found at {args.chromium}; install it (apt-get install chromium) or pass --chromium")
    from v2v.config import load_config

    cfg = load_config(args.root / "params.yaml")
    experiment = args.experiment or cfg.tracking.experiment
    server = None
    url = args.url
    if url is None:
        server, url = start_ui(args.root)
    try:
        problems = check(
            url.rstrip("/"),
            experiment,
            cfg.promote.model_name if args.model is None else args.model,
            args.expect,
            args.out,
            args.chromium,
        )
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGINT)  # the UI and its workers stop as on Ctrl-C
            server.wait(timeout=60)
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
