from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from v2v.generation.synthesis import generate_stream, load_model
from v2v.io.checkpoint import save_checkpoint
from v2v.models.presets import build_generator, resolve_preset


def tiny_generator() -> torch.nn.Module:
    return build_generator(
        resolve_preset("tiny", label_classes=3, instance_boundary=False, foreground_ids=()), num_scales=1
    ).eval()


def test_stream_matches_clip_generation_and_counts_frames() -> None:
    generator = tiny_generator()
    labels = torch.rand(7, 3, 16, 32)
    streamed = torch.stack([out["fake"] for out in generate_stream(generator, labels, torch.device("cpu"))])
    with torch.no_grad():
        whole = generator(labels[None])["fake"][0]
    torch.testing.assert_close(streamed, whole)  # the rolling window is the clip generator's policy


def test_continuation_from_real_frames() -> None:
    generator = tiny_generator()
    labels = torch.rand(6, 3, 16, 32)
    real = [torch.rand(3, 16, 32) * 2 - 1 for _ in range(2)]
    outs = list(generate_stream(generator, labels, torch.device("cpu"), first_frames=real))
    assert len(outs) == 4
    with torch.no_grad():
        whole = generator(labels[None], prev_fakes=torch.stack(real)[None])["fake"][0]
    torch.testing.assert_close(torch.stack([o["fake"] for o in outs]), whole)


def test_stream_with_features_matches_clip_generation() -> None:
    generator = build_generator(
        resolve_preset("tiny", label_classes=3, instance_boundary=False, foreground_ids=(), feature_channels=2),
        num_scales=1,
    ).eval()
    labels, features = torch.rand(5, 3, 16, 32), torch.rand(5, 2, 16, 32)
    outs = list(generate_stream(generator, labels, torch.device("cpu"), features=features))
    with torch.no_grad():
        whole = generator(labels[None], features=features[None])["fake"][0]
    torch.testing.assert_close(torch.stack([o["fake"] for o in outs]), whole)
    other = list(generate_stream(generator, labels, torch.device("cpu"), features=features.flip(0)))
    assert not torch.allclose(other[-1]["fake"], outs[-1]["fake"])  # the features are used
    with pytest.raises(ValueError, match="feature channels"):
        next(generate_stream(generator, labels, torch.device("cpu")))


@pytest.mark.parametrize("per_frame", [False, True])
def test_amp_runs_the_generator_in_bfloat16_on_cpu_and_yields_float32(per_frame: bool) -> None:
    generator = tiny_generator()
    labels = torch.rand(4, 3, 16, 32)
    cpu = torch.device("cpu")
    full = [o["fake"] for o in generate_stream(generator, labels, cpu, per_frame=per_frame)]
    half = [o["fake"] for o in generate_stream(generator, labels, cpu, per_frame=per_frame, amp=True)]
    assert all(h.dtype == torch.float32 for h in half)
    difference = max((h - f).abs().max().item() for h, f in zip(half, full, strict=True))
    assert 0 < difference < 0.1  # bfloat16 convolutions: different, close


def test_generation_normalises_each_frame_with_its_own_statistics(tmp_path: Path) -> None:
    """As in training (one frame per batch) and in the reference, which never switches G to eval mode."""
    preset = resolve_preset("tiny", label_classes=3, instance_boundary=False, foreground_ids=())
    generator = build_generator(preset, num_scales=1)
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:  # running statistics unlike any frame's: eval mode would normalise with these
        norm.running_mean.fill_(5.0)
        norm.running_var.fill_(9.0)
    save_checkpoint(
        tmp_path / "model.pt", config={"model": asdict(preset), "scale": 0}, modules={"generator": generator}
    )
    cpu = torch.device("cpu")
    frame, running = load_model(tmp_path / "model.pt", cpu), load_model(tmp_path / "model.pt", cpu, "running")
    labels = torch.rand(1, 3, 3, 16, 32)
    with torch.no_grad():
        expected = generator.train()(labels)["fake"]  # training: each frame's own statistics
        streamed = torch.stack([o["fake"] for o in generate_stream(frame.generator, labels[0], cpu)])[None]
        other = running.generator(labels)["fake"]
    torch.testing.assert_close(streamed, expected)
    assert not torch.allclose(other, expected, atol=1e-2)
    stored = [m.running_mean for m in frame.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(mean == 5.0) for mean in stored)  # generation leaves the stored statistics alone
    with pytest.raises(ValueError, match="generate.batch_norm"):
        load_model(tmp_path / "model.pt", cpu, "batch")


def test_auto_first_frames_are_the_tasks() -> None:
    from v2v.generation.synthesis import resolve_first_frames

    assert resolve_first_frames("auto", "street") == "single_g"  # the reference's --use_single_G recipes
    assert resolve_first_frames("auto", "face") == "single_g"
    assert resolve_first_frames("auto", "pose") == "hallucinate"  # --no_first_img
    assert resolve_first_frames("real", "pose") == "real"
    with pytest.raises(ValueError, match="generate.first_frames: unknown policy 'baseline'"):
        resolve_first_frames("baseline", "street")
