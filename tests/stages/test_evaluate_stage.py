"""train_baseline + evaluate end to end on a tiny street sample: metrics, plots, report, cache, bad inputs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest
import torch
from support import suite_config

from v2v.config import Config
from v2v.generation.synthesis import generate_stream, load_model
from v2v.io.checkpoint import CheckpointError
from v2v.paths import ProjectPaths
from v2v.stages import get_stage

SCALE = {"epochs": 1, "decay_epochs": 0, "samples_per_video": 1, "start_frames": 4, "max_frames": 4}


def config(**sections: dict) -> Config:
    data: dict[str, dict] = {
        "sample": {
            "width": 64,
            "height": 32,
            "num_frames": 12,
            "scenes": ["street"],
            "train_clips_per_scene": 1,
            "test_clips_per_scene": 1,
        },
        "extract": {"width": 64, "height": 32},
        "model": {"preset": "tiny"},
        "train": {"num_scales": 2, "loss_vgg": 0.0, "device": "cpu", "sample_every": 1000, "checkpoint_every": 1000},
        "train_scale0": SCALE,
        "train_scale1": SCALE,
        "generate": {"device": "cpu", "manipulate": [], "continue_from": 0},
        "evaluate": {
            "device": "cpu",
            "image_backbone": "inception_v3",
            "image_weights": "none",
            "video_backbones": ["r2plus1d_18"],
            "video_weights": "none",
            "lpips_weights": "none",
            "clip_frames": 8,
            "clip_stride": 2,
            "segment_frames": 4,
        },
        "segmenter": {"steps": 30, "batch_size": 4, "device": "cpu"},
        "tracking": {"enabled": False},
        "orchestrate": {"threads_per_task": 1},  # float sums depend on the thread count (the Dask test)
    }
    for key, values in sections.items():
        data.setdefault(key, {}).update(values)
    return suite_config(data)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    paths = ProjectPaths.at(tmp_path_factory.mktemp("evaluate") / "project")
    cfg = config()
    for stage in ("sample", "extract", "segment", "flow", "train_scale0", "train_scale1", "train_scale2"):
        get_stage(stage)(cfg, paths)
    get_stage("train_baseline")(cfg, paths)
    get_stage("segmenter")(cfg, paths)
    get_stage("generate")(cfg, paths)
    get_stage("evaluate")(cfg, paths)
    return paths


def test_the_baseline_is_a_per_frame_model_trained_on_the_same_schedule(evaluated: ProjectPaths) -> None:
    model = load_model(evaluated.baseline_dir / "model.pt", torch.device("cpu"))
    generator, saved = model.generator, model.config
    assert saved["per_frame"] is True and saved["scale"] == 1
    assert saved["model"]["flow"] is False and generator.flow is False  # no flow branch computed for nothing
    assert not any(".flow_" in name for name in generator.state_dict())
    baseline = json.loads(evaluated.baseline_metrics.read_text())
    vid2vid_steps = sum(json.loads(evaluated.train_metrics(s).read_text())["steps"] for s in (0, 1))
    assert baseline["steps"] == vid2vid_steps  # the same budget
    assert not any(k.startswith(("loss_flow", "loss_warp", "loss_video")) for k in baseline)  # image terms only
    # each frame depends on its own condition only: frame 2 of a stream equals frame 2 generated alone
    torch.manual_seed(0)
    conditions = [torch.rand(generator.label_channels, 32, 64) for _ in range(3)]
    stream = [o["fake"] for o in generate_stream(generator, conditions, torch.device("cpu"), per_frame=True)]
    alone = next(generate_stream(generator, conditions[2:], torch.device("cpu"), per_frame=True))["fake"]
    assert torch.allclose(stream[2], alone, atol=1e-6)


def test_metrics_cover_every_score_and_system(evaluated: ProjectPaths) -> None:
    metrics = json.loads(evaluated.evaluate_metrics.read_text())
    assert metrics["videos"] == 1 and metrics["frames"] == 12
    for key in ("fid_tv", "fd_r2plus1d_18", "lpips", "warp_error", "tof", "tlp"):
        assert metrics[key] >= 0 and metrics[f"{key}_baseline"] >= 0, key
    assert metrics["warp_error_real"] > 0
    assert metrics["fd_r2plus1d_18_samples"] == 3  # windows of 8 frames every 2 frames in 12
    for system in ("", "_baseline", "_real"):  # segmentation consistency of every system
        assert 0 <= metrics[f"seg_miou{system}"] <= 1 and 0 <= metrics[f"seg_accuracy{system}"] <= 1
    assert set(metrics["seg_per_video"]) == {"street_001"}
    assert summary_weights(evaluated)["segmenter"]["weights"] == "trained"
    for dim in ("realism", "realism_segmentation", "temporal_tlp", "temporal_warp", "temporal", "combined"):
        low, rate, high = (metrics[f"preference_{dim}{s}"] for s in ("_low", "", "_high"))
        assert 0 <= low <= rate <= high <= 1
    assert metrics["preference_realism_questions"] == 3  # 12 frames / 4-frame segments
    summary = json.loads((evaluated.evaluation / "summary.json").read_text())
    assert summary["weights"]["fid_tv"]["name"] == "random-init"
    assert summary["weights"]["lpips"]["name"] == "random-init"


def summary_weights(paths: ProjectPaths) -> dict:
    return json.loads((paths.evaluation / "summary.json").read_text())["weights"]


def test_per_frame_plot_rows_and_videos(evaluated: ProjectPaths) -> None:
    rows = list(csv.DictReader(evaluated.evaluate_plots.read_text().splitlines()))
    assert len(rows) == 12 and rows[0]["warp_error_vid2vid"] == "" and float(rows[1]["warp_error_real"]) > 0
    assert all(0 <= float(r["seg_error_vid2vid"]) <= 1 for r in rows)  # per frame, from the first one
    folder = evaluated.evaluation / "street_001"
    assert len(list((folder / "baseline").glob("*.png"))) == 12
    assert (folder / "compare.webm").stat().st_size > 0 and (folder / "baseline.webm").stat().st_size > 0


def test_report_is_self_contained_and_flags_random_weights(evaluated: ProjectPaths) -> None:
    html = (evaluated.evaluation / "report.html").read_text()
    for text in ("Scores", "Preference proxies", "Randomly initialised", "data:video/webm;base64,", "data:image/png"):
        assert text in html, text
    assert "src='http" not in html and 'src="http' not in html  # nothing fetched from elsewhere
    # the training curves also as a PNG beside the report, for viewing without a browser (or a network)
    curves = cv2.imread(str(evaluated.evaluation / "training_curves.png"))
    assert curves is not None and curves.shape[1] > 2 * curves.shape[0]  # two panels side by side
    assert "href='training_curves.png'" in html


def test_real_features_are_cached_and_reused(evaluated: ProjectPaths, tmp_path: Path) -> None:
    copy = ProjectPaths.at(tmp_path / "copy")
    shutil.copytree(evaluated.root, copy.root)
    cached = sorted(copy.eval_cache.glob("*.npz"))
    assert len(cached) == 2  # inception and r2plus1d_18 features of the one real video
    stamps = [p.stat().st_mtime_ns for p in cached]
    metrics = get_stage("evaluate")(config(), copy)
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    before = json.loads(evaluated.evaluate_metrics.read_text())
    assert metrics["fid_tv"] == pytest.approx(before["fid_tv"], rel=1e-6)


def test_missing_or_stale_inputs_are_clear_errors(evaluated: ProjectPaths, tmp_path: Path) -> None:
    copy = ProjectPaths.at(tmp_path / "copy")
    shutil.copytree(evaluated.root, copy.root)
    report = (copy.evaluation / "report.html").read_bytes()
    shutil.copytree(copy.results / "street_001", copy.results / "street_999")
    with pytest.raises(ValueError, match=r"street_999: no test video .*rerun `dvc repro generate`"):
        get_stage("evaluate")(config(), copy)
    shutil.rmtree(copy.results / "street_999")
    (copy.results / "street_001" / "frames" / "000005.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"000005.png: missing generated frame"):
        get_stage("evaluate")(config(), copy)
    assert (copy.evaluation / "report.html").read_bytes() == report  # nothing already produced was lost
    (copy.baseline_dir / "model.pt").unlink()
    with pytest.raises(CheckpointError, match=r"models/baseline/model.pt: checkpoint not found"):
        get_stage("evaluate")(config(), copy)


def test_scoring_on_a_dask_cluster_gives_the_same_figures(evaluated: ProjectPaths, tmp_path: Path) -> None:
    """``orchestrate.executor: dask``: each video scored by a worker (two workers, one torch thread per task on both
    executors): the baseline's frames and the per-frame series as a serial run's to the byte, the metrics to float
    rounding (the Fréchet distance of random-weight Inception features, ~3e5, has moved by 1 in its last digit)."""
    runs = {}
    for executor in ("serial", "dask"):
        paths = ProjectPaths.at(tmp_path / executor)
        shutil.copytree(evaluated.root, paths.root, ignore=shutil.ignore_patterns("evaluation", "cache", "mlruns"))
        get_stage("evaluate")(config(orchestrate={"executor": executor, "dask_workers": 2}), paths)
        frames = sorted(paths.evaluation.rglob("*.png"))
        runs[executor] = (
            json.loads(paths.evaluate_metrics.read_text()),
            paths.evaluate_plots.read_bytes(),
            {str(f.relative_to(paths.evaluation)): f.read_bytes() for f in frames},
        )
    (serial, serial_plots, serial_frames), (dask, dask_plots, dask_frames) = runs["serial"], runs["dask"]
    assert "street_001/baseline/000000.png" in serial_frames and dask_frames == serial_frames
    assert dask_plots == serial_plots
    assert dask == _approx(serial)


def _approx(value: Any) -> Any:
    """``value`` with every float inside (nested dicts and lists too) compared to float rounding."""
    if isinstance(value, dict):
        return {key: _approx(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_approx(item) for item in value]
    return pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
