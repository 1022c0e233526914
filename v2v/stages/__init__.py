"""Pipeline stages: each module has ``run(cfg, paths)`` (the one implementation) and ``main()``.

DVC calls ``python -m v2v.stages.<name>``; the Prefect flow and ``v2v run <name>`` call the same
``run``. The order of this dict is the pipeline order.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

STAGES: dict[str, str] = {
    "sample": "v2v.stages.sample",  # synthetic sample clips + ground truth
    "extract": "v2v.stages.extract",  # videos → frames + meta.json
    "segment": "v2v.stages.segment",  # frames → label + tracked instance maps
    "edges": "v2v.stages.edges",  # frames → binary edge maps
    "pose": "v2v.stages.pose",  # frames → keypoints JSON + rendered pose maps
    "face": "v2v.stages.face",  # frames → dlib 68 landmarks + face sketches (train.task face)
    "flow": "v2v.stages.flow",  # backward optical flow t → t-1 + confidence masks
    "train_scale0": "v2v.stages.train_scale0",  # coarsest generator scale
    "train_scale1": "v2v.stages.train_scale1",  # + local enhancer 1, from scale 0
    "train_scale2": "v2v.stages.train_scale2",  # + local enhancer 2, from scale 1
    "train_baseline": "v2v.stages.train_baseline",  # per-frame baseline, same budget (for the evaluation)
    "segmenter": "v2v.stages.segmenter",  # the segmentation-consistency judge, from the train split's real frames
    "generate": "v2v.stages.generate",  # held-out videos synthesised (+ manipulation demo)
    "evaluate": "v2v.stages.evaluate",  # FID, video FDs, temporal metrics, preference proxies, report
}


def get_stage(name: str) -> Callable[..., Any]:
    """The ``run(cfg, paths)`` function of a stage, by name, holding the stage's lock while it runs."""
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    run: Callable[..., Any] = importlib.import_module(STAGES[name]).run

    @functools.wraps(run)
    def locked(cfg: Any, paths: Any, *args: Any, **kwargs: Any) -> Any:
        from v2v.stages.common import stage_lock

        with stage_lock(paths, name):
            return run(cfg, paths, *args, **kwargs)

    return locked
