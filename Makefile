# Two entry points: `make demo` (set up + dvc repro on the embedded sample, offline) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Telemetry off everywhere; the venv's tools first on PATH (DVC runs stage commands with this PATH).
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PATH := $(BIN):$(PATH)

.PHONY: demo test setup lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,face]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	dvc config core.analytics false
	dvc repro
	$(BIN)/v2v summary

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check v2v pipelines tests benchmarks
	$(BIN)/ruff format --check v2v pipelines tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	for b in extract maps flow model train generate eval; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
