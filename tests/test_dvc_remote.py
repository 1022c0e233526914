"""DVC beyond `dvc repro`: the default local remote, push/pull on a temporary remote, `dvc exp run -S`."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from v2v.io.files import dvc_md5

REPO = Path(__file__).resolve().parents[1]


def test_default_remote_is_a_local_folder_beside_the_repo(dvc: Callable[..., str]) -> None:
    lines = [line.split() for line in dvc(REPO, "remote", "list").splitlines() if line.strip()]
    defaults = [line for line in lines if line[-1] == "(default)"]
    assert len(defaults) == 1, f"one default remote expected, got {lines}"
    name, url, _ = defaults[0]
    assert name == "local" and Path(url) == (REPO.parent / "v2v-dvc-storage").resolve()
    assert not Path(url).resolve().is_relative_to(REPO), "the remote must not live inside the git checkout"


def test_push_pull_and_exp_run(dvc_project: Path, dvc: Callable[..., str], tmp_path: Path) -> None:
    root = dvc_project
    dvc(root, "repro", "extract")  # sample + extract
    frames = dvc_md5(root / "data/frames")

    remote = tmp_path / "remote"
    dvc(root, "remote", "add", "-d", "tmp", str(remote))
    assert "pushed" in dvc(root, "push")
    assert any(remote.rglob("*.dir")), "the folder listings are in the remote"
    shutil.rmtree(root / "data/frames")
    shutil.rmtree(root / ".dvc/cache")
    dvc(root, "pull", "sample", "extract")  # the later stages never ran: nothing of theirs to pull
    assert dvc_md5(root / "data/frames") == frames
    assert "up to date" in dvc(root, "status", "sample", "extract")

    # an experiment with one param changed from the command line
    out = dvc(root, "exp", "run", "-S", "extract.jpeg_quality=80", "extract")
    assert "Running stage 'extract'" in out and "Running stage 'sample'" not in out
    assert yaml.safe_load((root / "params.yaml").read_text())["extract"]["jpeg_quality"] == 80
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert lock["stages"]["extract"]["params"]["params.yaml"]["extract"]["jpeg_quality"] == 80
    assert dvc_md5(root / "data/frames") != frames  # other JPEG bytes
    shown = json.loads(dvc(root, "exp", "show", "--json").strip().splitlines()[-1])
    assert "80" in json.dumps(shown)

    # a typo'd key: DVC refuses it; forced in with '+', the stage's config check names it
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    for setting, message in (
        ("extract.jpeg_qualty=70", "Could not override 'extract.jpeg_qualty'"),
        ("+extract.jpeg_qualty=70", "extract.jpeg_qualty: unknown key (did you mean 'extract.jpeg_quality'?)"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "run", "-S", setting, "extract"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0 and message in result.stdout + result.stderr, result.stderr[-2000:]
