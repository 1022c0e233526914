"""The `v2v` command: every subcommand has help, params validation names keys, stages run by name."""

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from v2v.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command", [[], ["run"], ["params"], ["pipeline"], ["ui"], ["retrain"], ["serve"], ["compare"], ["ab"]]
)
def test_help_everywhere(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert not command or "Example" in result.output, "every command's help shows examples"


def test_params_check_and_list(tmp_path: Path) -> None:
    good = runner.invoke(app, ["params", "--root", str(Path(__file__).resolve().parents[1])])
    assert good.exit_code == 0 and "ok" in good.output
    (tmp_path / "params.yaml").write_text("extract:\n  jpeg_quality: 200\n")
    bad = runner.invoke(app, ["params", "--root", str(tmp_path)])
    assert bad.exit_code == 1
    assert "extract.jpeg_quality: expected a number in [1, 100], got 200" in bad.output
    (tmp_path / "params.yaml").write_text("extract:\n  jpeg_quality: 90\n")
    partial = runner.invoke(app, ["params", "--root", str(tmp_path)])  # never silently: the missing sections named
    assert partial.exit_code == 0 and "the shipped defaults apply: sample, segment," in partial.output
    listing = runner.invoke(app, ["params", "--list"])
    assert "extract.fps" in listing.output and "target frame rate" in listing.output


def test_run_stage_by_name(tmp_path: Path, make_video: Callable) -> None:
    make_video(tmp_path / "videos" / "a.mp4", num_frames=10)  # alone: split in time, 8 train + 2 test frames
    (tmp_path / "params.yaml").write_text(
        "extract:\n  input_dir: videos\n  width: 64\n  height: 32\ntracking:\n  enabled: false\n"
    )
    result = runner.invoke(app, ["run", "extract", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "data" / "frames" / "a_train").glob("*.jpg"))) == 8
    unknown = runner.invoke(app, ["run", "nope", "--root", str(tmp_path)])
    assert unknown.exit_code != 0 and "unknown stage 'nope'" in unknown.output
    (tmp_path / "videos" / "b.mp4").write_text("junk")
    failed = runner.invoke(app, ["run", "extract", "--root", str(tmp_path)])
    assert failed.exit_code == 1 and "b.mp4: cannot decode" in failed.output


def test_ab_between_two_mlflow_runs(tmp_path: Path) -> None:
    import mlflow

    from v2v.eval.scoring import VideoScores
    from v2v.eval.summary import per_frame_csv

    run_ids = []
    mlflow.set_experiment("cli-ab")
    for offset in (0.0, 0.1):
        v = VideoScores("clip", frames=9)
        v.lpips = {"vid2vid": [0.2 + offset] * 9}
        v.temporal = {"warp_error_vid2vid": [0.01 + offset] * 8, "tlp_vid2vid": [0.05] * 8}
        table = tmp_path / "evaluate_frames.csv"
        table.write_text(per_frame_csv([v]))
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(table), "report")
        run_ids.append(run.info.run_id)
    result = runner.invoke(app, ["ab", *run_ids, "--segment", "4"])
    assert result.exit_code == 0, result.output
    assert "realism" in result.output and "1.000" in result.output and "proxies" in result.output
    with mlflow.start_run() as empty:
        pass
    missing = runner.invoke(app, ["ab", run_ids[0], empty.info.run_id])
    assert missing.exit_code == 1 and "no report/evaluate_frames.csv" in missing.output


def test_pipeline_options_offer_their_choices() -> None:
    bad = runner.invoke(app, ["pipeline", "--driver", "nope"])
    assert bad.exit_code == 2 and "'dvc'" in bad.output and "'direct'" in bad.output
    assert "<dvc|direct>" in runner.invoke(app, ["pipeline", "--help"]).output
