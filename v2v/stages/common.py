"""What every stage entry point shares: argument parsing, logging, clean errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from v2v.config import Config, ConfigError, load_config
from v2v.io.video import VideoError
from v2v.ops.device import DeviceError
from v2v.paths import ProjectPaths
from v2v.tracking import TrackingError


class StageError(RuntimeError):
    """A stage could not complete; the message says which inputs failed and what to do."""


USER_ERRORS = (ConfigError, StageError, VideoError, DeviceError, FileNotFoundError, NotADirectoryError, TrackingError)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stage_main(name: str, run: Callable[[Config, ProjectPaths], Any], argv: Sequence[str] | None = None) -> None:
    """``python -m v2v.stages.<name> [--params params.yaml] [--root .]``: run one stage, exit 1 on bad input."""
    parser = argparse.ArgumentParser(prog=f"python -m v2v.stages.{name}", description=f"Run the {name} stage.")
    parser.add_argument("--root", default=".", help="project folder (holds params.yaml and dvc.yaml)")
    parser.add_argument("--params", default=None, help="params file (default: ROOT/params.yaml)")
    args = parser.parse_args(argv)
    configure_logging()
    paths = ProjectPaths.at(args.root)
    try:
        cfg = load_config(args.params or paths.params)
        run(cfg, paths)
    except USER_ERRORS as exc:
        print(f"error: {name} stage: {exc}", file=sys.stderr)
        sys.exit(1)
