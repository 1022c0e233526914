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
SEGMENT_MAPS = "data/maps/segment"  # segment stage: <video_id>/label/, instance/ (PNG per frame) + meta.json
SEGMENT_METRICS = "metrics/segment.json"  # segment stage: DVC metrics
EDGE_MAPS = "data/maps/edges"  # edges stage: <video_id>/<frame>.png (0/255) + meta.json
EDGES_METRICS = "metrics/edges.json"  # edges stage: DVC metrics
POSE_MAPS = "data/maps/pose"  # pose stage: <video_id>/keypoints/<frame>.json, map/<frame>.png + meta.json
POSE_METRICS = "metrics/pose.json"  # pose stage: DVC metrics
FACE_MAPS = "data/maps/face"  # face stage: <video_id>/landmarks.json, map/<frame>.png, parts/<frame>.png + meta.json
FACE_METRICS = "metrics/face.json"  # face stage: DVC metrics
FLOW = "data/flow"  # flow stage: <video_id>/<frame>.npy (backward flow, float16) + <frame>_valid.png + meta.json
FLOW_METRICS = "metrics/flow.json"  # flow stage: DVC metrics (EPE per clip, throughput)
MODEL_SCALE0 = "models/scale0"  # train_scale0: model.pt (G, D_I, D_V state dicts + config) + config.json
MODEL_SCALE1 = "models/scale1"  # train_scale1: same, the generator with 2 scales
MODEL_SCALE2 = "models/scale2"  # train_scale2: same, the generator with 3 scales
TRAIN_METRICS_SCALE0 = "metrics/train_scale0.json"  # train_scale0: DVC metrics (final losses, steps, seconds)
TRAIN_METRICS_SCALE1 = "metrics/train_scale1.json"
TRAIN_METRICS_SCALE2 = "metrics/train_scale2.json"
TRAIN_PLOTS_SCALE0 = "plots/train_scale0.csv"  # train_scale0: DVC plots (losses per logged step)
TRAIN_PLOTS_SCALE1 = "plots/train_scale1.csv"
TRAIN_PLOTS_SCALE2 = "plots/train_scale2.csv"
RESULTS = "results"  # generate stage: <video_id>/fake.mp4, compare.mp4, manipulated.mp4, multimodal_seed<k>.mp4, frames/ + meta.json
GENERATE_METRICS = "metrics/generate.json"  # generate stage: DVC metrics (frames, frames/s)
MODEL_BASELINE = "models/baseline"  # train_baseline: the per-frame baseline generator (model.pt + config.json)
BASELINE_METRICS = "metrics/train_baseline.json"  # train_baseline: DVC metrics
BASELINE_PLOTS = "plots/train_baseline.csv"  # train_baseline: DVC plots (losses per logged step, every scale)
MODEL_SEGMENTER = "models/segmenter"  # segmenter: the segmentation-consistency judge (model.pt)
SEGMENTER_METRICS = "metrics/segmenter.json"  # segmenter: DVC metrics (its mIoU on held-out real frames)
EVALUATION = "evaluation"  # evaluate stage: report.html, <video_id>/baseline.mp4, per-video metrics
EVALUATE_METRICS = "metrics/evaluate.json"  # evaluate stage: DVC metrics (FID, video FDs, temporal, preferences)
EVALUATE_PLOTS = "plots/evaluate_frames.csv"  # evaluate stage: DVC plots (per-frame metrics of every system)
TIMING = "metrics/timing"  # every stage with metrics: <stage>.json, its durations and throughput (not DVC metrics)
EVAL_CACHE = "cache/eval"  # real-video feature statistics, per dataset hash and feature network (not DVC)
PARKED_MAPS = "cache/maps"  # <stage>/<video_id>: maps of a stage the task stopped reading, for reuse (not DVC)
CHECKPOINTS = "checkpoints"  # resumable checkpoints, <stage>/<config hash>/step_*.pt (not a DVC output)
LOCKS = ".v2v/locks"  # one lock file per stage while it runs (a second run of a stage is refused)
MLFLOW_DIR = "mlruns"  # embedded MLflow store: mlflow.db (SQLite) + artifacts/ beside it

# the stage that writes each per-video folder (and rebuilds a damaged one on its next run)
WRITERS = {
    FRAMES: "extract",
    SEGMENT_MAPS: "segment",
    EDGE_MAPS: "edges",
    POSE_MAPS: "pose",
    FACE_MAPS: "face",
    FLOW: "flow",
}


def project_relative(path: Path, root: Path) -> str:
    """``path`` as recorded in an output: relative to the project root when inside it (a clone elsewhere then
    writes the same bytes), absolute otherwise."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


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
    def segment_maps(self) -> Path:
        return self.root / SEGMENT_MAPS

    @property
    def segment_metrics(self) -> Path:
        return self.root / SEGMENT_METRICS

    @property
    def edge_maps(self) -> Path:
        return self.root / EDGE_MAPS

    @property
    def edges_metrics(self) -> Path:
        return self.root / EDGES_METRICS

    @property
    def pose_maps(self) -> Path:
        return self.root / POSE_MAPS

    @property
    def pose_metrics(self) -> Path:
        return self.root / POSE_METRICS

    @property
    def face_maps(self) -> Path:
        return self.root / FACE_MAPS

    @property
    def face_metrics(self) -> Path:
        return self.root / FACE_METRICS

    @property
    def flow(self) -> Path:
        return self.root / FLOW

    @property
    def flow_metrics(self) -> Path:
        return self.root / FLOW_METRICS

    @property
    def mlflow_db(self) -> Path:
        return self.root / MLFLOW_DIR / "mlflow.db"

    def model_dir(self, scale: int) -> Path:
        return self.root / (MODEL_SCALE0, MODEL_SCALE1, MODEL_SCALE2)[scale]

    def train_metrics(self, scale: int) -> Path:
        return self.root / (TRAIN_METRICS_SCALE0, TRAIN_METRICS_SCALE1, TRAIN_METRICS_SCALE2)[scale]

    def train_plots(self, scale: int) -> Path:
        return self.root / (TRAIN_PLOTS_SCALE0, TRAIN_PLOTS_SCALE1, TRAIN_PLOTS_SCALE2)[scale]

    @property
    def results(self) -> Path:
        return self.root / RESULTS

    @property
    def generate_metrics(self) -> Path:
        return self.root / GENERATE_METRICS

    @property
    def baseline_dir(self) -> Path:
        return self.root / MODEL_BASELINE

    @property
    def baseline_metrics(self) -> Path:
        return self.root / BASELINE_METRICS

    @property
    def baseline_plots(self) -> Path:
        return self.root / BASELINE_PLOTS

    @property
    def segmenter_dir(self) -> Path:
        return self.root / MODEL_SEGMENTER

    @property
    def segmenter_metrics(self) -> Path:
        return self.root / SEGMENTER_METRICS

    @property
    def evaluation(self) -> Path:
        return self.root / EVALUATION

    @property
    def evaluate_metrics(self) -> Path:
        return self.root / EVALUATE_METRICS

    @property
    def evaluate_plots(self) -> Path:
        return self.root / EVALUATE_PLOTS

    @property
    def eval_cache(self) -> Path:
        return self.root / EVAL_CACHE

    @property
    def parked_maps(self) -> Path:
        return self.root / PARKED_MAPS

    @property
    def locks(self) -> Path:
        return self.root / LOCKS

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    def input_dir(self, configured: str) -> Path:
        """The extract stage's input folder (``extract.input_dir``, relative to the root or absolute)."""
        path = Path(configured)
        return path if path.is_absolute() else self.root / path
