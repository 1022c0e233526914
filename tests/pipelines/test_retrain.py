"""Retraining: skip when nothing changed, rerun what changed, promote only a better model, never after a failure.

The tests of this module run in file order on one tiny project: the first retraining runs the whole
pipeline (real `dvc repro` per stage); later ones change one `generate` param, so only `generate` reruns.
The promotion metric is the generate stage's frame count (mode min), which `generate.max_frames` sets
exactly: a real metrics file written by a real stage, with values the test controls.
"""

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipelines.retrain import RetrainError, affected_stages, v2v_retrain
from v2v.cli import app
from v2v.mlops.dvcfile import load_stages
from v2v.stages import STAGES


def set_params(root: Path, **sections: dict[str, Any]) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def params_of(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "params.yaml").read_text())


@pytest.fixture(scope="module")
def project(module_dvc_project: Path, prefect_harness: None) -> Path:
    """The module's tiny project, promoting by the generate stage's frame count; flows report to the harness."""
    experiment = params_of(module_dvc_project)["tracking"]["experiment"]
    set_params(
        module_dvc_project,
        promote={
            "model_name": f"gen-{experiment}",  # the MLflow store is shared by the test session
            "metrics_file": "metrics/generate.json",
            "metric": "frames",
            "mode": "min",
            "min_delta": 0.0,
        },
    )
    return module_dvc_project


def model_name(root: Path) -> str:
    return params_of(root)["promote"]["model_name"]


def pipeline_runs(root: Path) -> list[Any]:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(params_of(root)["tracking"]["experiment"])
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def versions(root: Path) -> list[str]:
    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name = '{model_name(root)}'"))


def champion(root: Path) -> Any:
    return MlflowClient().get_model_version_by_alias(model_name(root), "champion")


def after_generate(root: Path) -> list[str]:
    """``generate`` and the stages downstream of it (an evaluation stage, when there is one)."""
    return affected_stages(load_stages(root), {"generate"})


def test_affected_stages_are_the_changed_ones_and_downstream() -> None:
    stages = load_stages(Path(__file__).resolve().parents[2])
    assert affected_stages(stages, set()) == []
    generate = affected_stages(stages, {"generate"})
    assert generate[0] == "generate" and not {"sample", "extract", "train_scale2"} & set(generate)
    assert generate == ["generate", "evaluate"]
    training = ["train_scale0", "train_scale1", "train_scale2", "train_baseline"]  # the baseline reads the maps too
    assert affected_stages(stages, {"edges"}) == ["edges", *training, *generate]
    assert affected_stages(stages, {"train_scale1"}) == ["train_scale1", "train_scale2", *generate]
    assert affected_stages(stages, {"extract"}) == list(STAGES)[1:]


