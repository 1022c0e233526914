"""The same numbers on another clone: two fresh copies of the project in two folders, one `dvc repro` each, and
every output DVC records has the same hash (wall times live apart, in ``metrics/timing/``, by design)."""

from collections.abc import Callable
from pathlib import Path

import yaml


def output_hashes(project: Path) -> dict[str, str]:
    """``{output path: md5}`` over every stage of ``project``'s ``dvc.lock``, durations left out."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if not out["path"].startswith("metrics/timing/")
    }


def test_two_fresh_runs_write_the_same_outputs(
    fresh_dvc_project: Callable[[str], Path], dvc: Callable[..., str]
) -> None:
    first, second = fresh_dvc_project("first"), fresh_dvc_project("elsewhere/second")
    for project in (first, second):
        dvc(project, "repro")
    hashes = output_hashes(first)
    assert {"data/frames", "data/flow", "models/scale1", "results", "evaluation", "metrics/evaluate.json"} <= set(
        hashes
    )
    differ = {path for path, md5 in output_hashes(second).items() if hashes.get(path) != md5}
    assert not differ, f"outputs that depend on the run, not on code, params and data: {sorted(differ)}"
    # the maps a task does not read are not kept: the output is a status file, whatever ran before
    assert sorted(p.name for p in (second / "data/maps/pose").iterdir()) == ["status.json"]
