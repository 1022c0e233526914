"""Check that the MLflow UI shows this project's pipeline runs: REST API + a headless-Chromium screenshot.

    python scripts/mlflow_ui_check.py --root . --out mlflow-runs.png          # starts `v2v ui` on a free port
    python scripts/mlflow_ui_check.py --url http://127.0.0.1:5000 --out runs.png --expect "pipeline 2026-01-01 03:00:00"

1. The REST API (``experiments/get-by-name``, ``runs/search``) lists the experiment's pipeline runs
   (top-level runs); ``--expect`` names must be among them (default: every pipeline run's name).
2. Chromium renders ``#/experiments/<id>/runs`` headless: ``--dump-dom`` must contain every expected
   name, and ``--screenshot`` writes the page to ``--out``.

Exit 0 when all of it holds; 1 with the reason otherwise. Needs ``chromium`` (or ``--chromium PATH``).
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

RENDER_BUDGET_MS = 20_000  # virtual time Chromium gives the single-page app to load the runs table


def api(url: str, endpoint: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None) -> Any:
    full = f"{url}/api/2.0/mlflow/{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def pipeline_run_names(url: str, experiment: str) -> tuple[str, list[str]]:
    """The experiment id and the names of its pipeline (top-level) runs, via the REST API."""
    found = api(url, "experiments/get-by-name", query={"experiment_name": experiment})["experiment"]
    runs = api(url, "runs/search", {"experiment_ids": [found["experiment_id"]], "max_results": 1000}).get("runs", [])
    names = [
        r["info"]["run_name"]
        for r in runs
        if not any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))
    ]
    return found["experiment_id"], names


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


def check(url: str, experiment: str, expect: list[str], out: Path, binary: str) -> list[str]:
    """Problems found (empty: the UI shows every expected run)."""
    experiment_id, names = pipeline_run_names(url, experiment)
    expect = expect or names
    problems = [f"REST API: no pipeline run named {name!r} (it has {names})" for name in expect if name not in names]
    page = f"{url}/#/experiments/{experiment_id}/runs"
    dom = chromium(binary, page, "--dump-dom")
    problems += [f"runs page {page}: {name!r} not shown" for name in expect if name not in dom]
    out.parent.mkdir(parents=True, exist_ok=True)
    chromium(binary, page, f"--screenshot={out}")
    if not out.is_file() or out.stat().st_size < 10_000:
        problems.append(f"{out}: no screenshot written")
    print(f"{page}: {len(expect)} expected run(s) shown; screenshot {out}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder (its params and MLflow store)")
    parser.add_argument("--url", help="a running MLflow server (default: start `v2v ui` for --root)")
    parser.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment of --root)")
    parser.add_argument("--expect", action="append", default=[], help="run name that must be shown (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("mlflow-runs.png"), help="screenshot file")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        sys.exit(f"chromium not found at {args.chromium}; install it (apt-get install chromium) or pass --chromium")
    experiment = args.experiment
    if experiment is None:
        from v2v.config import load_config

        experiment = load_config(args.root / "params.yaml").tracking.experiment
    server = None
    url = args.url
    if url is None:
        server, url = start_ui(args.root)
    try:
        problems = check(url.rstrip("/"), experiment, args.expect, args.out, args.chromium)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGINT)  # the UI and its workers stop as on Ctrl-C
            server.wait(timeout=60)
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
