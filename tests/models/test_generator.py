"""The sequential generator on the tiny preset: shapes, composition, first frame, gradients, seeding, scale growth."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from v2v.models.generator import Vid2VidGenerator, load_coarser_scales
from v2v.models.layers import count_parameters
from v2v.models.presets import ModelPreset, build_generator, resolve_preset

H, W = 32, 48


@pytest.fixture(scope="module")
def preset() -> ModelPreset:
    return resolve_preset("tiny")


def random_labels(preset: ModelPreset, b: int, t: int, seed: int = 0) -> torch.Tensor:
    """One-hot labels (random classes in 8x8 blocks) plus a boundary channel: ``(B, T, C, H, W)``."""
    gen = torch.Generator().manual_seed(seed)
    classes = torch.randint(preset.label_classes, (b, t, H // 8, W // 8), generator=gen)
    classes = classes.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    onehot = torch.nn.functional.one_hot(classes, preset.label_classes).permute(0, 1, 4, 2, 3).float()
    boundary = torch.zeros(b, t, 1, H, W)
    return torch.cat([onehot, boundary], dim=2)


def random_frames(b: int, t: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 3, H, W, generator=gen) * 2 - 1


def force_mask(gen: Vid2VidGenerator, value: float) -> None:
    """Make every scale's occlusion mask saturate at ``value`` (1 or 0) by its output bias."""
    for net in gen.scales:
        conv = net.mask_out[0]
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.fill_(50.0 if value == 1 else -50.0)


