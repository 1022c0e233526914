import subprocess
import sys
from pathlib import Path

import pytest

from v2v.io.atomic import atomic_dir, atomic_path, remove_stale_temporaries, write_json


def test_atomic_path_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
        assert not target.exists()
    assert (target / "a").read_text() == "1"
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".tmp-x-123").mkdir()
    (tmp_path / ".tmp-y.json").write_text("{")
    write_json(tmp_path / "keep.json", {"a": 1})
    removed = remove_stale_temporaries(tmp_path)
    assert len(removed) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_atomic_path_can_write_in_place_inside_a_staged_folder(tmp_path: Path) -> None:
    target = tmp_path / "staged" / "a.npy"
    with atomic_path(target, atomic=False) as path:
        assert path == target  # no temporary: the staged folder is published whole
        path.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    assert [p.name for p in target.parent.iterdir()] == ["a.npy"]


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask_not_the_owner_only_temporaries(
    tmp_path: Path, umask: int, file_mode: int, dir_mode: int
) -> None:
    """Another user or a web server can read a report, a video or a model written through these helpers."""
    script = (
        "import os, stat, sys; from pathlib import Path\n"
        f"os.umask({umask})\n"
        "from v2v.io.atomic import atomic_dir, write_text\n"
        "root = Path(sys.argv[1]); write_text(root / 'report.html', 'ok')\n"
        "with atomic_dir(root / 'folder') as staged: (staged / 'a.txt').write_text('a')\n"
        "print(oct(stat.S_IMODE((root / 'report.html').stat().st_mode)), oct(stat.S_IMODE((root / 'folder').stat().st_mode)))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [oct(file_mode), oct(dir_mode)]
