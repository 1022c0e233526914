"""`v2v summary`: what `make demo` ends with, readable in 120 columns."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from v2v.cli import app
from v2v.paths import ProjectPaths
from v2v.stages import STAGES
from v2v.stages.common import write_metrics
from v2v.summary import WIDTH, summary


def test_the_summary_fits_and_says_what_ran(tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path)
    assert "run `dvc repro` first" in summary(paths)
    scores = {"videos": 2, "seg_miou": 0.1688, "seg_miou_baseline": 0.1348, "seg_miou_real": 0.7339}
    scores |= {"seconds": 12345.678}
    scores |= {"warp_error": 0.0033927, "warp_error_baseline": 0.0137, "preference_combined": 0.61}
    write_metrics(paths.evaluate_metrics, scores)
    for stage in set(STAGES) - {"evaluate"}:  # every stage ran, for the longest stage-seconds line
        write_metrics(
            tmp_path / "metrics" / f"{stage}.json", {"seconds": 12345.678, "steps": 128, "loss_g_total": 15.7}
        )
    text = CliRunner().invoke(app, ["summary", "--root", str(tmp_path)]).output
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    row = next(line for line in lines if line.startswith("segmentation mIoU"))
    assert row.split()[2:] == ["0.1688", "0.1348", "0.7339", "higher"]
    assert next(line for line in lines if line.startswith("warping error")).split()[2:] == [
        "0.003393", "0.0137", "–", "lower"]  # fmt: skip
    assert "vid2vid over the baseline: 0.61" in text
    assert next(line for line in lines if line.startswith("train_scale2")).split() == [
        "train_scale2", "128", "15.7", "–", "1.235e+04"]  # fmt: skip
    assert all(f"{stage} 1.235e+04" in text for stage in STAGES)
    assert json.loads(paths.evaluate_metrics.read_text())["seg_miou"] == 0.1688
