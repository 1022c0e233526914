"""The sample stage writes decodable videos whose frames and ground truth agree with the generator."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from v2v.data.synthetic import generate_clip
from v2v.io.decode import read_video
from v2v.io.maps import read_flow, read_instance, read_label, read_mask, read_rgb
from v2v.paths import ProjectPaths
from v2v.stages import sample


def test_sample_writes_videos_and_exact_truth(tmp_path: Path, tiny_config: Callable) -> None:
    cfg = tiny_config(tracking={"enabled": False})
    paths = ProjectPaths.at(tmp_path)
    metrics = sample.run(cfg, paths)
    assert metrics["clips"] == 4 and metrics["frames"] == 24

    videos = sorted(p.relative_to(paths.sample_videos).as_posix() for p in paths.sample_videos.rglob("*.mp4"))
    assert videos == ["test/pose_001.mp4", "test/street_001.mp4", "train/pose_000.mp4", "train/street_000.mp4"]
    name, split, seed = sample.clip_plan(cfg.sample)[0]
    assert (name, split) == ("street_000", "train")

    truth = list(generate_clip("street", width=64, height=32, num_frames=6, seed=seed))
    folder = paths.sample_truth / name
    for t, frame in enumerate(truth):
        assert np.array_equal(read_rgb(folder / "rgb" / f"{t:06d}.png"), frame.rgb)
        assert np.array_equal(read_label(folder / "label" / f"{t:06d}.png"), frame.label)
        assert np.array_equal(read_instance(folder / "instance" / f"{t:06d}.png"), frame.instance)
        if t:
            assert np.array_equal(read_flow(folder / "flow" / f"{t:06d}.npy"), frame.flow)
            assert np.array_equal(read_mask(folder / "flow_valid" / f"{t:06d}.png"), frame.flow_valid)
    assert not (folder / "flow" / "000000.npy").exists()
    keypoints = json.loads((folder / "keypoints.json").read_text())
    assert len(keypoints["frames"]) == 6 and len(keypoints["keypoint_names"]) == 17
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["num_frames"] == 6 and meta["seed"] == seed

    # the encoded video is the truth's RGB up to compression
    decoded = read_video(paths.sample_videos / "train" / "street_000.mp4")
    assert decoded.shape == (6, 32, 64, 3)
    error = np.abs(decoded.astype(float) - np.stack([f.rgb for f in truth])).mean()
    assert error < 6.0, error


def test_sample_is_deterministic_and_seeded(tmp_path: Path, tiny_config: Callable) -> None:
    first = ProjectPaths.at(tmp_path / "a")
    second = ProjectPaths.at(tmp_path / "b")
    cfg = tiny_config(sample={"scenes": ["pose"]}, tracking={"enabled": False})
    sample.run(cfg, first)
    sample.run(cfg, second)
    for path in first.sample_truth.rglob("*.*"):
        assert path.read_bytes() == (second.sample_truth / path.relative_to(first.sample_truth)).read_bytes(), path
    other = sample.clip_plan(tiny_config(sample={"scenes": ["pose"], "seed": 1}).sample)
    assert [s for *_, s in other] != [s for *_, s in sample.clip_plan(cfg.sample)]


def test_real_clips_are_copied_in_as_loose_videos(tmp_path: Path, tiny_config: Callable) -> None:
    from support import carphone

    from v2v.config import ConfigError

    paths = ProjectPaths.at(tmp_path / "p")
    metrics = sample.run(tiny_config(sample={"scenes": [], "real_clips": ["carphone"]}), paths)
    assert metrics["clips"] == 0 and metrics["real_clips"] == 1
    assert [p.name for p in paths.sample_videos.iterdir()] == ["carphone.mp4"]  # loose: extract splits it in time
    assert (paths.sample_videos / "carphone.mp4").read_bytes() == carphone().read_bytes()
    try:
        sample.run(tiny_config(sample={"scenes": [], "real_clips": []}), paths)
    except ConfigError as exc:
        assert "no scenes and no real_clips" in str(exc)
    else:
        raise AssertionError("an empty sample must be refused")


def test_with_your_own_videos_the_sample_stage_makes_nothing(tmp_path: Path, tiny_config: Callable) -> None:
    """extract.input_dir elsewhere: empty (valid) outputs in no time, whatever sample's scenes say; an empty
    sample list is no error there."""
    paths = ProjectPaths.at(tmp_path / "p")
    experiment = f"own-videos-{tmp_path.name}"
    for scenes in (["street", "pose"], []):
        cfg = tiny_config(
            sample={"scenes": scenes}, extract={"input_dir": "data/raw"}, tracking={"experiment": experiment}
        )
        metrics = sample.run(cfg, paths)
        assert metrics["clips"] == 0 and metrics["real_clips"] == 0 and metrics["frames"] == 0
        assert paths.sample_videos.is_dir() and not any(paths.sample_videos.iterdir())
        assert paths.sample_truth.is_dir() and not any(paths.sample_truth.iterdir())
    assert MlflowClient().get_experiment_by_name(experiment) is None  # no run opened: nothing to log
