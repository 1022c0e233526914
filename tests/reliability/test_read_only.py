"""A folder this user cannot write: the message names that folder (never a temporary's random name), says what
to do, claims nothing that did not happen, exits 1 without a traceback, and loses nothing written before."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from support import small_config

from v2v.config import Config
from v2v.io.atomic import write_text
from v2v.io.frames import read_meta
from v2v.paths import ProjectPaths
from v2v.stages import edges, extract, sample
from v2v.stages.common import stage_main

SAMPLE = {"width": 64, "height": 32, "num_frames": 4, "train_clips_per_scene": 1, "test_clips_per_scene": 0}


def config(**edge_settings: Any) -> Config:
    return small_config({**SAMPLE, "scenes": ["street"]}, train={"task": "edges"}, edges=edge_settings)


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Folders listed here refuse new entries, as a read-only folder does (the suite may run as root, where
    chmod stops nothing, so creation is refused where the library creates: os.mkdir and os.open)."""
    folders: list[Path] = []
    real_mkdir, real_open = os.mkdir, os.open

    def refused(path: Any) -> bool:
        return Path(path).resolve().parent in [f.resolve() for f in folders]

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if refused(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real_mkdir(path, *args, **kwargs)

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and refused(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    return folders


def run_stage(name: str, cfg: Config, paths: ProjectPaths, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The stage through its command-line entry point (``python -m v2v.stages.<name>``) with ``cfg``."""
    if not paths.params.exists():
        paths.params.write_text("tracking: {enabled: false}\n")
    stage = {"edges": edges.run, "extract": extract.run}[name]
    with pytest.raises(SystemExit) as stopped:
        stage_main(name, lambda _, p: stage(cfg, p), ["--root", str(paths.root)])
    return int(stopped.value.code or 0), capsys.readouterr().err


def test_a_read_only_maps_folder_names_the_folder_and_claims_nothing(
    tmp_path: Path, read_only: list[Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("V2V_DEBUG", raising=False)
    paths = ProjectPaths.at(tmp_path)
    sample.run(config(), paths)
    extract.run(config(), paths)
    paths.edge_maps.mkdir(parents=True)
    read_only.append(paths.edge_maps)
    code, err = run_stage("edges", config(), paths, capsys)
    assert code == 1 and "Traceback" not in err
    assert f"{paths.edge_maps}: Permission denied (writing street_000 there); the folder or file is not writable" in err
    assert "no video's maps were written" in err and "other" not in err
    assert ".tmp-" not in err  # the temporary's name means nothing to the user
    assert list(paths.edge_maps.iterdir()) == []  # nothing half-written


def test_maps_written_before_survive_a_read_only_rerun(
    tmp_path: Path, read_only: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = ProjectPaths.at(tmp_path)
    sample.run(config(), paths)
    extract.run(config(), paths)
    edges.run(config(), paths)
    before = {p: p.read_bytes() for p in (paths.edge_maps / "street_000").iterdir()}
    read_only.append(paths.edge_maps)
    code, err = run_stage("edges", config(sigma=2.0), paths, capsys)  # new settings: the maps must be rebuilt
    assert code == 1 and "Permission denied" in err
    assert {p: p.read_bytes() for p in (paths.edge_maps / "street_000").iterdir()} == before
    assert read_meta(paths.edge_maps / "street_000")["settings"]["sigma"] == 1.0


def test_a_read_only_frames_folder_fails_extract_with_the_folder_named(
    tmp_path: Path, read_only: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = ProjectPaths.at(tmp_path)
    sample.run(config(), paths)
    paths.frames.mkdir(parents=True)
    read_only.append(paths.frames)
    code, err = run_stage("extract", config(), paths, capsys)
    assert code == 1 and "Traceback" not in err and ".tmp-" not in err
    assert f"{paths.frames}: Permission denied" in err and "no video was extracted" in err


def test_a_single_file_write_names_its_folder(tmp_path: Path, read_only: list[Path]) -> None:
    read_only.append(tmp_path)
    with pytest.raises(PermissionError) as caught:
        write_text(tmp_path / "report.html", "x")
    assert caught.value.filename == str(tmp_path) and "writing report.html there" in str(caught.value)
