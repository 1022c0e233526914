"""Video files: which suffixes count as videos, the error every video problem raises, and encoding.

Decoding is :mod:`v2v.io.decode` (only the extract stage reads videos). Every failure is a
:class:`VideoError` that names the file and says what to do. Frames are ``(H, W, 3) uint8`` RGB arrays.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from v2v.io.atomic import atomic_path

Codec = Literal["h264", "vp9", "mp4v", "mjpg"]

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".y4m", ".ogv"}
)


class VideoError(RuntimeError):
    """A video that cannot be used; the message starts with its path."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    codec: Codec = "h264",
    crf: int = 18,
) -> int:
    """Encode RGB uint8 frames to ``path`` atomically; returns the number of frames written.

    ``h264`` goes through PyAV's libx264 and ``vp9`` (for ``.webm``, which every browser plays) through
    its libvpx-vp9 (yuv420p, so width and height must be even; ``crf`` sets quality, 0 = lossless for
    H.264); ``mp4v`` and ``mjpg`` through OpenCV's writer. Nothing is left at
    ``path`` if encoding fails.
    """
    path = Path(path)
    count = 0
    with atomic_path(path) as tmp:
        if codec in ("h264", "vp9"):
            count = _write_pyav(tmp, frames, fps, crf, codec, path.suffix)
        else:
            count = _write_opencv(tmp, frames, fps, codec)
        if count == 0:
            raise ValueError(f"{path}: no frames to write")
    return count


def _write_pyav(path: Path, frames: Iterable[np.ndarray], fps: float, crf: int, codec: str, suffix: str) -> int:
    from fractions import Fraction

    import av

    count = 0
    container_format = {".webm": "webm", ".mkv": "matroska"}.get(suffix.lower(), "mp4")
    # bitexact: no random track ids or version stamps, so the same frames give the same bytes
    with av.open(str(path), mode="w", format=container_format, container_options={"fflags": "+bitexact"}) as container:
        rate = Fraction(fps).limit_denominator(1001)
        if codec == "vp9":
            stream = container.add_stream("libvpx-vp9", rate=rate)
            stream.options = {
                "crf": str(min(63, crf + 13)),
                "b": "0",
                "deadline": "good",
                "cpu-used": "4",
            }  # CRF 18 → 31
        else:
            stream = container.add_stream("libx264", rate=rate)
            stream.options = {"crf": str(crf), "preset": "medium"}
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            _check_frame(path, frame, count)
            if count == 0:
                if frame.shape[0] % 2 or frame.shape[1] % 2:
                    raise ValueError(f"{path}: H.264 (yuv420p) needs even width and height, got {frame.shape[1::-1]}")
                stream.width, stream.height = frame.shape[1], frame.shape[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            count += 1
        if count:
            container.mux(stream.encode(None))
    return count


def _write_opencv(path: Path, frames: Iterable[np.ndarray], fps: float, codec: str) -> int:
    writer: cv2.VideoWriter | None = None
    count = 0
    try:
        for frame in frames:
            _check_frame(path, frame, count)
            if writer is None:
                fourcc = cv2.VideoWriter.fourcc(*codec.upper() if codec == "mjpg" else codec)
                writer = cv2.VideoWriter(str(path), fourcc, fps, (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise RuntimeError(f"{path}: OpenCV cannot open a {codec} writer")
                with contextlib.suppress(cv2.error):
                    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    return count


def _check_frame(path: Path, frame: np.ndarray, index: int) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{path}: frame {index}: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
