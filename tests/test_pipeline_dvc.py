"""`dvc repro` end to end on a tiny copy of the project: outputs, no-op rerun, partial rerun, MLflow grouping."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import cv2
import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from v2v.data.tasks import MapStage, needed_maps
from v2v.io.files import dvc_md5
from v2v.mlops.plots import render_plots
from v2v.stages import STAGES


def runs_of(experiment: str) -> list:
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def test_dvc_repro_end_to_end(dvc_project: Path, dvc: Callable[..., str]) -> None:
    experiment = yaml.safe_load((dvc_project / "params.yaml").read_text())["tracking"]["experiment"]
    dvc(dvc_project, "repro")

    index = json.loads((dvc_project / "data/frames/index.json").read_text())
    assert {v["video_id"]: v["split"] for v in index["videos"]} == {"street_000": "train", "street_001": "test"}
    assert all(v["num_frames"] == 6 for v in index["videos"])
    assert (dvc_project / "data/sample/truth/street_000/flow/000001.npy").is_file()

    # one parent run for the execution, one child per stage, tagged with git and DVC input hashes
    runs = runs_of(experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["v2v.driver"] == "dvc repro"
    scores = json.loads((dvc_project / "metrics/evaluate.json").read_text())
    for key in ("seg_miou", "lpips", "warp_error_baseline"):  # pipeline runs compare on the evaluation's figures
        assert parents[0].data.metrics[key] == scores[key]
    # the map stages the task does not read log nothing (they finish before MLflow loads); the others do
    params = yaml.safe_load((dvc_project / "params.yaml").read_text())
    unread = set(get_args(MapStage)) - needed_maps(params["train"]["task"], params["edges"]["instance_boundaries"])
    assert unread == {"edges", "pose", "face"}
    tracked = [stage for stage in STAGES if stage not in unread]
    for stage in tracked:  # ... and on each stage's duration
        assert parents[0].data.metrics[f"timing/{stage}_seconds"] > 0
    trained = json.loads((dvc_project / "metrics/train_scale0.json").read_text())  # ... and training's last losses
    assert parents[0].data.metrics["train_scale0.loss_g_total"] == pytest.approx(trained["loss_g_total"], abs=1e-4)
    assert sorted(r.data.tags["v2v.stage"] for r in children) == sorted(tracked)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(len(r.data.tags["v2v.git_commit"]) == 40 for r in runs)
    # dirtiness measured once, before the run: dvc.lock and the metrics DVC rewrites mid-run are not the user's change
    assert {r.data.tags["v2v.git_dirty"] for r in runs} == {"false"}
    for run in children:  # MLflow's Source and User columns
        assert run.data.tags["mlflow.source.name"] == f"python -m v2v.stages.{run.data.tags['v2v.stage']}"
        assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.type"] == "LOCAL"
    client = MlflowClient()
    assert client.get_experiment_by_name(experiment).tags["mlflow.experimentKind"] == "custom_model_development"
    frames_md5 = dvc_md5(dvc_project / "data/frames").removesuffix(".dir")
    for run in (r for r in children if r.data.tags["v2v.stage"] in ("train_scale0", "train_scale1", "train_baseline")):
        (dataset,) = client.get_run(run.info.run_id).inputs.dataset_inputs  # the frames they trained on
        assert dataset.dataset.name == "frames" and dataset.dataset.digest == frames_md5[:36]
        assert dataset.tags[0].value == "training"
        assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics), run.data.tags["v2v.stage"]
    for run in (r for r in children if r.data.tags["v2v.stage"] in ("train_scale0", "train_scale1")):
        # a model per training run: Register button and `mlflow models serve` straight after dvc repro
        info = mlflow.models.get_model_info(run.data.tags["v2v.model_uri"])
        assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"][1] > 1
        assert info.saved_input_example_info is not None and info.run_id == run.info.run_id
        assert run.info.status == "FINISHED"
    lock = yaml.safe_load((dvc_project / "dvc.lock").read_text())
    locked_videos = next(o["md5"] for o in lock["stages"]["sample"]["outs"] if o["path"] == "data/sample/videos")
    extract_run = next(r for r in children if r.data.tags["v2v.stage"] == "extract")
    assert extract_run.data.tags["v2v.dep.data/sample/videos"] == locked_videos
    assert dvc_md5(dvc_project / "data/sample/videos") == locked_videos

    # `dvc plots show` drawn offline: the loss curves of every training stage, from DVC's own specs
    drawn = render_plots(dvc_project, dvc_project / "dvc_plots")
    assert {p.name for p in drawn} >= {"generator_loss.png", "discriminator_loss.png", "per_frame_lpips.png"}
    curves = cv2.imread(str(dvc_project / "dvc_plots" / "generator_loss.png"))
    assert curves is not None and curves.shape[0] > 200 and len(np.unique(curves.reshape(-1, 3), axis=0)) > 20

    # nothing changed: a no-op that logs nothing new
    out = dvc(dvc_project, "repro")
    assert "didn't change" in out and "Running stage" not in out
    assert len(runs_of(experiment)) == 1 + len(tracked)

    # a changed extract param: extract is changed (and everything after it), its upstream is not; rerun it alone
    # (the stages after it run as in the first repro: tests/pipelines/test_retrain.py reruns a partial chain)
    params = yaml.safe_load((dvc_project / "params.yaml").read_text())
    params["extract"]["fps"] = 10.0
    (dvc_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = dvc(dvc_project, "status")
    assert "extract" in changed and "sample:" not in changed
    out = dvc(dvc_project, "repro", "--single-item", "extract")
    assert "Running stage 'extract'" in out and "Running stage 'sample'" not in out
    index = json.loads((dvc_project / "data/frames/index.json").read_text())
    assert all(v["num_frames"] == 4 and v["fps"] == 10.0 for v in index["videos"])  # 6 frames at 15 fps → 4 at 10
    # completed stages keep no checkpoints (train.keep_checkpoints_when_done: false): their model.pt is the output
    assert not list((dvc_project / "checkpoints").rglob("step_*.pt"))
    runs = runs_of(experiment)
    (new_parent,) = [
        r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.run_id != parents[0].info.run_id
    ]
    rerun = {r.data.tags["v2v.stage"] for r in runs if r.data.tags.get("mlflow.parentRunId") == new_parent.info.run_id}
    assert "extract" in rerun and "sample" not in rerun
