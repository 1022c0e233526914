"""The vid2vid objective as the reference trains it: named terms and their weights, the hallucinated frame
judged, the mask term only where configured, real and fake apart in the discriminators, a golden step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from v2v.models.discriminators import ImageDiscriminator, VideoDiscriminator
from v2v.models.generator import Vid2VidGenerator
from v2v.models.presets import (
    ModelPreset,
    build_generator,
    build_image_discriminator,
    build_video_discriminator,
    resolve_preset,
)
from v2v.paths import ProjectPaths
from v2v.training.loop import train_scale
from v2v.training.objective import ClipBatch, LossWeights, Vid2VidObjective

H, W, T = 32, 48, 5
ONES = LossWeights(gan=1.0, feature_matching=1.0, vgg=1.0, flow=1.0, flow_warp=1.0, warp=1.0, mask=1.0)
# which terms each weight scales (vgg needs VGG19 weights: with "none" it is random but still a real network)
TERMS_OF = {
    "gan": ("g_gan", "raw_g_gan", "video_g_gan"),
    "feature_matching": ("g_feat", "raw_g_feat", "video_g_feat"),
    "vgg": ("vgg", "raw_vgg"),
    "flow": ("flow",),
    "flow_warp": ("flow_warp",),
    "warp": ("warp",),
    "mask": ("mask",),
}


@pytest.fixture(scope="module")
def preset() -> ModelPreset:
    return resolve_preset("tiny", foreground_ids=())  # no foreground branch: H alone makes the hallucinated frame


@dataclasses.dataclass
class Nets:
    generator: Vid2VidGenerator
    image_d: ImageDiscriminator
    video_d: VideoDiscriminator


@pytest.fixture
def nets(preset: ModelPreset) -> Nets:
    return Nets(
        build_generator(preset, seed=0),
        build_image_discriminator(preset, seed=1),
        build_video_discriminator(preset, seed=2),
    )


def clip(preset: ModelPreset, context: int, seed: int = 0) -> ClipBatch:
    gen = torch.Generator().manual_seed(seed)
    classes = torch.randint(preset.label_classes, (1, T, H // 8, W // 8), generator=gen)
    classes = classes.repeat_interleave(8, 2).repeat_interleave(8, 3)
    onehot = torch.nn.functional.one_hot(classes, preset.label_classes).permute(0, 1, 4, 2, 3).float()
    label = torch.cat([onehot, torch.zeros(1, T, 1, H, W)], dim=2)
    image = torch.rand(1, T, 3, H, W, generator=gen) * 2 - 1
    flow = torch.randn(1, T, 2, H, W, generator=gen)
    valid = (torch.rand(1, T, 1, H, W, generator=gen) > 0.3).float()
    return ClipBatch(label, image, flow, valid, context)


def generate(nets: Nets, batch: ClipBatch) -> dict[str, torch.Tensor]:
    prev = batch.image[:, : batch.context] if batch.context else None
    return nets.generator(batch.label, prev_fakes=prev)


def objective(weights: LossWeights = ONES, **kwargs: object) -> Vid2VidObjective:
    return Vid2VidObjective(weights=weights, vgg_weights="none", **kwargs)  # type: ignore[arg-type]


def test_every_term_is_named_and_scaled_by_its_weight(nets: Nets, preset: ModelPreset) -> None:
    batch = clip(preset, context=0)
    out = generate(nets, batch)
    full = objective().generator(batch, out, nets.image_d, nets.video_d)
    assert set(full) == {t for terms in TERMS_OF.values() for t in terms}
    for field, names in TERMS_OF.items():
        for factor in (0.0, 3.0):
            weights = dataclasses.replace(ONES, **{field: factor})
            terms = objective(weights).generator(batch, out, nets.image_d, nets.video_d)
            for name, value in full.items():
                if name in names:
                    # weight 0 removes exactly this term: it is absent or zero, so its gradient is gone
                    assert float(terms.get(name, torch.zeros(())).detach()) == pytest.approx(
                        factor * float(value.detach()), rel=1e-5
                    )
                else:
                    assert float(terms[name].detach()) == pytest.approx(float(value.detach()), rel=1e-5), (field, name)


def test_the_hallucinated_frame_is_trained_where_the_model_warps(nets: Nets, preset: ModelPreset) -> None:
    """With the mask at 0 the final frame is the warped previous frame: only the raw terms reach H."""
    for net in nets.generator.scales:
        with torch.no_grad():
            net.mask_out[0].weight.zero_()
            net.mask_out[0].bias.fill_(-50.0)
    batch = clip(preset, context=2)
    image_out = nets.generator.scales[0].image_out[0].weight
    reach = {}
    for judge in (True, False):
        nets.generator.zero_grad(set_to_none=True)
        out = generate(nets, batch)
        assert float(out["occlusion_mask"].detach().max()) < 1e-12
        terms = objective(dataclasses.replace(ONES, vgg=0.0), judge_hallucinated=judge).generator(
            batch, out, nets.image_d, nets.video_d
        )
        sum(terms.values()).backward()
        reach[judge] = float(image_out.grad.abs().sum()) if image_out.grad is not None else 0.0
    # without the raw terms H's output layer gets only what leaks through the saturated mask (~1e-20)
    assert reach[True] > 1e-3 and reach[False] < 1e-12 * reach[True]


def test_the_image_discriminator_sees_real_final_and_hallucinated_frames_apart(nets: Nets, preset: ModelPreset) -> None:
    batch = clip(preset, context=2)
    out = {k: v.detach() for k, v in generate(nets, batch).items()}
    seen: list[torch.Tensor] = []
    hook = nets.image_d.register_forward_hook(lambda module, args, result: seen.append(args[1]))
    terms = objective().discriminator(batch, out, nets.image_d, nets.video_d)
    hook.remove()
    assert {"d_real", "d_fake", "raw_d_real", "raw_d_fake", "video_d_real", "video_d_fake"} <= set(terms)
    real = batch.image[:, batch.context :]
    # one call per kind of frame, never two kinds in one batch
    assert len(seen) == 3
    assert (
        torch.equal(seen[0], real) and torch.equal(seen[1], out["fake"]) and torch.equal(seen[2], out["hallucinated"])
    )
    # so D's batch statistics are those of the real frames alone: d_real is what D says of them by themselves
    alone = nets.image_d(batch.label[:, batch.context :], real)
    expected = sum(torch.mean((scale[-1] - 1) ** 2) for scale in alone)
    assert float(terms["d_real"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_the_video_discriminator_judges_real_and_fake_in_separate_calls(nets: Nets, preset: ModelPreset) -> None:
    batch = clip(preset, context=0)
    out = {k: v.detach() for k, v in generate(nets, batch).items()}
    sizes: list[int] = []
    hook = nets.video_d.register_forward_hook(lambda module, args, result: sizes.append(args[0].shape[0]))
    objective().discriminator(batch, out, nets.image_d, nets.video_d)
    hook.remove()
    windows = T - (preset.num_frames_d - 1)  # stride 1 windows of a 5-frame clip
    assert sizes == [windows, windows]


def test_the_mask_term_only_on_label_only_steps_and_only_when_weighted(nets: Nets, preset: ModelPreset) -> None:
    for context, weight, present in ((0, 1.0, True), (0, 0.0, False), (2, 1.0, False)):
        batch = clip(preset, context=context)
        weights = dataclasses.replace(ONES, vgg=0.0, mask=weight)
        terms = objective(weights).generator(batch, generate(nets, batch), nets.image_d, nets.video_d)
        assert ("mask" in terms) == present, (context, weight)


def test_the_flow_term_is_divided_per_scale(nets: Nets, preset: ModelPreset) -> None:
    batch = clip(preset, context=2)
    out = generate(nets, batch)
    weights = dataclasses.replace(ONES, vgg=0.0)
    at = {s: objective(weights, scale=s).generator(batch, out, nets.image_d, nets.video_d) for s in (0, 2)}
    assert float(at[2]["flow"]) == pytest.approx(float(at[0]["flow"]) / 4, rel=1e-6)
    assert float(at[2]["flow_warp"]) == pytest.approx(float(at[0]["flow_warp"]), rel=1e-6)


def test_the_per_frame_objective_has_image_terms_only(nets: Nets, preset: ModelPreset) -> None:
    batch = clip(preset, context=0)
    out = nets.generator(batch.label, per_frame=True)
    terms = objective(dataclasses.replace(ONES, vgg=0.0), temporal=False).generator(
        batch, out, nets.image_d, nets.video_d
    )
    assert set(terms) == {"g_gan", "g_feat", "raw_g_gan", "raw_g_feat"}


# One seeded step of the tiny street task: the losses, to 4 decimals. A change here is a change of what
# the model learns: update these numbers only on purpose, and say why in the commit.
GOLDEN_FIRST_STEP = {
    "loss/d_fake": 0.1564,
    "loss/d_real": 2.148,
    "loss/d_total": 7.0123,
    "loss/flow": 54.6229,
    "loss/flow_warp": 3.1482,
    "loss/g_feat": 7.7565,
    "loss/g_gan": 2.1311,
    "loss/g_total": 98.1825,
    "loss/raw_d_fake": 0.1625,
    "loss/raw_d_real": 2.148,
    "loss/raw_g_feat": 8.9999,
    "loss/raw_g_gan": 2.1314,
    "loss/video_d_fake": 0.1151,
    "loss/video_d_real": 2.2823,
    "loss/video_g_feat": 15.3403,
    "loss/video_g_gan": 2.202,
    "loss/warp": 1.8503,
}


def test_golden_first_step(
    street_project: ProjectPaths, train_config: Callable, clip_dataset: Callable, tmp_path: Path
) -> None:
    cfg = train_config(
        train={"from_labels_prob": 0.0},
        train_scale0={"epochs": 1, "samples_per_video": 1, "start_frames": 5, "max_frames": 5},
    )
    summary = train_scale(cfg, 0, clip_dataset(street_project, cfg), tmp_path, tmp_path / "work", progress=False)
    first = summary["history"][0]
    assert first["step"] == 1
    assert {k for k in first if k.startswith("loss/")} == set(GOLDEN_FIRST_STEP)
    for key, value in GOLDEN_FIRST_STEP.items():
        assert first[key] == pytest.approx(value, abs=1.5e-4), key


def test_without_flow_only_the_ground_truth_warp_term_stays(preset: ModelPreset) -> None:
    """model.flow false: no flow, flow_warp or mask terms (G predicts no flow); warp consistency of the
    generated frames uses the ground-truth flow and stays, as in the reference's --no_flow."""
    generator = build_generator(dataclasses.replace(preset, flow=False), seed=0)
    nets = Nets(generator, build_image_discriminator(preset, seed=1), build_video_discriminator(preset, seed=2))
    batch = clip(preset, context=0)
    terms = objective(dataclasses.replace(ONES, vgg=0.0), flow=False).generator(
        batch, generate(nets, batch), nets.image_d, nets.video_d
    )
    assert "warp" in terms and not {"flow", "flow_warp", "mask"} & set(terms)
    # the hallucinated frame is the final one: judged once, not twice under two names
    assert not any(k.startswith("raw_") for k in terms)


def test_without_the_video_discriminator_no_video_terms(nets: Nets, preset: ModelPreset) -> None:
    batch = clip(preset, context=0)
    out = generate(nets, batch)
    terms = objective(dataclasses.replace(ONES, vgg=0.0)).generator(batch, out, nets.image_d, None)
    assert not any(k.startswith("video_") for k in terms) and {"warp", "flow"} <= set(terms)
    detached = {k: v.detach() for k, v in out.items()}
    d_terms = objective().discriminator(batch, detached, nets.image_d, None)
    assert set(d_terms) == {"d_real", "d_fake", "raw_d_real", "raw_d_fake"}
