"""Nothing damaged is trusted: a stage that reuses a video's folder checks every file against its manifest,
rebuilds the video whose files changed, and says which file it was."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from support import small_config

from v2v.config import Config
from v2v.io.files import MANIFEST_FILE, damaged_files
from v2v.io.maps import read_label, read_rgb
from v2v.paths import ProjectPaths
from v2v.stages import edges, extract, sample, segment
from v2v.stages.common import StageError

SAMPLE = {"width": 64, "height": 32, "num_frames": 6, "scenes": ["street"], "train_clips_per_scene": 2}


def config(task: str = "street") -> Config:
    return small_config({**SAMPLE, "test_clips_per_scene": 0}, extract={"frame_format": "jpg"}, train={"task": task})


@pytest.fixture
def project(tmp_path: Path) -> ProjectPaths:
    paths = ProjectPaths.at(tmp_path / "project")
    sample.run(config(), paths)
    extract.run(config(), paths)
    return paths


def truncate(path: Path) -> bytes:
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    return good


def test_a_truncated_frame_is_re_extracted_not_reused(project: ProjectPaths, caplog: pytest.LogCaptureFixture) -> None:
    frame = project.frames / "street_000" / "000003.jpg"
    good = truncate(frame)
    assert damaged_files(frame.parent) == ["000003.jpg"]
    with caplog.at_level(logging.WARNING):
        metrics = extract.run(config(), project)
    assert metrics["videos_reused"] == 1  # street_001 only: street_000 was rebuilt
    assert frame.read_bytes() == good and read_rgb(frame).shape == (32, 64, 3)
    assert "street_000: 000003.jpg missing or changed" in caplog.text
    assert extract.run(config(), project)["videos_reused"] == 2  # intact again: reused


def test_a_damaged_or_missing_map_is_rebuilt(project: ProjectPaths, caplog: pytest.LogCaptureFixture) -> None:
    segment.run(config(), project)
    label = project.segment_maps / "street_001" / "label" / "000002.png"
    good = truncate(label)
    (project.segment_maps / "street_000" / MANIFEST_FILE).unlink()  # an interrupted write of the manifest
    with caplog.at_level(logging.WARNING):
        metrics = segment.run(config(), project)
    assert metrics["videos_reused"] == 0
    assert label.read_bytes() == good and np.array_equal(
        read_label(label), read_label(project.sample_truth / "street_001" / "label" / "000002.png")
    )
    assert "label/000002.png missing or changed" in caplog.text
    edges.run(config("edges"), project)
    edge = project.edge_maps / "street_000" / "000001.png"
    edge.unlink()
    assert edges.run(config("edges"), project)["videos_reused"] == 1 and edge.is_file()


def test_a_damaged_frame_found_downstream_names_the_command_and_that_command_repairs_it(project: ProjectPaths) -> None:
    frame = project.frames / "street_001" / "000002.jpg"
    good = truncate(frame)
    with pytest.raises(StageError, match=r"street_001: .*000002.jpg: cannot decode this image.*`dvc repro extract`"):
        edges.run(config("edges"), project)
    assert extract.run(config(), project)["videos_reused"] == 1  # what `dvc repro extract` runs: it rebuilds street_001
    assert frame.read_bytes() == good
    assert edges.run(config("edges"), project)["videos"] == 2
