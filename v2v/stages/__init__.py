"""Pipeline stages: each module has ``run(cfg, paths)`` (the one implementation) and ``main()``.

DVC calls ``python -m v2v.stages.<name>``; the Prefect flow and ``v2v run <name>`` call the same
``run``. The order of this dict is the pipeline order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

STAGES: dict[str, str] = {
    "sample": "v2v.stages.sample",  # synthetic sample clips + ground truth
    "extract": "v2v.stages.extract",  # videos → frames + meta.json
}


def get_stage(name: str) -> Callable[..., Any]:
    """The ``run`` function of a stage, by name."""
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    run: Callable[..., Any] = importlib.import_module(STAGES[name]).run
    return run
