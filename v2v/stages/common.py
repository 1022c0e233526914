"""What every stage entry point shares: argument parsing, logging, clean errors."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from v2v.config import Config, ConfigError, load_config
from v2v.errors import describe_error
from v2v.io.atomic import write_json
from v2v.paths import ProjectPaths

log = logging.getLogger(__name__)


class StageError(RuntimeError):
    """A stage could not complete; the message says which inputs failed and what to do."""


# Ordinary failures: bad params, missing, unreadable or damaged files, permissions, a full disk, bad checkpoints,
# values from user data, non-finite training. They end a stage with one message, not a traceback (V2V_DEBUG=1
# adds it). Programming errors (TypeError, AttributeError, AssertionError, ...) still show theirs. The library's
# own errors (VideoError, DeviceError, TrackingError, WeightsError) are RuntimeErrors, caught as such: naming them
# here would import their modules into every stage before it knows it has anything to do.
USER_ERRORS = (
    ConfigError,
    StageError,
    OSError,
    ValueError,
    RuntimeError,
    ArithmeticError,
    LookupError,
)
DEBUG_ENV = "V2V_DEBUG"


def is_timing(key: str) -> bool:
    """Durations and throughput: they change with the machine's load, not with the results."""
    return key == "seconds" or key.endswith("_seconds") or "per_second" in key


def split_timing(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(results and counts, durations and throughput)`` of a (nested) metrics dict."""
    results: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            inner, inner_timing = split_timing(value)
            results[key] = inner
            if inner_timing:
                timing[key] = inner_timing
        elif is_timing(key):
            timing[key] = value
        else:
            results[key] = value
    return results, timing


def timing_path(metrics_path: Path) -> Path:
    """``metrics/timing/<stage>.json`` beside ``metrics/<stage>.json`` (see :data:`v2v.paths.TIMING`)."""
    return metrics_path.parent / "timing" / metrics_path.name


def write_metrics(metrics_path: Path, metrics: dict[str, Any]) -> None:
    """A stage's figures: results and counts to its DVC metrics file, durations and throughput beside it in
    ``metrics/timing/`` (a plain output), so ``dvc metrics diff`` of two runs compares results, not load."""
    results, timing = split_timing(metrics)
    write_json(metrics_path, results)
    write_json(timing_path(metrics_path), timing)


def report_error(prefix: str, exc: BaseException) -> None:
    """Print ``error: <prefix>: <message>`` to stderr, plus the traceback when ``V2V_DEBUG=1``."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if debug:
        traceback.print_exception(exc)
    hint = "" if debug else f" (set {DEBUG_ENV}=1 for the traceback)"
    print(f"error: {prefix}: {describe_error(exc)}{hint}", file=sys.stderr)


@contextlib.contextmanager
def stage_lock(paths: ProjectPaths, name: str) -> Iterator[None]:
    """Hold ``<root>/.v2v/locks/<name>.lock`` while stage ``name`` runs; a second run of the same stage on the
    same project is refused with a message instead of racing the first over its outputs (the operating
    system releases the lock when a process dies, so a killed run never blocks the next)."""
    path = paths.locks / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StageError(
                f"another {name} run ({holder}) is working on {paths.root}; wait for it to finish (or stop it), "
                "then run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stage_main(
    name: str,
    run: Callable[[Config, ProjectPaths], Any],
    argv: Sequence[str] | None = None,
    distributed: bool = False,  # a training stage: relaunches itself under torch.distributed.run when asked
) -> None:
    """``python -m v2v.stages.<name> [--params params.yaml] [--root .]``: run one stage, exit 1 on bad input.

    A training stage with ``train.nproc_per_node`` or ``train.nnodes`` above 1 relaunches itself through
    ``torch.distributed.run`` (so ``dvc repro`` trains with DDP and DVC records the outputs); on the other
    machines of a multi-node run the same command with ``--join`` adds their processes."""
    parser = argparse.ArgumentParser(prog=f"python -m v2v.stages.{name}", description=f"Run the {name} stage.")
    parser.add_argument("--root", default=".", help="project folder (holds params.yaml and dvc.yaml)")
    parser.add_argument("--params", default=None, help="params file (default: ROOT/params.yaml)")
    if distributed:
        parser.add_argument("--join", action="store_true", help="another node of train.nnodes: add its processes")
    args = parser.parse_args(argv)
    configure_logging()
    paths = ProjectPaths.at(args.root)
    try:
        cfg = load_config(args.params or paths.params)
        locked = True
        if distributed:
            from v2v.training.distributed import LOCK_HELD_ENV, launch_command, takes_stage_lock

            stage_args = ["--root", str(args.root), *(["--params", args.params] if args.params else [])]
            if (command := launch_command(cfg.train, name, stage_args)) is not None:
                log.info("%s: %s", name, " ".join(command))
                with contextlib.nullcontext() if args.join else stage_lock(paths, name):
                    code = subprocess.run(command, env={**os.environ, LOCK_HELD_ENV: name}).returncode
                if code:
                    raise StageError(
                        f"training under torch.distributed.run failed (exit {code}); see the ranks' errors above"
                    )
                return
            locked = takes_stage_lock(name)
        with stage_lock(paths, name) if locked else contextlib.nullcontext():
            try:
                run(cfg, paths)
            finally:
                if distributed:
                    from v2v.training.distributed import shutdown

                    shutdown()  # leave the process group (a torchrun rank), if this process joined one
    except USER_ERRORS as exc:
        report_error(f"{name} stage", exc)
        sys.exit(1)
