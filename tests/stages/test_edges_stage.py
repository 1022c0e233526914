"""The edges stage end to end: Canny maps per frame, instance boundaries OR-ed in, bad input."""

import json
from typing import Any

import numpy as np
import pytest
from support import small_config

from v2v.config import Config
from v2v.io.frames import read_meta
from v2v.io.maps import read_instance, read_mask, read_rgb
from v2v.maps.edges import canny, instance_boundaries
from v2v.paths import ProjectPaths
from v2v.stages import edges, segment
from v2v.stages.common import StageError, split_timing

SAMPLE = {"width": 64, "height": 32, "num_frames": 4, "train_clips_per_scene": 1, "test_clips_per_scene": 0}


def config(**sections: dict[str, Any]) -> Config:
    return small_config(SAMPLE, **{"train": {"task": "edges"}, **sections})  # the maps this task reads


def test_edges_are_canny_of_each_frame(project: ProjectPaths) -> None:
    metrics = edges.run(config(tracking={"enabled": True, "experiment": "edges-stage"}), project)
    assert metrics["videos"] == 2 and metrics["frames"] == 8 and 0 < metrics["edge_density"] < 0.5
    assert json.loads(project.edges_metrics.read_text()) == {
        k: v for k, v in split_timing(metrics)[0].items() if k != "videos_reused"
    }
    for video in ("pose_000", "street_000"):
        meta = read_meta(project.edge_maps / video)
        assert meta["settings"]["sigma"] == 1.0 and meta["settings"]["low"] == 25.5 and meta["num_frames"] == 4
        for i in range(4):
            png = project.edge_maps / video / f"{i:06d}.png"
            got = read_mask(png)
            assert got.shape == (32, 64)
            np.testing.assert_array_equal(got, canny(read_rgb(project.frames / video / f"{i:06d}.png")))
    raw = np.unique(read_rgb(project.edge_maps / "street_000" / "000000.png"))
    assert set(raw.tolist()) <= {0, 255}  # binary PNG
    assert edges.run(config(), project)["videos_reused"] == 2
    assert "videos_reused" not in json.loads(project.edges_metrics.read_text())  # not in DVC's: history, not inputs


def test_instance_boundaries_are_or_ed_in(project: ProjectPaths) -> None:
    cfg = config(edges={"instance_boundaries": True, "thresholds": "auto"})
    with pytest.raises(StageError, match=r"no segment maps for .*dvc repro segment"):
        edges.run(cfg, project)
    segment.run(cfg, project)
    edges.run(cfg, project)
    for i in range(4):
        got = read_mask(project.edge_maps / "street_000" / f"{i:06d}.png")
        bounds = instance_boundaries(read_instance(project.segment_maps / "street_000" / "instance" / f"{i:06d}.png"))
        frame = read_rgb(project.frames / "street_000" / f"{i:06d}.png")
        np.testing.assert_array_equal(got, canny(frame, low=None, high=None) | bounds)
        assert bounds.any()


def test_corrupt_frame_fails_that_video_only(project: ProjectPaths) -> None:
    (project.frames / "street_000" / "000001.png").write_bytes(b"")
    with pytest.raises(
        StageError, match=r"street_000: .*street_000/000001.png: cannot decode this image.*`dvc repro extract`"
    ):
        edges.run(config(), project)
    assert read_meta(project.edge_maps / "pose_000")["num_frames"] == 4
    assert not (project.edge_maps / "street_000").exists()
    assert not any(p.name.startswith(".tmp-") for p in project.edge_maps.iterdir())
