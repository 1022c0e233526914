"""The loss callables: named scalars, known values, masking, gradients, weight loading errors."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from v2v.losses.flow import FlowLoss, MaskRegulariser, WarpConsistencyLoss, masked_l1
from v2v.losses.gan import FeatureMatchingLoss, GANLoss
from v2v.losses.perceptual import VGGPerceptualLoss, VGGWeightsError, load_vgg19_features
from v2v.models.presets import build_image_discriminator, resolve_preset
from v2v.ops.warp import warp

H, W = 16, 24


def preds(value: float, scales: int = 2) -> list[list[torch.Tensor]]:
    return [[torch.randn(2, 4, 5, 5), torch.full((2, 1, 4, 4), value)] for _ in range(scales)]


def test_lsgan_and_hinge_values() -> None:
    lsgan = GANLoss(mode="lsgan")
    d = lsgan.discriminator(preds(1.0), preds(0.0))
    assert set(d) == {"d_real", "d_fake"} and d["d_real"] == 0 and d["d_fake"] == 0
    assert lsgan.generator(preds(0.0))["g_gan"] == pytest.approx(2.0)  # (0 - 1)^2 per scale, 2 scales
    hinge = GANLoss(mode="hinge", weight=0.5, prefix="video_")
    d = hinge.discriminator(preds(2.0), preds(-0.5))
    assert d["video_d_real"] == 0 and d["video_d_fake"] == pytest.approx(0.5 * 2 * 0.5)
    assert hinge.generator(preds(3.0))["video_g_gan"] == pytest.approx(0.5 * 2 * -3.0)
    with pytest.raises(ValueError, match="GAN mode"):
        GANLoss(mode="wgan")  # type: ignore[arg-type]


def test_feature_matching_uses_intermediate_features_and_detaches_real() -> None:
    d = build_image_discriminator(resolve_preset("tiny"))
    labels = torch.rand(1, 2, 7, H, W)
    real = torch.rand(1, 2, 3, H, W)
    fake = (real + 0.3 * torch.randn_like(real)).requires_grad_(True)
    fm = FeatureMatchingLoss(weight=10.0)
    same = fm(d(labels, real), d(labels, real))["g_feat"]
    assert same == 0
    loss = fm(d(labels, fake), d(labels, real))["g_feat"]
    assert loss > 0
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_flow_and_warp_losses_vanish_for_the_true_flow() -> None:
    real_prev = torch.rand(1, 2, 3, H, W, dtype=torch.float64)
    flow_true = torch.zeros(1, 2, 2, H, W, dtype=torch.float64)
    flow_true[:, :, 0] = 2.0  # backward flow: frame t(x) = frame t-1(x + 2)
    real = warp(real_prev.flatten(0, 1), flow_true.flatten(0, 1)).unflatten(0, (1, 2))
    confidence = torch.ones(1, 2, 1, H, W, dtype=torch.float64)
    loss = FlowLoss()
    out = loss(flow_true, flow_true, confidence, real_prev, real)
    assert set(out) == {"flow", "flow_warp"}
    assert out["flow"] == 0 and out["flow_warp"] == pytest.approx(0, abs=1e-12)
    wrong = torch.zeros_like(flow_true).requires_grad_(True)
    out = loss(wrong, flow_true, confidence, real_prev, real)
    assert out["flow"].item() == pytest.approx(10 * 1.0)  # |0 - 2| on dx, 0 on dy → mean 1, × 10
    assert out["flow_warp"] > 0
    (out["flow"] + out["flow_warp"]).backward()
    assert wrong.grad is not None and wrong.grad.abs().sum() > 0
    # zero confidence masks everything out
    out = loss(wrong, flow_true, torch.zeros_like(confidence), real_prev, real)
    assert out["flow"] == 0 and out["flow_warp"] == 0


def test_warp_consistency_and_mask_regulariser() -> None:
    fake_prev = torch.rand(2, 3, 3, H, W)
    flow = torch.zeros(2, 3, 2, H, W)
    confidence = torch.ones(2, 3, 1, H, W)
    consistent = fake_prev.clone().requires_grad_(True)  # zero flow: the warped previous frame is itself
    out = WarpConsistencyLoss()(consistent, fake_prev, flow, confidence)
    assert set(out) == {"warp"} and out["warp"].item() == pytest.approx(0, abs=1e-5)
    moved = (fake_prev + 0.5).requires_grad_(True)
    out = WarpConsistencyLoss(weight=2.0)(moved, fake_prev, flow, confidence)
    assert out["warp"].item() == pytest.approx(2.0 * 0.5, abs=1e-5)
    mask = torch.full((2, 3, 1, H, W), 0.25)
    confidence[:, :, :, : H // 2] = 0
    assert MaskRegulariser(weight=4.0)(mask, confidence)["mask"] == pytest.approx(4.0 * 0.25 * 0.5)
    assert masked_l1(torch.ones(3), torch.zeros(3), torch.tensor([1.0, 0.0, 1.0])) == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def vgg() -> Iterator[VGGPerceptualLoss]:
    yield VGGPerceptualLoss(weights="none")


def test_vgg_loss_with_random_weights_is_recorded_and_differentiable(vgg: VGGPerceptualLoss) -> None:
    assert vgg.weights_used.startswith("none")
    assert not any(p.requires_grad for p in vgg.parameters())
    real = torch.rand(1, 2, 3, 32, 32) * 2 - 1
    assert vgg(real, real)["vgg"] == 0
    fake = (real + 0.2).clamp(-1, 1).requires_grad_(True)
    out = vgg(fake, real)
    assert set(out) == {"vgg"} and out["vgg"] > 0
    out["vgg"].backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    vgg.train()
    assert not vgg.training


def test_vgg_weights_never_fall_back_silently(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(VGGWeightsError, match="no such file"):
        load_vgg19_features(str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"nonsense": torch.zeros(1)}, bad)
    with pytest.raises(VGGWeightsError, match="not a vgg19 state dict"):
        load_vgg19_features(str(bad))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    import torchvision.models._api as api

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(VGGWeightsError, match="vgg19-dcbb9e9d.pth"):
        load_vgg19_features("imagenet")


def test_vgg_loads_a_local_features_state_dict(vgg: VGGPerceptualLoss, tmp_path: Path) -> None:
    features, _ = load_vgg19_features("none")
    path = tmp_path / "vgg19_features.pth"
    torch.save(features.state_dict(), path)
    loaded, used = load_vgg19_features(str(path))
    assert used.startswith(f"file {path}")
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), features.state_dict().values(), strict=True)
    )


def test_random_vgg_is_calibrated_to_unit_features_on_real_frames() -> None:
    """vgg_weights random: every slice's features have mean magnitude 1 on the calibration frames, the slices
    weigh alike, and what was done is recorded."""
    torch.manual_seed(0)
    frames = torch.rand(4, 3, 32, 64) * 2 - 1
    raw = VGGPerceptualLoss(weights="none")
    vgg = VGGPerceptualLoss(weights="random")
    assert "not yet calibrated" in vgg.weights_used
    scales = vgg.calibrate(frames)
    assert len(scales) == 5 and all(s > 0 for s in scales)
    with torch.no_grad():
        magnitudes = [float(f.abs().mean()) for f in vgg._features(frames)]
    assert magnitudes == pytest.approx([1.0] * 5, rel=1e-3)
    assert vgg.layer_weights == (0.2,) * 5 and "unit feature magnitude on 4 real frames" in vgg.weights_used
    fake = (frames + 0.1 * torch.randn_like(frames)).requires_grad_()
    loss = vgg(fake[None], frames[None])["vgg"]
    loss.backward()
    assert loss > 0 and fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="calibrated already"):
        vgg.calibrate(frames)
    with pytest.raises(ValueError, match="only random VGG weights"):
        raw.calibrate(frames)
