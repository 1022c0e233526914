"""Every on-disk location of the project, in one place.

``dvc.yaml`` names the same paths; ``tests/test_dvc_yaml.py`` checks that the two agree, so they
cannot drift apart silently. All paths are relative to the project root (the folder holding
``params.yaml`` and ``dvc.yaml``), which is where DVC runs the stage commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"
DVC_FILE = "dvc.yaml"

SAMPLE_VIDEOS = "data/sample/videos"  # sample stage: encoded clips, in train/ and test/
SAMPLE_TRUTH = "data/sample/truth"  # sample stage: per-clip ground truth (rgb, labels, instances, flow, keypoints)
FRAMES = "data/frames"  # extract stage: <video_id>/<frame>.jpg|png + meta.json, and index.json
FRAMES_INDEX = "data/frames/index.json"  # extract stage: every video, its split and status
EXTRACT_METRICS = "metrics/extract.json"  # extract stage: DVC metrics
MLFLOW_DIR = "mlruns"  # embedded MLflow store: mlflow.db (SQLite) + artifacts/ beside it


@dataclass(frozen=True)
class ProjectPaths:
    """Absolute locations under one project root."""

    root: Path

    @classmethod
    def at(cls, root: str | Path = ".") -> ProjectPaths:
        return cls(Path(root).resolve())

    def __truediv__(self, relative: str) -> Path:
        return self.root / relative

    @property
    def params(self) -> Path:
        return self.root / PARAMS_FILE

    @property
    def dvc_file(self) -> Path:
        return self.root / DVC_FILE

    @property
    def sample_videos(self) -> Path:
        return self.root / SAMPLE_VIDEOS

    @property
    def sample_truth(self) -> Path:
        return self.root / SAMPLE_TRUTH

    @property
    def frames(self) -> Path:
        return self.root / FRAMES

    @property
    def frames_index(self) -> Path:
        return self.root / FRAMES_INDEX

    @property
    def extract_metrics(self) -> Path:
        return self.root / EXTRACT_METRICS

    @property
    def mlflow_db(self) -> Path:
        return self.root / MLFLOW_DIR / "mlflow.db"

    def input_dir(self, configured: str) -> Path:
        """The extract stage's input folder (``extract.input_dir``, relative to the root or absolute)."""
        path = Path(configured)
        return path if path.is_absolute() else self.root / path
