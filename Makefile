# Two entry points: `make demo` (set up + dvc repro on the embedded sample, offline) and `make test`
# (`make test-fast`: the inner loop).
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

.PHONY: demo test test-fast setup lint bench clean

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

# The test tiers (README, "Tests"): test-fast is the inner loop (no e2e, slow or gpu tests); test adds e2e
# (the default of pytest's addopts: all but slow and gpu) and lists the 25 slowest tests. Both run one
# pytest-xdist worker per core, at most 8 (TEST_WORKERS=0: one process), whole files per worker, so a module's
# shared fixture is built once and its tests keep their order.
TEST_WORKERS ?= logical
XDIST := -n $(TEST_WORKERS) --maxprocesses 8 --dist loadfile

test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) --durations=25

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m 'not e2e and not slow and not gpu' --durations=10

lint: $(STAMP)
	$(BIN)/ruff check v2v pipelines tests benchmarks
	$(BIN)/ruff format --check v2v pipelines tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	for b in extract maps flow model train generate eval; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
