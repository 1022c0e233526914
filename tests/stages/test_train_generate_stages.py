"""Training stages → generate with the feature encoder and moving averages: MLflow model artifacts,
the model file round trip, multimodal videos (same seed same frames, other seed other frames), bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from support import small_config

from v2v.config import Config
from v2v.data.clips import ClipDataset
from v2v.generation.synthesis import generate_stream, load_model, video_frames, video_inputs
from v2v.io.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from v2v.io.decode import read_video
from v2v.io.files import dvc_md5
from v2v.mlops.registry import awaiting_decision
from v2v.models.encoder import FeatureBank
from v2v.paths import ProjectPaths
from v2v.stages import flow, generate, segment
from v2v.stages.train import run_scale
from v2v.training.loop import build_networks, run_config

SAMPLE = {"width": 64, "height": 32, "num_frames": 6, "scenes": ["street"]}
SAMPLE.update({"train_clips_per_scene": 1, "test_clips_per_scene": 1})
EXPERIMENT = "train-generate-stages"


def config(**sections: dict[str, Any]) -> Config:
    """Tiny networks with E (3 feature channels) and moving averages; one training scale, one step."""
    base: dict[str, dict[str, Any]] = {
        "model": {"preset": "tiny", "feature_channels": 3},
        "train": {"num_scales": 1, "loss_vgg": 0.0, "device": "cpu", "ema_decay": 0.5, "feature_clusters": 4},
        "train_scale0": {"epochs": 1, "decay_epochs": 0, "samples_per_video": 1, "start_frames": 4, "max_frames": 4},
        "generate": {"device": "cpu", "seeds": [0, 1], "continue_from": 2},
        "tracking": {"enabled": True, "experiment": EXPERIMENT},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return small_config(SAMPLE, **base)


@pytest.fixture(scope="module")
def trained(base_project: Path, tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """The sample with maps and flow, trained through the three training stages (scales 1, 2 pass scale 0 on)."""
    paths = ProjectPaths.at(tmp_path_factory.mktemp("trained") / "project")
    shutil.copytree(base_project, paths.root)
    cfg = config()
    segment.run(cfg, paths)
    flow.run(cfg, paths)
    mlflow.set_experiment(f"another-{paths.root.parent.name}")  # as a notebook may have: the stages log anyway
    for scale in range(3):
        run_scale(cfg, paths, scale)
    # the first frames' per-frame model (generate.first_frames single_g): any generator run per frame serves
    # these tests, which are about what generation does with it; the baseline's training is tested elsewhere
    paths.baseline_dir.mkdir(parents=True)
    shutil.copy(paths.model_dir(0) / "model.pt", paths.baseline_dir / "model.pt")
    return paths


def test_each_trained_scale_logs_its_model_to_mlflow(trained: ProjectPaths) -> None:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    (run,) = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["v2v.stage"] == "train_scale0"]
    info = mlflow.models.get_model_info(run.data.tags["v2v.model_uri"])  # an MLflow model of the run, not loose files
    assert info.run_id == run.info.run_id and info.signature is not None and info.saved_input_example_info
    assert run.data.tags["v2v.generator_weights"] == "ema"
    assert run.data.tags["v2v.feature_bank"].endswith("classes, up to 4 centres each")
    assert run.data.tags["v2v.out.models/scale0"] == dvc_md5(trained.model_dir(0))  # the DVC md5 stays
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(trained.root / "download"))
    (logged,) = Path(local).rglob("model.pt")
    assert logged.read_bytes() == (trained.model_dir(0) / "model.pt").read_bytes()


def test_the_last_trained_scale_is_registered_awaiting_a_decision(trained: ProjectPaths) -> None:
    """`dvc repro` leaves a registry version of the pipeline's model; `v2v retrain` decides on that version."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = {r.data.tags["v2v.stage"]: r for r in client.search_runs([experiment.experiment_id])}
    name = config().promote.model_name
    uri = runs["train_scale0"].data.tags["v2v.model_uri"]  # num_scales 1: scale 0 is the last trained one
    (version,) = [v for v in client.search_model_versions(f"name = '{name}'") if v.source == uri]
    assert version.run_id == runs["train_scale0"].info.run_id and "v2v.promoted" not in version.tags
    assert awaiting_decision(client, name, uri) == str(version.version)
    client.set_model_version_tag(name, version.version, "v2v.promoted", "false")  # a decision used it
    assert awaiting_decision(client, name, uri) is None


