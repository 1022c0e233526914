"""Feature networks: shapes, determinism, recorded weights, local weight files, offline errors, the I3D hook."""

import urllib.error
from pathlib import Path

import pytest
import torch

from v2v.config import VIDEO_BACKBONES
from v2v.eval.features import VIDEO_SIZES, i3d_feature_net, image_feature_net, video_feature_net
from v2v.eval.perceptual import LPIPS
from v2v.io.weights import WeightsError


def test_random_image_network_gives_finite_repeatable_2048d_features() -> None:
    frames = torch.rand(3, 3, 32, 64) * 2 - 1
    first, second = image_feature_net("inception_v3", "none"), image_feature_net("inception_v3", "none")
    features = first(frames)
    assert features.shape == (3, 2048) and torch.isfinite(features).all()
    assert torch.equal(features, second(frames))  # seeded init and calibration
    assert first.weights.name == "random-init" and first.metric == "fid_tv"
    assert features.std() < 1e4  # BatchNorm calibration keeps random features usable


def test_video_networks_give_one_feature_per_clip() -> None:
    assert set(VIDEO_SIZES) == set(VIDEO_BACKBONES)
    net = video_feature_net("r2plus1d_18", "none")
    out = net(torch.rand(2, 3, 8, 32, 64) * 2 - 1)
    assert out.shape == (2, net.dims) == (2, 512) and torch.isfinite(out).all()
    assert net.metric == "fd_r2plus1d_18" and "112x112" in net.preprocess


def test_weights_from_a_local_file_are_used_and_hashed(tmp_path: Path) -> None:
    from torchvision.models.video import r2plus1d_18

    torch.manual_seed(5)
    reference = r2plus1d_18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r2plus1d_18.pth")
    net = video_feature_net("r2plus1d_18", str(tmp_path / "r2plus1d_18.pth"))
    assert net.weights.name == "r2plus1d_18.pth" and len(net.weights.sha256 or "") == 64
    assert torch.equal(net.module.stem[0].weight, reference.stem[0].weight)
    torch.save({"not": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match=r"evaluate.video_weights: .*wrong.pth: this state dict does not fit"):
        video_feature_net("r2plus1d_18", str(tmp_path / "wrong.pth"))
    with pytest.raises(WeightsError, match="weights file not found"):
        image_feature_net("inception_v3", str(tmp_path / "missing.pth"))


def test_default_weights_offline_say_where_to_put_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    import torchvision.models._api as tv_api

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError) as info:
        video_feature_net("s3d", "default")
    assert "evaluate.video_weights" in str(info.value) and str(tmp_path / "torch" / "hub" / "checkpoints") in str(
        info.value
    )
    with pytest.raises(WeightsError, match="random-init mode"):
        image_feature_net("pytorch_fid", "none")


def test_lpips_backbone_from_a_file_replaces_the_random_one(tmp_path: Path) -> None:
    from torchvision.models import alexnet

    torch.manual_seed(7)
    reference = alexnet(weights=None)
    torch.save(reference.state_dict(), tmp_path / "alexnet.pth")
    loaded, random = LPIPS(str(tmp_path / "alexnet.pth")), LPIPS("none")
    assert torch.equal(loaded.net.net.slice1[0].weight, reference.features[0].weight)
    assert loaded.weights.name == "alexnet.pth" and random.weights.name == "random-init"
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(loaded(a, a), torch.zeros(2)) and (loaded(a, b) > 0).all()


def test_i3d_torchscript_hook(tmp_path: Path) -> None:
    class FakeI3D(torch.nn.Module):  # the calling convention of StyleGAN-V's i3d_torchscript.pt
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(3, 400)

        def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = True):
            x = x / 127.5 - 1 if rescale else x
            return self.proj(x.mean(dim=(2, 3, 4)))

    torch.jit.script(FakeI3D()).save(str(tmp_path / "i3d.pt"))
    net = i3d_feature_net(tmp_path / "i3d.pt")
    out = net(torch.zeros(2, 3, 4, 16, 16))
    assert out.shape == (2, 400) and net.metric == "fvd"
    with pytest.raises(WeightsError, match="file not found"):
        i3d_feature_net(tmp_path / "nope.pt")
