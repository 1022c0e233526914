"""The Prefect flow runs the same stages (through DVC) with retries, grouped under one MLflow run."""

import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter
from prefect.logging.handlers import APILogWorker

from pipelines.flow import v2v_pipeline

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_flow_runs_pipeline_and_groups_runs(dvc_project: Path) -> None:
    experiment = yaml.safe_load((dvc_project / "params.yaml").read_text())["tracking"]["experiment"]
    stages = ["sample", "extract"]  # the whole pipeline runs in tests/test_pipeline_dvc.py
    state = v2v_pipeline(root=str(dvc_project), stages=stages, driver="dvc", return_state=True)
    results, flow_run_id = state.result(), state.state_details.flow_run_id
    assert results == [f"{name}: ran" for name in stages]
    assert (dvc_project / "dvc.lock").is_file() and (dvc_project / "data/frames/index.json").is_file()
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.tags["v2v.driver"] == "prefect/dvc" and parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["v2v.stage"] for r in children) == sorted(stages)
    # the flow run shows its work in the Prefect UI: the summary, the MLflow run, the stages' own output
    APILogWorker.drain_all(timeout=30)  # logs reach the API in background batches
    with get_client(sync_client=True) as prefect:
        artifacts = {a.key: a for a in prefect.read_artifacts() if a.flow_run_id == flow_run_id}
        of_this_run = LogFilter(flow_run_id={"any_": [flow_run_id]})
        for _ in range(30):  # ... and a loaded machine may store the last batch a little later
            logs = []
            while batch := prefect.read_logs(log_filter=of_this_run, limit=200, offset=len(logs)):  # 200: API's max
                logs += batch
            if streamed := any("extract: 2 video(s)" in log.message for log in logs):
                break
            time.sleep(1)
    assert "Stages: sample, extract" in str(artifacts["v2v-metrics"].data)
    assert parent.info.run_id in str(artifacts["v2v-mlflow-run"].data)
    assert streamed, "a stage's own log line, streamed"
    # second run: DVC says everything is up to date
    assert v2v_pipeline(root=str(dvc_project), stages=stages, driver="dvc") == [
        f"{name}: up to date" for name in stages
    ]


def test_flow_failure_is_retried_then_reported(dvc_project: Path) -> None:
    params = yaml.safe_load((dvc_project / "params.yaml").read_text())
    params["extract"]["input_dir"] = "empty"
    (dvc_project / "empty").mkdir()
    (dvc_project / "empty" / "notes.mp4").write_text("not a video")
    (dvc_project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(RuntimeError, match="notes.mp4: cannot decode"):
        v2v_pipeline(root=str(dvc_project), stages=["extract"], driver="dvc")
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(params["tracking"]["experiment"]).experiment_id])
    extract_runs = [r for r in runs if r.data.tags.get("v2v.stage") == "extract"]
    assert len(extract_runs) == 2, "the failed stage is retried once"
    assert all(r.info.status == "FAILED" for r in runs)
