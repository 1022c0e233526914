"""dvc.yaml and the code must not drift apart: modules, params keys, code deps and output paths."""

import dataclasses
import importlib
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import v2v.paths as paths_module
from v2v.config import TRAIN_RUNTIME_KEYS, Config, TrainConfig
from v2v.mlops.dvcfile import load_stages, stage_order
from v2v.stages import STAGES

REPO = Path(__file__).resolve().parents[1]
STAGE_SPECS = load_stages(REPO)

# Modules that do not change what a stage computes (logging, tracking, previews, plumbing):
# a change to them must not rerun the pipeline, so stages do not list them as deps.
INFRASTRUCTURE = {
    "v2v/__init__.py",
    "v2v/config.py",
    "v2v/paths.py",
    "v2v/mlops/dvcfile.py",
    "v2v/mlops/__init__.py",
    "v2v/mlops/tracking.py",
    "v2v/viz.py",
    "v2v/io/atomic.py",
    "v2v/io/files.py",  # file hashes (which outputs can be reused), not what is computed
    "v2v/errors.py",  # how failures read, not what is computed
    "v2v/ops/device.py",  # where a stage computes, not what
    "v2v/stages/__init__.py",
    "v2v/stages/common.py",
}


def test_every_stage_is_in_dvc_yaml_in_order() -> None:
    assert list(STAGE_SPECS) == list(STAGES)
    assert stage_order(STAGE_SPECS) == list(STAGES)


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_command_module_and_params(name: str) -> None:
    spec = STAGE_SPECS[name]
    assert spec.cmd == f"python -m {STAGES[name]}"
    module = importlib.import_module(STAGES[name])
    assert callable(module.run) and callable(module.main)
    assert name in spec.params, f"{name} must declare its own params section"
    hints = typing.get_type_hints(Config)
    for key in spec.params:
        section, *rest = key.split(".")
        assert section in hints, f"dvc.yaml {name}: params key {key!r} is not a section of params.yaml"
        if rest:
            fields = {f.name for f in dataclasses.fields(hints[section])}
            assert rest[0] in fields, f"dvc.yaml {name}: params key {key!r} does not exist"


@pytest.mark.parametrize("name", ["train_scale0", "train_scale1", "train_scale2", "train_baseline"])
def test_training_depends_on_the_train_keys_that_change_the_weights(name: str) -> None:
    """Changing train.log_every, resume, workers, device or checkpointing retrains nothing."""
    listed = {k.split(".", 1)[1] for k in STAGE_SPECS[name].params if k.startswith("train.")}
    every = {f.name for f in dataclasses.fields(TrainConfig)}
    assert "train" not in STAGE_SPECS[name].params
    assert listed == every - set(TRAIN_RUNTIME_KEYS)


def test_only_extract_depends_on_the_video_decoder() -> None:
    """The frames-folder format is v2v/io/frames.py: editing the decoder reruns the extract stage alone."""
    decoder = {"v2v/io/decode.py", "v2v/preprocess/extract.py", "v2v/preprocess"}
    assert [name for name, spec in STAGE_SPECS.items() if decoder & set(spec.deps)] == ["extract"]


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_code_deps_cover_every_imported_module(name: str) -> None:
    probe = (
        f"import json, sys, {STAGES[name]}; "
        "print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) "
        "if getattr(m, '__file__', None) and m.__name__.startswith('v2v'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    imported = {Path(f).resolve().relative_to(REPO).as_posix() for f in json.loads(out.stdout)}
    needed = {m for m in imported if not m.endswith("__init__.py") or m == "v2v/__init__.py"} - INFRASTRUCTURE
    deps = set(STAGE_SPECS[name].deps)
    missing = sorted(m for m in needed if not any(m == d or m.startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"dvc.yaml stage {name} imports these but does not list them in deps: {missing}"
    stale = sorted(d for d in deps if d.endswith(".py") and d not in imported)
    assert not stale, f"dvc.yaml stage {name} lists code it does not import: {stale}"


def test_outputs_are_the_paths_module_locations() -> None:
    named = {v for k, v in vars(paths_module).items() if k.isupper() and isinstance(v, str)}
    outs = [o for spec in STAGE_SPECS.values() for o in spec.outs]
    assert len(outs) == len(set(outs)), "two stages write the same output"
    timing = paths_module.TIMING + "/"
    metrics = [o for o in outs if o.startswith("metrics/") and not o.startswith(timing)]
    for out in outs:
        if out.startswith(timing):  # each stage's timing file, beside its metrics file
            assert out.replace("timing/", "") in metrics, f"dvc.yaml output {out!r} has no metrics file beside it"
            continue
        assert out in named, f"dvc.yaml output {out!r} is not named in v2v/paths.py"
    data_paths = {v for v in named if v.startswith(("data/", "metrics/"))}
    for path in data_paths:
        assert any(path == o or path.startswith(o + "/") or o.startswith(path + "/") for o in outs), (
            f"v2v/paths.py {path!r} is no stage's output"
        )
    with_metrics = {name for name, spec in STAGE_SPECS.items() if set(spec.outs) & set(metrics)}
    with_timing = {name for name, spec in STAGE_SPECS.items() if any(o.startswith(timing) for o in spec.outs)}
    assert with_metrics == with_timing, "every stage with metrics writes its timing file too"
