"""The promotion rule and the metrics it reads (the registry round trip runs in tests/pipelines/test_retrain.py)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from v2v.mlops.registry import PromotionError, decide, flat_metrics, read_metric, signature


def test_no_champion_promotes() -> None:
    d = decide(0.5, None, None, "warp_error", "min", 0.0)
    assert d.promote and d.reason == "no champion yet; warp_error=0.5"


@pytest.mark.parametrize(
    ("value", "champion", "mode", "min_delta", "promote"),
    [
        (0.4, 0.5, "min", 0.0, True),  # lower is better
        (0.5, 0.5, "min", 0.0, False),  # a tie keeps the champion
        (0.6, 0.5, "min", 0.0, False),
        (0.45, 0.5, "min", 0.1, False),  # better, but not by more than min_delta
        (0.35, 0.5, "min", 0.1, True),
        (0.6, 0.5, "max", 0.0, True),  # higher is better
        (0.4, 0.5, "max", 0.0, False),
        (0.55, 0.5, "max", 0.1, False),
    ],
)
def test_rule_compares_with_the_champion(
    value: float, champion: float, mode: str, min_delta: float, promote: bool
) -> None:
    d = decide(value, champion, "3", "m", mode, min_delta)  # type: ignore[arg-type]
    assert d.promote is promote
    assert d.reason.startswith("better: " if promote else "not better: ")
    assert f"champion v3 {champion:.6g}" in d.reason and f"min_delta {min_delta:g}" in d.reason
    assert d.champion_version == "3" and d.value == value


def test_rule_keeps_the_champion_when_it_cannot_compare() -> None:
    assert not decide(float("nan"), 0.5, "1", "m", "min", 0.0).promote
    assert not decide(float("inf"), None, None, "m", "min", 0.0).promote  # not even without a champion
    no_metric = decide(0.1, None, "2", "fid", "min", 0.0)
    assert not no_metric.promote and "champion v2 has no fid" in no_metric.reason


def test_read_metric_nested_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "evaluate.json"
    path.write_text(json.dumps({"fid": 12.5, "per_video": {"a": {"warp_error": 0.25}}, "name": "x", "ok": True}))
    assert read_metric(path, "fid") == 12.5
    assert read_metric(path, "per_video.a.warp_error") == 0.25
    with pytest.raises(PromotionError, match=r"evaluate.json: no metric 'lpips' .*it has: fid, per_video.a.warp_error"):
        read_metric(path, "lpips")
    with pytest.raises(PromotionError, match="'name' is 'x', not a number"):
        read_metric(path, "name")
    with pytest.raises(PromotionError, match="'ok' is True, not a number"):
        read_metric(path, "ok")
    with pytest.raises(PromotionError, match=r"missing.json: metrics file not found"):
        read_metric(tmp_path / "missing.json", "fid")
    assert flat_metrics(json.loads(path.read_text())) == {"fid": 12.5, "per_video.a.warp_error": 0.25}


@pytest.mark.parametrize(
    ("task", "channels"), [("street", 36), ("edges", 1), ("pose", 3), ("face", 15), ("face_edges", 1)]
)
def test_signature_follows_the_model_config(task: str, channels: int) -> None:
    from support import suite_config

    from v2v.training.loop import model_preset

    cfg = suite_config({"model": {"preset": "tiny"}, "train": {"task": task}})
    model = json.loads(json.dumps(dataclasses.asdict(model_preset(cfg))))  # as the training stages write it
    sig = signature({"model": model, "train": {"task": task}, "scale": 1})
    (inputs,) = sig.inputs.inputs
    (outputs,) = sig.outputs.inputs
    assert inputs.type == np.dtype(np.float32) and inputs.shape == (-1, channels, -1, -1)
    assert outputs.shape == (-1, 3, -1, -1)


@pytest.mark.parametrize(
    "task, rule",
    [("street", ("seg_miou", "max")), ("edges", ("edge_f", "max")), ("face", ("landmark_error", "min"))],
)
def test_the_default_promotion_rule_is_the_tasks_own_verdict(task: str, rule: tuple[str, str]) -> None:
    from support import suite_config

    from v2v.config import ConfigError
    from v2v.mlops.registry import promotion_rule

    assert promotion_rule(suite_config({"train": {"task": task}})) == rule
    chosen = suite_config({"train": {"task": task}, "promote": {"metric": "fid", "mode": "min"}})
    assert promotion_rule(chosen) == ("fid", "min")
    with pytest.raises(ConfigError, match="promote.mode: auto .* set min or max for promote.metric 'fid'"):
        promotion_rule(suite_config({"train": {"task": task}, "promote": {"metric": "fid"}}))
