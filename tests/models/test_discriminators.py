"""D_I and D_V on the tiny preset: shapes, intermediate features, gradients, temporal strides; reference sizes."""

import pytest
import torch

from v2v.models.discriminators import VideoDiscriminator, chain_flows, temporal_indices
from v2v.models.layers import count_parameters
from v2v.models.presets import ModelPreset, build_image_discriminator, build_video_discriminator, resolve_preset

H, W = 32, 48


@pytest.fixture(scope="module")
def preset() -> ModelPreset:
    return resolve_preset("tiny")


def test_image_discriminator_shapes_and_features(preset: ModelPreset) -> None:
    d = build_image_discriminator(preset)
    labels = torch.rand(2, 3, preset.label_channels, H, W)
    preds = d(labels, torch.rand(2, 3, 3, H, W) * 2 - 1)
    assert len(preds) == preset.num_d
    for scale in preds:
        assert len(scale) == preset.n_layers_d + 2  # intermediate features + the prediction
        assert all(f.shape[0] == 2 * 3 for f in scale)
        assert scale[-1].shape[1] == 1
    assert preds[1][-1].shape[-1] < preds[0][-1].shape[-1]  # the second scale sees a downsampled input
    with pytest.raises(ValueError, match="labels"):
        d(labels[:, :, :-1], torch.rand(2, 3, 3, H, W))


def test_gradients_reach_every_parameter_of_both_discriminators(preset: ModelPreset) -> None:
    d_image, d_video = build_image_discriminator(preset), build_video_discriminator(preset)
    preds = d_image(torch.rand(2, 2, preset.label_channels, H, W), torch.rand(2, 2, 3, H, W))
    loss = sum(f.square().mean() for scale in preds for f in scale)
    video = torch.rand(1, 10, 3, H, W)
    flows = torch.randn(1, 10, 2, H, W)
    for s in range(d_video.num_temporal_scales):
        frames, between = d_video.windows(video, flows, s)
        loss = loss + sum(f.square().mean() for scale in d_video(frames, between, s) for f in scale)
    loss.backward()
    for d in (d_image, d_video):
        missing = [n for n, p in d.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
        assert not missing


def test_temporal_scales_see_the_strides_they_claim(preset: ModelPreset) -> None:
    d = build_video_discriminator(preset)
    assert [d.stride(s) for s in range(d.num_temporal_scales)] == [1, 3]
    t = 10
    video = torch.arange(t, dtype=torch.float32).view(1, t, 1, 1, 1).expand(1, t, 3, H, W).contiguous()
    flows = torch.zeros(1, t, 2, H, W)
    for s in range(d.num_temporal_scales):
        seen: list[torch.Tensor] = []
        first = d.scales[s].nets[0].layers[0]
        handle = first.register_forward_pre_hook(lambda _m, args, seen=seen: seen.append(args[0].detach()))
        frames, between = d.windows(video, flows, s)
        d(frames, between, s)
        handle.remove()
        stride = d.stride(s)
        starts = range(t - (preset.num_frames_d - 1) * stride)
        x = seen[0]  # (windows, 3K + 2(K-1), H, W)
        assert x.shape[0] == len(starts)
        for w, start in enumerate(starts):
            for k in range(preset.num_frames_d):
                torch.testing.assert_close(x[w, 3 * k : 3 * k + 3], torch.full((3, H, W), float(start + k * stride)))
    # other temporal scales never run when one is asked for
    assert temporal_indices(3, 10, 3) == [[0, 3, 6], [1, 4, 7], [2, 5, 8], [3, 6, 9]]
    with pytest.raises(ValueError, match="needs clips"):
        d.windows(video[:, :6], flows[:, :6], 1)


def test_strided_windows_chain_the_consecutive_flows() -> None:
    d = VideoDiscriminator(num_frames=3, num_temporal_scales=2, stride_base=3, ndf=8, n_layers=2, num_d=1)
    t = 7
    flows = torch.zeros(1, t, 2, H, W, dtype=torch.float64)
    flows[:, :, 0] = 1.0  # every frame moved 1 px: backward flow dx = 1
    _, between = d.windows(torch.zeros(1, t, 3, H, W, dtype=torch.float64), flows, 1)
    # frames 3 apart: 3 px, exact on interior pixels (border samples clamp)
    torch.testing.assert_close(between[..., 0, :, : W - 3], torch.full_like(between[..., 0, :, : W - 3], 3.0))
    # a constant flow composes to its multiple everywhere (border samples clamp to the same value)
    chained = chain_flows(flows[:, 1:3])
    torch.testing.assert_close(chained[:, 0], torch.full((1, H, W), 2.0, dtype=torch.float64))
    torch.testing.assert_close(chained[:, 1], torch.zeros(1, H, W, dtype=torch.float64))


def test_reference_discriminators_match_the_official_parameter_counts() -> None:
    preset = resolve_preset("reference")
    with torch.device("meta"):
        d_image, d_video = build_image_discriminator(preset), build_video_discriminator(preset)
    assert abs(count_parameters(d_image) - 5.6e6) / 5.6e6 < 0.01
    assert d_video.num_temporal_scales == 2
    for scale in d_video.scales:
        assert abs(count_parameters(scale) - 5.6e6) / 5.6e6 < 0.01


def test_grown_discriminators_keep_each_patchgan_at_its_resolution() -> None:
    """Growth by one scale: old ``nets.i`` (of D_I and of every D_V temporal scale) becomes ``nets.{i+1}``."""
    from v2v.models.discriminators import grown_by_resolution

    state = {
        "net.nets.0.layers.0.0.weight": torch.zeros(1),
        "net.nets.1.layers.0.0.weight": torch.ones(1),
        "scales.1.nets.1.layers.4.bias": torch.full((1,), 2.0),
    }
    grown = grown_by_resolution(state, 1)
    assert set(grown) == {
        "net.nets.1.layers.0.0.weight",
        "net.nets.2.layers.0.0.weight",
        "scales.1.nets.2.layers.4.bias",
    }
    assert torch.equal(grown["net.nets.1.layers.0.0.weight"], torch.zeros(1))
    assert grown_by_resolution(state, 0) == state
