"""One error path for every stage: ordinary failures end with one message and exit 1, bugs keep their traceback."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from v2v.errors import describe_error
from v2v.io.checkpoint import CheckpointError
from v2v.stages.common import stage_main, write_metrics


def run_failing(exc: BaseException, root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (root / "params.yaml").write_text("tracking: {enabled: false}\n")

    def run(cfg: object, paths: object) -> None:
        raise exc

    with pytest.raises(SystemExit) as stopped:
        stage_main("probe", run, ["--root", str(root)])
    return int(stopped.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/data/out"), "/data/out: Permission denied; the folder"),
        (OSError(errno.ENOSPC, "No space left on device", "/data/x.pt"), "/data/x.pt: No space left on device; free"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/data/a"), "a file and a folder share this name"),
        (CheckpointError("/m/model.pt: cannot read this checkpoint"), "probe stage: /m/model.pt: cannot read"),
        (ValueError("video v has 2 frames"), "ValueError: video v has 2 frames"),
        (FloatingPointError("scale 0 step 3: non-finite"), "FloatingPointError: scale 0 step 3"),
    ],
)
def test_ordinary_failures_are_one_message_without_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    exc: BaseException,
    expected: str,
) -> None:
    monkeypatch.delenv("V2V_DEBUG", raising=False)
    code, err = run_failing(exc, tmp_path, capsys)
    assert code == 1
    assert err.startswith("error: probe stage: ") and expected in err and "V2V_DEBUG=1" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("V2V_DEBUG", "1")
    code, err = run_failing(ValueError("bad value"), tmp_path, capsys)
    assert code == 1 and "Traceback" in err and "error: probe stage: ValueError: bad value" in err


def test_programming_errors_are_not_hidden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(TypeError, match="a bug"):
        run_failing(TypeError("a bug"), tmp_path, capsys)


def test_messages_of_the_projects_own_errors_are_kept_as_written() -> None:
    assert describe_error(FileNotFoundError("data/frames/index.json: missing; run the extract stage")) == (
        "data/frames/index.json: missing; run the extract stage"
    )


def test_durations_and_throughput_go_beside_the_metrics_not_into_them(tmp_path: Path) -> None:
    """`dvc metrics diff` of two runs then compares results, not how busy the machine was."""
    metrics = {
        "frames": 8,
        "seconds": 1.5,
        "frames_per_second": 5.3,
        "epe": 0.2,
        "per_video": {"a": {"epe": 0.1, "pairs_per_second": 9.0}},
    }
    write_metrics(tmp_path / "metrics" / "flow.json", metrics)
    assert json.loads((tmp_path / "metrics" / "flow.json").read_text()) == {
        "frames": 8,
        "epe": 0.2,
        "per_video": {"a": {"epe": 0.1}},
    }
    timing = json.loads((tmp_path / "metrics" / "timing" / "flow.json").read_text())
    assert timing == {"seconds": 1.5, "frames_per_second": 5.3, "per_video": {"a": {"pairs_per_second": 9.0}}}
