"""Decoding videos: only the extract stage reads them, so a change here reruns that stage alone.

OpenCV's FFmpeg backend, or PyAV where OpenCV cannot read the stream (OpenCV's wheel has no AV1
decoder; PyAV's wheel ships dav1d). ``decoder="auto"`` tries OpenCV first and records which decoder
was used. Every failure is a :class:`~v2v.io.video.VideoError` that names the file and says what to do.

Frames are ``(H, W, 3) uint8`` arrays, RGB unless ``bgr=True`` is asked for (OpenCV's native order,
which saves two conversions when frames go straight back to ``cv2.imwrite``). :meth:`VideoReader.timed`
also gives each frame's presentation time in seconds, as the container states it: a variable-frame-rate
video is resampled by those times, not by frame index.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from v2v.io.video import VideoError

Decoder = Literal["auto", "opencv", "pyav"]


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video stream (``frame_count`` may be an estimate)."""

    width: int
    height: int
    fps: float
    frame_count: int  # as declared by the container; 0 when unknown
    codec: str  # FourCC or codec name, e.g. "h264", "av01", "mp4v"
    decoder: Literal["opencv", "pyav"]


def check_readable(path: str | os.PathLike[str]) -> Path:
    """Fail early, with a clear message, on a missing, unreadable or empty file."""
    path = Path(path)
    if not path.exists():
        hint = " (a broken symbolic link)" if path.is_symlink() else ""
        raise VideoError(path, f"file does not exist{hint}; check the path and extract.input_dir")
    if not path.is_file():
        raise VideoError(path, "is not a regular file; put video files (not folders) in the input folder")
    try:
        with path.open("rb") as handle:
            head = handle.read(1)
    except OSError as exc:
        raise VideoError(path, f"cannot be read ({exc.strerror}); fix its permissions") from None
    if not head:
        raise VideoError(path, "is empty (0 bytes); the copy or download probably failed, replace the file")
    return path


def _fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip("\x00 ").lower() if text.isprintable() else str(code)


class _OpenCVReader:
    def __init__(self, path: Path) -> None:
        self.cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self.cap.isOpened():
            raise VideoError(path, "OpenCV cannot open it")
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise VideoError(path, "OpenCV opened it but decoded no frame")
        self.first: tuple[float | None, np.ndarray] | None = (self._time(), first)
        self.info = VideoInfo(
            width=first.shape[1],
            height=first.shape[0],
            fps=float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=max(int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            codec=_fourcc_text(self.cap.get(cv2.CAP_PROP_FOURCC)),
            decoder="opencv",
        )

    def _time(self) -> float | None:
        """Presentation time of the frame just read (OpenCV reports 0 for every frame when it has none)."""
        msec = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        return msec / 1000.0 if msec == msec else None  # NaN: unknown

    def frames_bgr(self) -> Iterator[tuple[float | None, np.ndarray]]:
        if self.first is not None:
            first, self.first = self.first, None
            yield first
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield self._time(), frame

    def close(self) -> None:
        self.cap.release()


class _PyAVReader:
    def __init__(self, path: Path) -> None:
        import av

        try:
            self.container = av.open(str(path))
            self.stream = self.container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError) as exc:
            raise VideoError(path, f"PyAV cannot open it ({exc})") from None
        self.stream.thread_type = "AUTO"
        self.path = path
        ctx = self.stream.codec_context
        rate = self.stream.average_rate or self.stream.guessed_rate or 0
        self.info = VideoInfo(
            width=int(ctx.width),
            height=int(ctx.height),
            fps=float(rate),
            frame_count=int(self.stream.frames or 0),
            codec=str(ctx.name),
            decoder="pyav",
        )
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise VideoError(path, "PyAV found a video stream without a frame size")

    def frames_bgr(self) -> Iterator[tuple[float | None, np.ndarray]]:
        import av

        try:
            for frame in self.container.decode(self.stream):
                yield frame.time, frame.to_ndarray(format="bgr24")
        except av.FFmpegError:
            return  # a damaged tail ends the stream; the caller compares counts

    def close(self) -> None:
        self.container.close()


class VideoReader:
    """Stream the frames of one video: ``with VideoReader(path) as video: for frame in video: ...``.

    After iteration, ``frames_read`` holds the number of decoded frames; :meth:`check_complete`
    raises when the file holds fewer frames than its container declares (a truncated file).
    """

    def __init__(self, path: str | os.PathLike[str], decoder: Decoder = "auto", bgr: bool = False) -> None:
        self.path = check_readable(path)
        self.bgr = bgr
        self.frames_read = 0
        self._reader: _OpenCVReader | _PyAVReader
        attempts: list[str] = []
        order = {"auto": ("opencv", "pyav"), "opencv": ("opencv",), "pyav": ("pyav",)}[decoder]
        for name in order:
            try:
                self._reader = _OpenCVReader(self.path) if name == "opencv" else _PyAVReader(self.path)
                break
            except VideoError as exc:
                attempts.append(exc.problem)
        else:
            raise VideoError(
                self.path,
                "cannot decode: not a video, a damaged file, or a codec the decoders here lack ("
                + "; ".join(attempts)
                + "). Re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`",
            )
        self.info = self._reader.info

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.timed():
            yield frame

    def timed(self) -> Iterator[tuple[float | None, np.ndarray]]:
        """``(presentation time in seconds or None when the container has none, frame)`` in display order."""
        for time, frame in self._reader.frames_bgr():
            self.frames_read += 1
            yield time, frame if self.bgr else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def check_complete(self) -> None:
        """Raise if decoding stopped well short of the declared frame count (a truncated file)."""
        declared = self.info.frame_count
        tolerance = max(2, round(0.02 * declared))
        if declared and self.frames_read < declared - tolerance:
            raise VideoError(
                self.path,
                f"decoded only {self.frames_read} of the {declared} frames its container declares; "
                "the file looks truncated or damaged: replace or re-encode it",
            )

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_video(path: str | os.PathLike[str], decoder: Decoder = "auto") -> np.ndarray:
    """All frames of a (short) video as ``(T, H, W, 3)`` RGB uint8: for tests and small clips only."""
    with VideoReader(path, decoder) as video:
        frames = list(video)
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