def test_model_file_round_trips_generator_encoder_and_bank(trained: ProjectPaths) -> None:
    model_file = trained.model_dir(2) / "model.pt"
    payload = read_checkpoint(model_file)
    model = load_model(model_file, torch.device("cpu"))
    assert model.weights == "ema" and model.encoder is not None and model.feature_bank is not None
    for name, module in (("generator_ema", model.generator), ("encoder_ema", model.encoder)):
        saved = payload["modules"][name]
        assert all(torch.equal(value, saved[key]) for key, value in module.state_dict().items()), name
    assert not all(
        torch.equal(payload["modules"]["generator"][k], v) for k, v in payload["modules"]["generator_ema"].items()
    )
    bank = payload["extra"]["feature_bank"]
    assert {int(k) for k in bank} == set(model.feature_bank.centres)
    assert all(torch.equal(model.feature_bank.centres[int(k)], v) for k, v in bank.items())
    assert all(1 <= v.shape[0] <= 4 and v.shape[1] == 3 for v in bank.values())


def test_generate_writes_the_multimodal_videos_and_which_weights(trained: ProjectPaths) -> None:
    cfg = config()
    metrics = generate.run(cfg, trained)
    assert metrics["videos"] == 1
    folder = trained.results / "street_001"
    for name in ("fake.mp4", "compare.mp4", "manipulated.mp4", "continue.mp4", "multimodal_seed0.mp4"):
        assert (folder / name).stat().st_size > 0, name
    assert (folder / "multimodal_seed1.mp4").stat().st_size > 0
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["generator_weights"] == "ema" and meta["multimodal_seeds"] == [0, 1] and meta["appearance_seed"] == 0
    assert meta["first_frames"] == "single_g"  # the street task's (generate.first_frames: auto)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    (run,) = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["v2v.stage"] == "generate"]
    assert run.data.tags["v2v.generator_weights"] == "ema" and run.data.tags["v2v.first_frames"] == "single_g"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "videos/street_001")}
    assert {"videos/street_001/multimodal_seed0.mp4", "videos/street_001/multimodal_seed1.mp4"} <= logged


def test_generation_on_a_dask_cluster_writes_the_same_bytes(trained: ProjectPaths, tmp_path: Path) -> None:
    """``orchestrate.executor: dask`` (a LocalCluster of two workers): every result file as the serial run's, one
    torch thread per task on both executors (``threads_per_task``: float sums depend on the thread count)."""
    runs = {}
    for executor in ("serial", "dask"):
        paths = ProjectPaths.at(tmp_path / executor)
        shutil.copytree(trained.root, paths.root, ignore=shutil.ignore_patterns("results", "checkpoints", "mlruns"))
        orchestrate = {"executor": executor, "dask_workers": 2, "threads_per_task": 1}
        generate.run(config(orchestrate=orchestrate, tracking={"enabled": False}), paths)
        runs[executor] = {
            str(f.relative_to(paths.results)): f.read_bytes() for f in sorted(paths.results.rglob("*")) if f.is_file()
        }
    assert len(runs["serial"]) > 10 and "street_001/fake.mp4" in runs["serial"]
    assert runs["dask"].keys() == runs["serial"].keys()
    # the frames and the metadata to the byte; the H.264 files to their decoded pictures (libx264 has given two
    # encodings of the same frames in two processes here, run to run, whatever the executor)
    differ = [name for name in runs["serial"] if runs["dask"][name] != runs["serial"][name]]
    assert [name for name in differ if not name.endswith(".mp4")] == []
    for name in differ:
        one, two = (read_video(tmp_path / run / "results" / name) for run in runs)
        assert one.shape == two.shape and np.abs(one.astype(int) - two.astype(int)).mean() < 1.0, name


def test_the_seed_alone_decides_the_appearance(trained: ProjectPaths) -> None:
    """Same seed → identical frames; another seed → other frames. The bank is swapped for well separated
    centres: one training step leaves E's instance features nearly equal (it has not learned appearance
    yet), and this test is about what generation does with a bank, not about how far E trained."""
    model = load_model(trained.model_dir(2) / "model.pt", torch.device("cpu"))
    assert model.feature_bank is not None
    gen = torch.Generator().manual_seed(0)
    model.feature_bank = FeatureBank(
        {c: torch.randn(v.shape, generator=gen) for c, v in model.feature_bank.centres.items()}
    )
    dataset = ClipDataset(paths=trained, split="test", task="street", clip_length=1, with_flow=False)
    video = dataset.videos[0]

    def frames(seed: int) -> torch.Tensor:
        labels, features = video_inputs(model, dataset, video, video.num_frames, seed=seed)
        stream = generate_stream(model.generator, labels, torch.device("cpu"), features=features)
        return torch.stack([out["fake"] for out in stream])

    first, again, other = frames(0), frames(0), frames(1)
    assert torch.equal(first, again)
    change = float((first - other).abs().mean() / first.abs().mean())
    print(f"seed 0 vs 1: mean |difference| = {change:.2f} x mean |frame|")
    assert change > 0.05


