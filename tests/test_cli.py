"""The `v2v` command: every subcommand has help, params validation names keys, stages run by name."""

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from v2v.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command", [[], ["run"], ["params"], ["pipeline"], ["ui"], ["retrain"], ["serve"], ["compare"]]
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
    listing = runner.invoke(app, ["params", "--list"])
    assert "extract.fps" in listing.output and "target frame rate" in listing.output


def test_run_stage_by_name(tmp_path: Path, make_video: Callable) -> None:
    make_video(tmp_path / "videos" / "a.mp4", num_frames=4)
    (tmp_path / "params.yaml").write_text(
        "extract:\n  input_dir: videos\n  width: 64\n  height: 32\ntracking:\n  enabled: false\n"
    )
    result = runner.invoke(app, ["run", "extract", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "data" / "frames" / "a").glob("*.jpg"))) == 4
    unknown = runner.invoke(app, ["run", "nope", "--root", str(tmp_path)])
    assert unknown.exit_code != 0 and "unknown stage 'nope'" in unknown.output
    (tmp_path / "videos" / "b.mp4").write_text("junk")
    failed = runner.invoke(app, ["run", "extract", "--root", str(tmp_path)])
    assert failed.exit_code == 1 and "b.mp4: cannot decode" in failed.output
