"""Fixtures of the map-stage tests: the module's tiny sample, sampled and extracted once per module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from v2v.paths import ProjectPaths
from v2v.stages import extract, sample


@pytest.fixture(scope="module")
def base_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's ``config()`` sample, sampled and extracted (a module defines ``config``)."""
    cfg = request.module.config()
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "project"
    sample.run(cfg, ProjectPaths.at(root))
    extract.run(cfg, ProjectPaths.at(root))
    return root


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> ProjectPaths:
    """A private copy of ``base_project`` that a test may change."""
    shutil.copytree(base_project, tmp_path / "project")
    return ProjectPaths.at(tmp_path / "project")
