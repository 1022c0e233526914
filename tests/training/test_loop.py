"""The training loop: resume is exact, the model learns, bad inputs fail clearly."""

import logging
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from v2v.io.checkpoint import CheckpointError
from v2v.paths import ProjectPaths
from v2v.training.loop import MODEL_FILE, build_networks, train_scale
from v2v.training.resume import latest_checkpoint

NETWORKS = ("generator", "image_discriminator", "video_discriminator")


def weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(path, weights_only=True)["modules"]


class Interrupt(Exception):
    pass


def test_resume_gives_the_same_weights(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """With every option that keeps state: E, the moving averages, gradients through previous frames."""
    cfg = train_config(
        model={"feature_channels": 3},
        train={"checkpoint_every": 1, "ema_decay": 0.5, "n_frames_backprop": 2, "feature_clusters": 3},
    )
    straight = train_scale(
        cfg, 0, clip_dataset(street_project, cfg), tmp_path / "a", tmp_path / "work_a", progress=False
    )
    assert straight["steps"] == 4

    def stop_after_two(metrics: dict, step: int) -> None:
        if step == 3:
            raise Interrupt  # after step 2's checkpoint, before step 3's

    with pytest.raises(Interrupt):
        train_scale(
            cfg,
            0,
            clip_dataset(street_project, cfg),
            tmp_path / "b",
            tmp_path / "work_b",
            log_metrics=stop_after_two,
            progress=False,
        )
    assert latest_checkpoint(tmp_path / "work_b").name == "step_00000002.pt"
    resumed = train_scale(
        cfg, 0, clip_dataset(street_project, cfg), tmp_path / "b", tmp_path / "work_b", progress=False
    )
    assert resumed["steps"] == 4
    a, b = weights(tmp_path / "a" / MODEL_FILE), weights(tmp_path / "b" / MODEL_FILE)
    assert set(a) == set(b) == {*NETWORKS, "encoder", "generator_ema", "encoder_ema"}
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs after resume"
    assert (tmp_path / "a" / MODEL_FILE).read_bytes() == (tmp_path / "b" / MODEL_FILE).read_bytes()  # DVC: no rerun
    # the averages are neither the trained weights nor the initial ones
    key = "scales.0.image_out.0.weight"
    initial = build_networks(cfg, 0, None)[0].generator.state_dict()[key]
    assert not torch.equal(a["generator_ema"][key], a["generator"][key])
    assert not torch.equal(a["generator_ema"][key], initial)
    stats = [k for k in a["generator"] if k.endswith("running_mean")]
    assert stats and all(not torch.equal(a["generator_ema"][k], a["generator"][k]) for k in stats)  # re-estimated
    bank_a, bank_b = (torch.load(p / MODEL_FILE, weights_only=True)["extra"] for p in (tmp_path / "a", tmp_path / "b"))
    assert bank_a["generator_weights"] == "ema" and bank_a["feature_clusters"] == 3
    assert bank_a["feature_bank"].keys() == bank_b["feature_bank"].keys() and len(bank_a["feature_bank"]) > 2
    for cls, centres in bank_a["feature_bank"].items():
        assert centres.shape[1] == 3 and 1 <= centres.shape[0] <= 3
        assert torch.equal(centres, bank_b["feature_bank"][cls])


def test_the_model_file_is_the_same_bytes_whatever_state_the_process_was_in(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """Two processes (two clones, two machines) start with other Python and NumPy random states; the model file
    stores the states it saves for resuming, so training seeds them too (else DVC sees a changed model)."""
    cfg = train_config()
    files = []
    for name, seed in (("a", 1), ("b", 2)):
        random.seed(seed)
        np.random.seed(seed)
        train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / name, tmp_path / f"w{name}", progress=False)
        files.append((tmp_path / name / MODEL_FILE).read_bytes())
    assert files[0] == files[1]


def test_a_finished_run_is_resumed_only_from_the_same_inputs(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """DVC re-runs a training stage because an input changed: that must train again, not hand back the old model."""
    cfg = train_config()
    trained: list[int] = []

    def run(inputs: str) -> dict:
        return train_scale(
            cfg,
            0,
            clip_dataset(street_project, cfg),
            tmp_path / "out",
            tmp_path / "work",
            inputs=inputs,
            log_metrics=lambda metrics, step: trained.append(step),
            progress=False,
        )

    first = run("data-1")
    assert trained and trained[0] == 1
    trained.clear()
    again = run("data-1")  # same inputs, e.g. `dvc repro -f`: the finished run is resumed
    assert trained == []
    assert again["steps"] == first["steps"]
    assert again["final"] == first["final"] and again["final"]  # its final losses, not an empty summary
    other = run("data-2")
    assert trained and trained[0] == 1  # trained from the start
    assert other["steps"] == first["steps"]


def test_a_checkpoint_of_other_settings_is_an_error_naming_them(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    cfg = train_config(train_scale0={"epochs": 1, "samples_per_video": 1})
    train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "out", tmp_path / "work", progress=False)
    other = train_config(
        model={"feature_channels": 3},
        train={"ema_decay": 0.9, "n_frames_backprop": 2},
        train_scale0={"epochs": 1, "samples_per_video": 1},
    )
    with pytest.raises(CheckpointError, match="step_00000001.pt: written by a different configuration") as info:
        train_scale(other, 0, clip_dataset(street_project, other), tmp_path / "out", tmp_path / "work", progress=False)
    for key in ("model.feature_channels", "train.ema_decay", "train.n_frames_backprop"):
        assert key in str(info.value)


def test_a_damaged_checkpoint_is_named_and_dropped_never_silently(
    street_project: ProjectPaths,
    train_config: Callable,
    clip_dataset: Callable,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = train_config()
    work = tmp_path / "work"
    work.mkdir()
    (work / "step_00000009.pt").write_bytes(b"not a checkpoint")  # the only one: nothing intact to resume
    with caplog.at_level(logging.WARNING):
        summary = train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "out", work, progress=False)
    assert "step_00000009.pt: cannot read this checkpoint" in caplog.text and "deleting it" in caplog.text
    assert summary["steps"] == 4 and not (work / "step_00000009.pt").exists()  # trained from the start


def test_reconstruction_error_halves(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """Overfit one short clip: the L1 of frames generated from its labels alone falls by at least half."""
    from v2v.stages.train import run_scale  # noqa: F401  (the stage wiring imports)

    cfg = train_config(train={"lr": 0.001}, train_scale0={"epochs": 80, "samples_per_video": 1})
    dataset = clip_dataset(street_project, cfg)
    clip = dataset.load_clip(dataset.videos[0], 0, 4)

    def error(model_file: Path | None) -> float:
        nets, _ = build_networks(cfg, 0, None)
        if model_file is not None:
            nets.generator.load_state_dict(weights(model_file)["generator"])
        nets.generator.eval()
        with torch.no_grad():  # from the labels alone, as generation does
            out = nets.generator(clip["label"][None])
        return float((out["fake"] - clip["image"][None]).abs().mean())

    before = error(None)
    train_scale(cfg, 0, dataset, tmp_path / "out", tmp_path / "work", progress=False)
    after = error(tmp_path / "out" / MODEL_FILE)
    print(f"reconstruction L1 before {before:.3f}, after {after:.3f}")
    assert after < 0.5 * before


def test_missing_or_mismatched_stage_outputs_name_the_file(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    import shutil

    from v2v.io.maps import read_label, write_label

    copy = ProjectPaths.at(tmp_path / "copy")
    shutil.copytree(street_project.root, copy.root)
    cfg = train_config()
    dataset = clip_dataset(copy, cfg)
    video = dataset.videos[0].video_id
    label = copy.segment_maps / video / "label" / "000001.png"
    write_label(label, read_label(label)[:, :-8])  # a map of the wrong size
    with pytest.raises(ValueError, match=r"000001.png: size 56x32 does not match the frames \(64x32\)"):
        dataset.load_clip(dataset.videos[0], 0, 3)
    label.unlink()
    with pytest.raises(FileNotFoundError, match="000001.png"):
        dataset.load_clip(dataset.videos[0], 0, 3)


def test_previous_scale_from_other_model_settings_is_an_error(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    cfg = train_config(train_scale0={"epochs": 1, "samples_per_video": 1})
    train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "s0", tmp_path / "work", progress=False)
    other = train_config(model={"ngf": 32}, train={"num_scales": 2})
    with pytest.raises(ValueError, match="s0/model.pt: the previous scale was trained with other model settings"):
        build_networks(other, 1, tmp_path / "s0" / MODEL_FILE)
    grown, fresh = build_networks(train_config(train={"num_scales": 2}), 1, tmp_path / "s0" / MODEL_FILE)
    assert grown.generator.num_scales == 2
    assert fresh and all(name.startswith("scales.1.") for name in fresh)  # only the new enhancer starts fresh


def test_scale_growth_carries_the_encoder_and_the_averages(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """Scale 1 starts from scale 0's E and moving averages; the new enhancer's average starts at its init."""
    options = {"model": {"feature_channels": 3}, "train": {"ema_decay": 0.5, "num_scales": 2}}
    cfg = train_config(**options, train_scale0={"epochs": 1, "samples_per_video": 1})
    train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "s0", tmp_path / "work", progress=False)
    previous = weights(tmp_path / "s0" / MODEL_FILE)
    grown, fresh = build_networks(cfg, 1, tmp_path / "s0" / MODEL_FILE)
    assert grown.generator_ema is not None and grown.encoder is not None and grown.encoder_ema is not None
    ema = grown.generator_ema.state_dict()
    raw = grown.generator.state_dict()
    for key, value in previous["generator_ema"].items():
        assert torch.equal(ema[key], value), key  # the coarse scale's average continues
    assert not all(torch.equal(previous["generator_ema"][k], previous["generator"][k]) for k in previous["generator"])
    for key in fresh:
        assert torch.equal(ema[key], raw[key]), key  # the new enhancer: average = its fresh initialisation
    for name, module in (("encoder", grown.encoder), ("encoder_ema", grown.encoder_ema)):
        assert all(torch.equal(v, previous[name][k]) for k, v in module.state_dict().items()), name
    # a raw scale 0 (no averages) grows into averages that start at the trained weights
    plain = train_config(train_scale0={"epochs": 1, "samples_per_video": 1})
    train_scale(plain, 0, clip_dataset(street_project, plain), tmp_path / "p0", tmp_path / "work_p", progress=False)
    grown, _ = build_networks(train_config(train={"ema_decay": 0.5, "num_scales": 2}), 1, tmp_path / "p0" / MODEL_FILE)
    assert grown.generator_ema is not None
    assert all(
        torch.equal(a, b)
        for a, b in zip(grown.generator_ema.state_dict().values(), grown.generator.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("deterministic", [True, False])
def test_training_runs_deterministic_algorithms_as_configured(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path, deterministic: bool
) -> None:
    cfg = train_config(train={"deterministic": deterministic})
    seen: list[bool] = []
    train_scale(
        cfg,
        0,
        clip_dataset(street_project, cfg),
        tmp_path / "out",
        tmp_path / "work",
        log_metrics=lambda metrics, step: seen.append(torch.are_deterministic_algorithms_enabled()),
        progress=False,
    )
    assert seen and set(seen) == {deterministic}
    assert not torch.are_deterministic_algorithms_enabled()  # restored for whatever runs next


def test_videos_shorter_than_the_generators_context_are_an_error_up_front(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    from dataclasses import replace

    cfg = train_config()
    dataset = clip_dataset(street_project, cfg)
    short = replace(dataset.videos[0], num_frames=2)
    dataset.videos = [short, *dataset.videos[1:]]
    with pytest.raises(ValueError, match=rf"video {short.video_id} has 2 frames; .* at least 3: .*extract.fps"):
        train_scale(cfg, 0, dataset, tmp_path / "out", tmp_path / "work", inputs="data", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written
    assert not (tmp_path / "work").exists()  # checked before the checkpoints are touched


def test_the_reference_multi_scale_recipe(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """Scale 1: the discriminators gain a spatial scale (the coarser ones carried over), the learning rate
    halves, and D_V keeps its own optimiser at a fixed rate while the others decay."""
    cfg = train_config(train_scale0={"epochs": 1, "samples_per_video": 1})
    train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "s0", tmp_path / "work", progress=False)
    previous = weights(tmp_path / "s0" / MODEL_FILE)
    scale1 = {"epochs": 3, "decay_epochs": 1, "samples_per_video": 1, "start_frames": 4, "max_frames": 4}
    grown_cfg = train_config(train={"num_scales": 2, "checkpoint_every": 1}, train_scale1=scale1)
    grown, _ = build_networks(grown_cfg, 1, tmp_path / "s0" / MODEL_FILE)
    assert len(grown.image_d.net.nets) == 3 and all(len(s.nets) == 3 for s in grown.video_d.scales)
    grown_state = grown.image_d.state_dict()
    for key, value in previous["image_discriminator"].items():
        # by resolution (the reference): the PatchGAN that judged the full scale-0 frame judges the half-size
        # scale-1 frame, one place coarser; the fresh one takes the new finest resolution
        moved = key.replace("nets.0.", "nets.1.") if "nets.0." in key else key.replace("nets.1.", "nets.2.")
        assert torch.equal(grown_state[moved], value), key
    summary = train_scale(
        grown_cfg,
        1,
        clip_dataset(street_project, grown_cfg, 1),
        tmp_path / "s1",
        tmp_path / "work1",
        previous=tmp_path / "s0" / MODEL_FILE,
        progress=False,
    )
    first = summary["history"][0]
    assert first["lr/generator"] == pytest.approx(grown_cfg.train.lr / 2)  # lr * lr_per_scale^1, not decayed yet
    checkpoint = torch.load(latest_checkpoint(tmp_path / "work1"), weights_only=True)
    lrs = {name: state["param_groups"][0]["lr"] for name, state in checkpoint["optimizers"].items()}
    assert lrs["d"] < grown_cfg.train.lr / 2  # decayed over the last epochs
    assert lrs["d_video"] == pytest.approx(grown_cfg.train.lr / 2)  # never decayed


def test_a_non_finite_loss_names_the_step_the_term_and_the_clip(
    street_project: ProjectPaths,
    train_config: Callable,
    clip_dataset: Callable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from v2v.losses.flow import WarpConsistencyLoss

    monkeypatch.setattr(WarpConsistencyLoss, "__call__", lambda self, *a: {"warp": torch.tensor(float("nan"))})
    cfg = train_config(train={"from_labels_prob": 0.0})
    with pytest.raises(
        FloatingPointError, match=r"scale 0 step 1: non-finite loss term\(s\) \{'warp': nan\} on street_0"
    ):
        train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "o", tmp_path / "work", progress=False)


@pytest.mark.parametrize(
    ("model", "absent_module", "absent_terms"),
    [
        ({"flow": False}, None, {"loss/flow", "loss/flow_warp"}),
        ({"foreground": False}, None, set()),
        ({"video_discriminator": False}, "video_discriminator", {"loss/video_g_gan", "loss/video_d_real"}),
    ],
)
def test_the_papers_ablations_are_params(
    street_project: ProjectPaths,
    train_config: Callable,
    clip_dataset: Callable,
    tmp_path: Path,
    model: dict,
    absent_module: str | None,
    absent_terms: set[str],
) -> None:
    """No flow warping, no foreground branch, no D_V: each trains, is recorded, and generates."""
    from v2v.generation.synthesis import load_model

    cfg = train_config(model=model, train_scale0={"epochs": 1, "samples_per_video": 1})
    summary = train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "s0", tmp_path / "work", progress=False)
    payload = torch.load(tmp_path / "s0" / MODEL_FILE, weights_only=True)
    for key, value in model.items():
        assert payload["config"]["model"][key] == value  # recorded with the weights
    assert set(payload["modules"]) == set(NETWORKS) - {absent_module}
    assert not absent_terms & set(summary["final"]) and "loss/g_gan" in summary["final"]
    generator = load_model(tmp_path / "s0" / MODEL_FILE, torch.device("cpu")).generator
    names = {name for name, _ in generator.named_parameters()}
    assert any("flow_out" in n for n in names) == model.get("flow", True)
    assert any("foreground" in n for n in names) == model.get("foreground", True)


def test_the_per_frame_baseline_has_no_video_discriminator(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    cfg = train_config(train_scale0={"epochs": 1, "samples_per_video": 1})
    train_scale(
        cfg, 0, clip_dataset(street_project, cfg), tmp_path / "b", tmp_path / "work", progress=False, per_frame=True
    )
    checkpoint = torch.load(tmp_path / "b" / MODEL_FILE, weights_only=True)
    assert set(checkpoint["modules"]) == {"generator", "image_discriminator"}


def test_rollout_windows_cover_the_clip_in_chunks() -> None:
    from v2v.training.loop import rollout_windows

    assert rollout_windows(26, 2, 0) == [(0, 26)]  # chunk_frames 0: the whole clip in one step
    assert rollout_windows(6, 2, 4) == [(0, 6)] and rollout_windows(9, 2, 4) == [(0, 9)]  # under two chunks: one step
    # vid2vid: each window generates 4 frames from the 2 before it (the previous window's last outputs)
    assert rollout_windows(14, 2, 4) == [(0, 6), (4, 10), (8, 14)]
    # a tail of fewer than 4 frames joins the last chunk: every step generates enough frames for D_V
    assert rollout_windows(12, 2, 4) == [(0, 6), (4, 12)]
    # the baseline steps through the same target frames, without the overlap
    assert rollout_windows(12, 2, 4, per_frame=True) == [(0, 6), (6, 12)]
    for frames in (10, 12, 24, 26, 40):
        windows = rollout_windows(frames, 2, 4)
        generated = [t for start, stop in windows for t in range(start + 2, stop)]
        assert generated == list(range(2, frames))  # every frame after the real context, once
        assert all(4 <= stop - start - 2 < 8 for start, stop in windows)


def test_a_rollout_continues_from_the_generators_own_outputs(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path, monkeypatch
) -> None:
    """The reference's training: 2 real frames, then chunk after chunk on the model's own detached outputs;
    D_V judges every chunk."""
    import v2v.training.loop as loop

    calls: list[tuple] = []
    real_step = loop.train_step

    def recording(nets, opts, objective, clip, *args, **kwargs):
        result = real_step(nets, opts, objective, clip, *args, **kwargs)
        given = clip.given_frames()
        calls.append((clip.image.detach(), None if given is None else given.detach(), result))
        return result

    monkeypatch.setattr(loop, "train_step", recording)
    frames = {"start_frames": 8, "max_frames": 8, "samples_per_video": 1, "epochs": 1}
    cfg = train_config(train={"chunk_frames": 3}, train_scale0=frames)
    summary = train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path / "a", tmp_path / "w", progress=False)
    assert summary["steps"] == len(calls) == 2  # one 8-frame clip: rollout_windows(8, 2, 3) = (0, 5), (3, 8)
    (image, given, result), (image2, given2, result2) = calls
    torch.testing.assert_close(given, image[:, :2])  # real context frames
    torch.testing.assert_close(given2, result.out["fake"][:, -2:].detach())  # the chunk before's last two outputs
    torch.testing.assert_close(image2[:, :2], image[:, 3:5])  # where the second chunk starts
    assert not torch.allclose(given2, image2[:, :2])  # not the real frames
    for each in (result, result2):
        assert "video_g_gan" in each.g_terms and "video_d_real" in each.d_terms  # D_V judges every chunk


def test_the_random_perceptual_network_is_calibrated_on_the_training_frames(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """train.vgg_weights random (offline): the VGG's slices are scaled on real frames before the first step, and
    the model file records it."""
    cfg = train_config(
        train={"loss_vgg": 10.0, "vgg_weights": "random"},
        train_scale0={"epochs": 1, "samples_per_video": 1},
    )
    summary = train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path, tmp_path / "work", progress=False)
    assert summary["vgg_weights"].startswith("random (seed 0), slices scaled to unit feature magnitude")
    assert "loss/vgg" in summary["history"][0] and "loss/raw_vgg" in summary["history"][0]
    stored = torch.load(tmp_path / MODEL_FILE, weights_only=True)["extra"]["summary"]["vgg_weights"]
    assert stored == summary["vgg_weights"]


def test_the_last_step_is_always_logged(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    """`v2v summary` reads the final losses, `v2v compare` MLflow's last logged value: both are the last step's."""
    cfg = train_config(train={"log_every": 1000})
    logged: list[tuple[int, dict]] = []
    summary = train_scale(
        cfg,
        0,
        clip_dataset(street_project, cfg),
        tmp_path / "out",
        tmp_path / "work",
        log_metrics=lambda metrics, step: logged.append((step, dict(metrics))),
        progress=False,
    )
    assert summary["steps"] > 2 and [step for step, _ in logged] == [1, summary["steps"]]
    assert logged[-1][1] == summary["final"] and summary["history"][-1] == {
        "step": summary["steps"],
        **summary["final"],
    }