def test_shapes_at_every_scale(preset: ModelPreset) -> None:
    gen = build_generator(preset, num_scales=3)
    assert gen.size_multiple == 2 ** (preset.n_downsample_g + 2)
    labels = random_labels(preset, 2, 3)
    out = gen.step(labels, random_frames(2, 2))
    assert out["fake_scale0"].shape == (2, 3, H // 4, W // 4)
    assert out["fake_scale1"].shape == (2, 3, H // 2, W // 2)
    for key, channels in [("fake", 3), ("hallucinated", 3), ("warped", 3), ("flow", 2), ("occlusion_mask", 1)]:
        assert out[key].shape == (2, channels, H, W), key
    assert out["foreground"].shape == (2, 3, H, W)
    assert out["foreground_mask"].shape == (2, 1, H, W)
    assert out["fake"].min() >= -1 and out["fake"].max() <= 1
    # whole clips: (B, T, C, H, W) out
    clip = gen(random_labels(preset, 1, 4))
    assert clip["fake"].shape == (1, 4, 3, H, W)
    assert clip["fake_scale0"].shape == (1, 4, 3, H // 4, W // 4)
    given = gen(random_labels(preset, 1, 4), prev_fakes=random_frames(1, 2))
    assert given["fake"].shape == (1, 2, 3, H, W)


def test_bad_inputs_name_the_problem(preset: ModelPreset) -> None:
    gen = build_generator(preset)
    with pytest.raises(ValueError, match="multiple of"):
        gen.step(torch.zeros(1, 3, preset.label_channels, 30, 48), None)
    with pytest.raises(ValueError, match="labels"):
        gen.step(torch.zeros(1, 3, preset.label_channels + 1, H, W), None)
    with pytest.raises(ValueError, match="prev_fakes"):
        gen.step(random_labels(preset, 1, 3), torch.zeros(1, 1, 3, H, W))


def test_mask_forced_to_one_gives_the_hallucinated_frame(preset: ModelPreset) -> None:
    gen = build_generator(preset, num_scales=2).eval()
    labels, prev = random_labels(preset, 2, 3), random_frames(2, 2)
    with torch.no_grad():
        first = gen.step(labels, None)  # first-frame policy: no previous frame → mask forced to 1
        torch.testing.assert_close(first["fake"], first["hallucinated"])
        assert torch.all(first["occlusion_mask"] == 1)
        force_mask(gen, 1)
        out = gen.step(labels, prev)
    torch.testing.assert_close(out["occlusion_mask"], torch.ones_like(out["occlusion_mask"]))
    torch.testing.assert_close(out["fake"], out["hallucinated"])


def test_mask_zero_and_zero_flow_copy_the_previous_frame_outside_the_foreground(preset: ModelPreset) -> None:
    gen = build_generator(preset).eval()
    force_mask(gen, 0)
    with torch.no_grad():
        gen.scales[0].flow_out.weight.zero_()
        gen.scales[0].flow_out.bias.zero_()
        labels, prev = random_labels(preset, 1, 3), random_frames(1, 2)
        out = gen.step(labels, prev)
    background = out["foreground_mask"] == 0
    assert background.any() and (~background).any()
    torch.testing.assert_close(out["flow"], torch.zeros_like(out["flow"]))
    torch.testing.assert_close(out["fake"].masked_select(background), prev[:, -1].masked_select(background))
    # the foreground classes are always hallucinated by the foreground branch
    fg = ~background
    torch.testing.assert_close(out["fake"].masked_select(fg), out["foreground"].masked_select(fg))


def test_foreground_mask_lists_classes_by_label_id(preset: ModelPreset) -> None:
    gen = build_generator(preset)
    labels = random_labels(preset, 1, 3)
    mask = gen.foreground_mask(labels[:, -1])
    expected = labels[:, -1, list(preset.foreground_ids)].sum(1, keepdim=True)
    torch.testing.assert_close(mask, expected)


def test_first_frame_policy_in_a_clip(preset: ModelPreset) -> None:
    gen = build_generator(preset).eval()
    with torch.no_grad():
        out = gen(random_labels(preset, 1, 3))
    assert torch.all(out["occlusion_mask"][:, 0] == 1)
    assert not torch.all(out["occlusion_mask"][:, 1] == 1)


def test_gradients_reach_every_generator_parameter(preset: ModelPreset) -> None:
    gen = build_generator(preset, num_scales=2)
    out = gen(random_labels(preset, 2, 4), prev_fakes=random_frames(2, 2), n_frames_backprop=4)
    loss = out["fake"].square().mean() + out["flow"].square().mean() + out["fake_scale0"].mean()
    loss.backward()
    missing = [n for n, p in gen.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


@pytest.mark.parametrize("n", [1, 2, 3])
def test_n_frames_backprop_limits_how_far_gradients_reach_back(preset: ModelPreset, n: int) -> None:
    """Frame t's loss reaches the outputs of frames t-1 .. t-(n-1) and not further; n = 1 reaches none."""
    gen = build_generator(preset)
    step = gen.step
    produced: list[torch.Tensor] = []

    def recording_step(*args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        out = step(*args, **kwargs)  # type: ignore[arg-type]
        out["fake"].retain_grad()
        produced.append(out["fake"])
        return out

    gen.step = recording_step  # type: ignore[method-assign]
    out = gen(random_labels(preset, 1, 6), prev_fakes=random_frames(1, 2), n_frames_backprop=n)
    assert len(produced) == 4
    for t in range(4):
        for frame in produced:
            frame.grad = None
        out["fake"][:, t].square().sum().backward(retain_graph=True)
        for back in range(1, t + 1):
            grad = produced[t - back].grad
            reached = grad is not None and bool(torch.any(grad != 0))
            # frames are detached before generated frames 0, n, 2n, ...: t reaches back to the last such start
            assert reached == (back <= t % n), f"n={n}: frame {t}'s loss reaching frame {t - back}: {reached}"


def test_seeded_construction_is_deterministic(preset: ModelPreset) -> None:
    a, b, c = build_generator(preset, seed=3), build_generator(preset, seed=3), build_generator(preset, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_scale0_checkpoint_loads_into_a_two_scale_model(preset: ModelPreset, tmp_path: Path) -> None:
    coarse = build_generator(preset, num_scales=1, seed=0)
    path = tmp_path / "g0.pt"
    torch.save(coarse.state_dict(), path)
    fine = build_generator(preset, num_scales=2, seed=1)
    fresh = load_coarser_scales(fine, torch.load(path, weights_only=True))
    assert fresh and all(k.startswith("scales.1.") for k in fresh)
    for key, value in coarse.state_dict().items():
        assert torch.equal(fine.state_dict()[key], value), key
    # the grown model runs, and its coarse scale reproduces the scale-0 model's frame (at half size)
    coarse.eval(), fine.eval()
    labels, prev = random_labels(preset, 1, 3), random_frames(1, 2)
    with torch.no_grad():
        out = fine.step(labels, prev)
        half = coarse.step(
            torch.nn.functional.avg_pool2d(labels.flatten(0, 1), 2).unflatten(0, (1, 3)),
            torch.nn.functional.avg_pool2d(prev.flatten(0, 1), 2).unflatten(0, (1, 2)),
        )
    torch.testing.assert_close(out["fake_scale0"], half["fake"])
    with pytest.raises(ValueError, match="does not fit"):
        other = build_generator(resolve_preset("tiny", ngf=8), num_scales=1)
        load_coarser_scales(fine, other.state_dict())


def test_feature_channels_are_concatenated_to_the_labels(preset: ModelPreset) -> None:
    gen = build_generator(resolve_preset("tiny", feature_channels=3))
    labels = random_labels(preset, 1, 3)
    out = gen.step(labels, None, features=torch.zeros(1, 3, 3, H, W))
    assert out["fake"].shape == (1, 3, H, W)
    with pytest.raises(ValueError, match="features"):
        gen.step(labels, None)


def test_reference_generator_matches_the_official_parameter_count() -> None:
    with torch.device("meta"):
        gen = build_generator(resolve_preset("reference"), num_scales=3)
    coarse = gen.scales[0]
    total = count_parameters(coarse)
    assert abs(total - 411e6) / 411e6 < 0.01, total
    assert coarse.foreground_net is not None
    fg = count_parameters(coarse.foreground_net) + count_parameters(coarse.foreground_out)
    assert abs(fg - 46e6) / 46e6 < 0.01, fg
    # local enhancers are small (ngf/2^s, one downsampling, 3 ResBlocks)
    assert count_parameters(gen.scales[1]) < 5e6 and count_parameters(gen.scales[2]) < count_parameters(gen.scales[1])


def test_without_flow_every_frame_is_hallucinated_and_no_flow_branch_is_built(preset: ModelPreset) -> None:
    """The paper's no-flow ablation (the reference's --no_flow): no W or M, fake = H's frame, reported
    as zero flow and mask 1, still conditioned on the previous frames."""
    full, no_flow = build_generator(preset, seed=0), build_generator(replace(preset, flow=False), seed=0)
    names = {name.split(".")[2] for name, _ in no_flow.named_parameters()}
    assert not {"flow_decoder", "flow_out", "mask_out"} & names
    assert count_parameters(no_flow) < count_parameters(full)
    labels, prev = random_labels(preset, 1, 4), random_frames(1, 2)
    out = no_flow(labels, prev_fakes=prev)
    assert torch.equal(out["fake"], out["hallucinated"])
    assert float(out["flow"].abs().max()) == 0.0 and float(out["occlusion_mask"].min()) == 1.0
    other = no_flow(labels, prev_fakes=-prev)  # the previous frames still condition the output
    assert not torch.allclose(out["fake"], other["fake"])


def test_without_the_foreground_option_no_foreground_branch_is_built(preset: ModelPreset) -> None:
    assert preset.foreground_ids
    gen = build_generator(replace(preset, foreground=False), seed=0)
    assert gen.foreground_ids == ()
    assert not any("foreground" in name for name, _ in gen.named_parameters())
    assert "foreground" not in gen(random_labels(preset, 1, 3))


def test_a_new_scale_starts_from_the_coarser_flow_and_mask() -> None:
    """flow_from_coarse: a fresh enhancer warps with the coarser scale's flow (upsampled, doubled) and mask."""
    from v2v.models.presets import build_generator, resolve_preset

    preset = resolve_preset("tiny", label_classes=3, instance_boundary=False, foreground_ids=(), flow_from_coarse=True)
    coarse = build_generator(preset, num_scales=1, seed=0)
    with torch.no_grad():  # a coarse scale with a non-trivial flow and mask
        for p in coarse.parameters():
            p.add_(0.05 * torch.randn_like(p))
    grown = build_generator(preset, num_scales=2, seed=1)
    grown.load_state_dict(coarse.state_dict(), strict=False)
    labels, prev = torch.rand(1, 3, 3, 32, 64), torch.rand(1, 2, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        fine = grown.step(labels, prev)
        small = coarse.step(
            torch.nn.functional.avg_pool2d(labels.flatten(0, 1), 2).unflatten(0, (1, 3)),
            torch.nn.functional.avg_pool2d(prev.flatten(0, 1), 2).unflatten(0, (1, 2)),
        )
    up = torch.nn.functional.interpolate(small["flow"], scale_factor=2, mode="bilinear", align_corners=False)
    assert small["flow"].abs().mean() > 0.05
    torch.testing.assert_close(fine["flow"], 2 * up)
    mask = torch.nn.functional.interpolate(
        small["occlusion_mask"], scale_factor=2, mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(fine["occlusion_mask"], mask.clamp(1e-4, 1 - 1e-4), atol=1e-5, rtol=1e-4)
    reference = build_generator(
        resolve_preset("tiny", label_classes=3, instance_boundary=False, foreground_ids=()), num_scales=2, seed=1
    )
    reference.load_state_dict(coarse.state_dict(), strict=False)
    with torch.no_grad():
        afresh = reference.step(labels, prev)
    assert not torch.allclose(afresh["flow"], fine["flow"], atol=1e-2)  # the reference's enhancer: its own flow


@pytest.mark.parametrize("foreground_ids", [(), (1,)])
def test_a_new_scale_starts_by_drawing_the_coarser_image(foreground_ids: tuple[int, ...]) -> None:
    """image_from_coarse: a fresh enhancer's hallucinated image (and foreground) is the coarser scale's, upsampled;
    training then moves it (the output layers are zero, not frozen). Off: the reference's fresh decoder."""
    from v2v.models.presets import build_generator, resolve_preset

    def preset(on: bool) -> ModelPreset:
        return resolve_preset(
            "tiny", label_classes=3, instance_boundary=False, foreground_ids=foreground_ids, image_from_coarse=on
        )

    coarse = build_generator(preset(True), num_scales=1, seed=0)
    with torch.no_grad():
        for p in coarse.parameters():
            p.add_(0.05 * torch.randn_like(p))
    labels = torch.rand(1, 3, 3, 32, 64)
    labels[:, :, list(foreground_ids)] = 0  # no foreground pixels: the image is the background branch's everywhere
    small_labels = torch.nn.functional.avg_pool2d(labels.flatten(0, 1), 2).unflatten(0, (1, 3))
    with torch.no_grad():
        small = coarse.step(small_labels, None)

    def up(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    for on in (True, False):
        grown = build_generator(preset(on), num_scales=2, seed=1)
        grown.load_state_dict(coarse.state_dict(), strict=False)
        with torch.no_grad():
            fine = grown.step(labels, None)
        close = torch.allclose(fine["hallucinated"], up(small["hallucinated"]).clamp(-0.999, 0.999), atol=1e-5)
        assert close == on
        if foreground_ids:
            assert torch.allclose(fine["foreground"], up(small["foreground"]).clamp(-0.999, 0.999), atol=1e-5) == on
    assert small["hallucinated"].std() > 0.01  # a non-trivial image, not a constant
    grown = build_generator(preset(True), num_scales=2, seed=1)
    grown.load_state_dict(coarse.state_dict(), strict=False)
    grown.step(labels, None)["fake"].square().mean().backward()
    head = grown.scales[1].image_out[0]
    assert head.weight.abs().sum() == 0 and head.weight.grad.abs().sum() > 0  # zero at the start, and learning