def test_first_retraining_runs_the_pipeline_and_promotes(project: Path) -> None:
    outcome = v2v_retrain(root=str(project))
    assert outcome["stages"] == list(STAGES)  # nothing was ever run: every stage changed
    assert outcome["decision"] == "promoted" and outcome["version"] == "1"
    assert outcome["reason"] == "no champion yet; frames=6"  # 6 frames of the one held-out street clip
    version = champion(project)
    assert str(version.version) == "1"
    lock = hashlib.md5((project / "dvc.lock").read_bytes()).hexdigest()
    assert version.tags["v2v.metric.frames"] == "6.0" and version.tags["v2v.dvc_lock_md5"] == lock
    assert version.tags["v2v.promoted"] == "true" and "no champion yet" in version.description

    (parent,) = pipeline_runs(project)
    assert parent.info.status == "FINISHED" and parent.data.tags["v2v.driver"] == "prefect/retrain"
    assert parent.data.tags["v2v.retrain.decision"] == "promoted"
    assert parent.data.tags["v2v.retrain.reason"] == "no champion yet; frames=6"
    assert parent.data.metrics["generate.frames"] == 6
    # the version is the model the last training stage logged in its own run (no second copy)
    trained = mlflow.MlflowClient().get_run(version.run_id)
    assert trained.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert trained.data.tags["v2v.stage"] == "train_scale1"  # num_scales 2: scale 2 passes scale 1's model on
    assert version.source == trained.data.tags["v2v.model_uri"]
    assert parent.data.params["generate.max_frames"] == "None"  # every param is on the parent run

    # the registered model: the stage's state dicts behind a pyfunc with an honest signature
    model = mlflow.pyfunc.load_model(f"models:/{model_name(project)}@champion")
    (inputs,) = model.metadata.signature.inputs.inputs
    assert inputs.shape == (-1, 36, -1, -1)
    conditions = np.zeros((3, 36, 32, 64), np.float32)
    conditions[:, 7] = 1  # every pixel road
    frames = model.predict(conditions)
    assert frames.shape == (3, 3, 32, 64) and np.isfinite(frames).all() and np.abs(frames).max() <= 1
    # params.yaml trains the feature encoder: the appearance is the seed param's (default: generate's)
    assert model.metadata.signature.params.to_dict() == [{"name": "seed", "type": "long", "default": 0, "shape": None}]
    np.testing.assert_array_equal(model.predict(conditions, params={"seed": 0}), frames)
    assert model.unwrap_python_model().model.feature_bank is not None  # (seeds' diversity: tests/generation)


def test_nothing_changed_skips(project: Path) -> None:
    runs, registered = len(pipeline_runs(project)), versions(project)
    outcome = v2v_retrain(root=str(project))
    assert outcome["decision"] == "skipped" and outcome["stages"] == []
    assert "nothing changed since the last retraining decision" in outcome["reason"]
    assert len(pipeline_runs(project)) == runs and versions(project) == registered