def test_seeds_for_a_model_without_encoder_or_bank_name_the_problem(trained: ProjectPaths, tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    shutil.copytree(trained.root, paths.root, ignore=shutil.ignore_patterns("results", "checkpoints", "download"))
    plain = config(model={"feature_channels": 0}, train={"ema_decay": 0.0}, tracking={"enabled": False})
    nets, _ = build_networks(plain, 0, None)
    model_file = paths.model_dir(2) / "model.pt"
    save_checkpoint(model_file, config=run_config(plain, 0, 1), modules=nets.modules())
    assert load_model(model_file, torch.device("cpu")).weights == "raw"
    with pytest.raises(ValueError, match="generate.seeds: .*model.pt has no feature encoder"):
        generate.run(plain, paths)
    with_encoder = config(tracking={"enabled": False})
    nets, _ = build_networks(with_encoder, 0, None)
    save_checkpoint(model_file, config=run_config(with_encoder, 0, 1), modules=nets.modules())  # no bank
    with pytest.raises(CheckpointError, match="model.pt: the model has a feature encoder .* but no feature bank"):
        load_model(model_file, torch.device("cpu"))
    other = config(model={"feature_channels": 2}, tracking={"enabled": False})
    save_checkpoint(model_file, config=run_config(other, 0, 1), modules=nets.modules())  # weights of 3 channels
    with pytest.raises(CheckpointError, match="model.pt: generator_ema weights do not fit"):
        load_model(model_file, torch.device("cpu"))


def test_a_completed_stage_removes_its_checkpoints_unless_asked(base_project: Path, tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    shutil.copytree(base_project, paths.root)
    cfg = config(train={"checkpoint_every": 1, "keep_checkpoints": 1}, tracking={"enabled": False})
    segment.run(cfg, paths)
    flow.run(cfg, paths)
    run_scale(cfg, paths, 0)
    assert (paths.model_dir(0) / "model.pt").is_file()
    assert not list(paths.checkpoints.rglob("step_*.pt"))  # the model is the output; no checkpoint stays
    kept = {"checkpoint_every": 1, "keep_checkpoints": 1, "keep_checkpoints_when_done": True, "seed": 1}
    run_scale(config(train=kept, tracking={"enabled": False}), paths, 0)
    assert len(list(paths.checkpoints.rglob("step_*.pt"))) == 1  # the newest only (keep_checkpoints: 1)


def test_first_frames_come_from_the_per_frame_model_and_generation_continues_from_them(trained: ProjectPaths) -> None:
    """single_g (the reference's --use_single_G): frames 0..K-1 are the per-frame model's, the rest continue from
    them; hallucinate: vid2vid makes frame 0 from labels alone; real: the real frames."""
    cpu = torch.device("cpu")
    model = load_model(trained.model_dir(2) / "model.pt", cpu)
    first_model = load_model(trained.baseline_dir / "model.pt", cpu)
    with torch.no_grad():  # another model than vid2vid's own (here a copy of the same scale-0 model)
        for p in first_model.generator.parameters():
            p.mul_(1.1)
    dataset = ClipDataset(paths=trained, split="test", task="street", clip_length=1, with_flow=False)
    video, frames = dataset.videos[0], dataset.videos[0].num_frames
    context = model.generator.num_frames - 1

    def synthesised(policy: str) -> list[torch.Tensor]:
        return list(video_frames(model, dataset, video, frames, first_frames=policy, first_model=first_model))

    single_g = synthesised("single_g")
    labels, features = video_inputs(first_model, dataset, video, context)
    own = [o["fake"] for o in generate_stream(first_model.generator, labels, cpu, per_frame=True, features=features)]
    assert len(single_g) == frames
    for made, expected in zip(single_g[:context], own, strict=True):
        torch.testing.assert_close(made, expected)
    labels, features = video_inputs(model, dataset, video, frames)
    continued = [o["fake"] for o in generate_stream(model.generator, labels, cpu, first_frames=own, features=features)]
    torch.testing.assert_close(torch.stack(single_g[context:]), torch.stack(continued))
    hallucinated = synthesised("hallucinate")
    labels, features = video_inputs(model, dataset, video, frames)
    alone = [o["fake"] for o in generate_stream(model.generator, labels, cpu, features=features)]
    torch.testing.assert_close(torch.stack(hallucinated), torch.stack(alone))
    assert not torch.allclose(hallucinated[0], single_g[0])
    real = synthesised("real")
    for t in range(context):
        torch.testing.assert_close(real[t], dataset.load_clip(video, t, 1)["image"][0])


def test_single_g_without_the_per_frame_model_names_the_stage_to_run(trained: ProjectPaths, tmp_path: Path) -> None:
    paths = ProjectPaths.at(tmp_path / "project")
    shutil.copytree(trained.root, paths.root, ignore=shutil.ignore_patterns("results", "checkpoints", "baseline"))
    with pytest.raises(FileNotFoundError, match=r"models/baseline/model.pt: .*dvc repro train_baseline.*hallucinate"):
        generate.run(config(tracking={"enabled": False}), paths)
    assert not paths.results.exists() or not any(paths.results.iterdir())  # nothing half-written
    metrics = generate.run(config(tracking={"enabled": False}, generate={"first_frames": "hallucinate"}), paths)
    assert metrics["videos"] == 1
