from collections.abc import Callable

import pytest

from v2v.config import Config
from v2v.paths import ProjectPaths
from v2v.stages import get_stage


@pytest.fixture(scope="session")
def street_project(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """A tiny project with frames, ground-truth label/instance maps and DIS flow for 2 street clips."""
    from support import suite_config

    cfg = suite_config(
        {
            "sample": {
                "width": 64,
                "height": 32,
                "num_frames": 8,
                "scenes": ["street"],
                "test_clips_per_scene": 1,
                "train_clips_per_scene": 1,
            },
            "extract": {"width": 64, "height": 32},
            "tracking": {"enabled": False},
        }
    )
    paths = ProjectPaths.at(tmp_path_factory.mktemp("street"))
    for stage in ("sample", "extract", "segment", "flow"):
        get_stage(stage)(cfg, paths)
    return paths


@pytest.fixture
def train_config() -> Callable[..., Config]:
    """``train_config(train={...}, train_scale0={...})``: the tiny preset, no VGG, no tracking."""
    from support import suite_config

    def make(**sections: dict) -> Config:
        data: dict[str, dict] = {
            "model": {"preset": "tiny"},
            "train": {
                "num_scales": 1,
                "loss_vgg": 0.0,
                "device": "cpu",
                "log_every": 1,
                "sample_every": 1000,
                "checkpoint_every": 1000,
                "flip": False,
            },
            "train_scale0": {
                "epochs": 2,
                "decay_epochs": 0,
                "samples_per_video": 2,
                "start_frames": 4,
                "max_frames": 4,
                "double_every": 0,
            },
            "tracking": {"enabled": False},
        }
        for key, values in sections.items():
            data.setdefault(key, {}).update(values)
        return suite_config(data)

    return make


@pytest.fixture
def clip_dataset() -> Callable[..., object]:
    from v2v.data.clips import ClipDataset

    def make(paths: ProjectPaths, cfg: Config, scale: int = 0) -> ClipDataset:
        sc = getattr(cfg, f"train_scale{scale}")
        return ClipDataset(
            paths=paths,
            split="train",
            task="street",
            clip_length=sc.start_frames,
            samples_per_video=sc.samples_per_video,
            flip=cfg.train.flip,
            seed=cfg.train.seed,
        )

    return make