def test_param_change_reruns_what_changed_and_promotes_a_better_model(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_params(project, generate={"max_frames": 3})
    rerun = after_generate(project)
    check = v2v_retrain(root=str(project), check_only=True)
    assert check == {"decision": "would-run", "reason": f"would run {', '.join(rerun)}", "stages": rerun}
    # `v2v retrain --check` is read-only: it answers without Prefect (an unreachable API is never contacted)
    with monkeypatch.context() as patched:
        patched.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
        cli = CliRunner().invoke(app, ["retrain", "--check", "--root", str(project)])
    assert cli.exit_code == 0 and cli.output.strip().endswith(f"would-run: would run {', '.join(rerun)}")
    outcome = v2v_retrain(root=str(project))
    assert outcome["stages"] == rerun and outcome["results"] == [f"{stage}: ran" for stage in rerun]
    assert outcome["decision"] == "promoted" and outcome["version"] == "2"
    assert outcome["reason"].startswith("better: frames=3 vs champion v1 6 (lower is better, gain 3")
    assert str(champion(project).version) == "2"
    parent = pipeline_runs(project)[0]
    assert parent.data.tags["v2v.retrain.decision"] == "promoted" and parent.data.tags["v2v.retrain.champion"] == "2"


def test_worse_model_is_registered_and_the_champion_kept(project: Path) -> None:
    set_params(project, generate={"max_frames": 4})
    outcome = v2v_retrain(root=str(project))
    assert outcome["decision"] == "kept" and outcome["version"] == "3" and outcome["champion"] == "2"
    assert outcome["reason"].startswith("not better: frames=4 vs champion v2 3 (lower is better, gain -1")
    assert str(champion(project).version) == "2"
    kept = MlflowClient().get_model_version(model_name(project), "3")
    assert kept.tags["v2v.promoted"] == "false" and kept.tags["v2v.metric.frames"] == "4.0"
    parent = pipeline_runs(project)[0]
    assert parent.data.tags["v2v.retrain.decision"] == "kept"
    assert parent.data.tags["v2v.retrain.reason"] == outcome["reason"]
    # the decision is recorded: the next run has nothing to do
    assert v2v_retrain(root=str(project))["decision"] == "skipped"


def test_failed_retraining_never_moves_the_champion(project: Path) -> None:
    # a stale metrics file that would beat the champion, and a generate stage that fails
    (project / "metrics/generate.json").write_text(json.dumps({"frames": 1, "videos": 1}))
    set_params(project, generate={"max_frames": 2, "clip_prefix": "nomatch_"})
    with pytest.raises(RetrainError) as failure:
        v2v_retrain(root=str(project))
    message = str(failure.value)
    assert "retraining failed in stage 'generate'" in message and "'champion' alias was not moved" in message
    assert "no test video whose id starts with 'nomatch_'" in message  # the stage's own error follows
    assert str(champion(project).version) == "2" and versions(project) == ["1", "2", "3"]
    parent = pipeline_runs(project)[0]
    assert parent.info.status == "FAILED" and parent.data.tags["v2v.retrain.decision"] == "failed"
    assert parent.data.tags["v2v.retrain.reason"] == "stage 'generate' failed; champion not moved"


def test_compare_reports_the_retraining_runs(project: Path, tmp_path: Path) -> None:
    """The runs the real stages tracked: differing params, their metrics and the best run, via `v2v compare`."""
    out = tmp_path / "runs.csv"
    args = ["compare", "--root", str(project), "--metric", "generate.frames", "--mode", "min", "--show", "generate.*"]
    result = CliRunner().invoke(app, [*args, "--format", "csv", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["status"] for r in rows] == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]  # newest first
    assert [r["generate.max_frames"] for r in rows] == ["2", "4", "3", "None"]
    assert [r["generate.clip_prefix"] for r in rows] == ["nomatch_", "", "", ""]
    assert [r["generate.frames"] for r in rows] == ["", "4", "3", "6"]  # the failed stage logged no metrics
    assert [r["best"] for r in rows] == ["", "", "*", ""]
    assert "model.preset" not in rows[0]  # params that are the same in every run are left out
    table = CliRunner().invoke(app, [*args, "--format", "markdown"])
    assert table.exit_code == 0 and table.output.startswith("| run | run_id | status | driver |")
    assert "best by generate.frames (lower is better)" in table.output and "2 param(s) differ" in table.output


def test_a_rule_on_a_missing_metric_fails_clearly_and_decides_once_fixed(project: Path) -> None:
    """`v2v retrain` exits 1 naming the metric and the keys there are; nothing is registered, and once promote is
    fixed the next retraining decides on the same model without rerunning a stage."""
    set_params(project, generate={"max_frames": 5, "clip_prefix": ""}, promote={"metric": "no_such_score"})
    registered = versions(project)
    result = CliRunner().invoke(app, ["retrain", "--root", str(project)])
    assert result.exit_code == 1
    assert "no metric 'no_such_score' (promote.metric); it has: " in result.output
    assert "Set promote.metric" in result.output and versions(project) == registered
    assert pipeline_runs(project)[0].data.tags["v2v.retrain.decision"] == "failed"
    set_params(project, promote={"metric": "frames"})
    outcome = v2v_retrain(root=str(project))
    assert outcome["stages"] == [] and outcome["decision"] == "kept"
    assert outcome["reason"].startswith("not better: frames=5 vs champion v2 3")


@pytest.mark.usefixtures("prefect_harness")
def test_pipeline_cli_names_the_failed_stage(dvc_project: Path) -> None:
    set_params(dvc_project, extract={"input_dir": "junk"})
    (dvc_project / "junk").mkdir()
    (dvc_project / "junk" / "notes.mp4").write_text("not a video")
    result = CliRunner().invoke(app, ["pipeline", "--root", str(dvc_project), "--stage", "extract"])
    assert result.exit_code == 1
    assert "error: pipeline: stage 'extract' failed" in result.output and "notes.mp4: cannot decode" in result.output
    assert "`dvc repro extract`" in result.output  # what to do
