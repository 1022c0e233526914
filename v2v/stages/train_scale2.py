"""``train_scale2`` stage: train spatial scale 2 (see :mod:`v2v.stages.train`)."""

from __future__ import annotations

from typing import Any

from v2v.config import Config
from v2v.paths import ProjectPaths
from v2v.stages.common import stage_main
from v2v.stages.train import run_scale

SCALE = 2


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    return run_scale(cfg, paths, SCALE)


def main() -> None:
    stage_main("train_scale2", run, distributed=True)


if __name__ == "__main__":
    main()
