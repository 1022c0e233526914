"""Orchestration: Prefect flows that drive the same stages as ``dvc repro``."""
