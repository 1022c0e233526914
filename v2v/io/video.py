"""Decoding and encoding videos.

Decoding uses OpenCV's FFmpeg backend, or PyAV where OpenCV cannot read the stream (OpenCV's wheel
has no AV1 decoder; PyAV's wheel ships dav1d). ``decoder="auto"`` tries OpenCV first and records
which decoder was used. Every failure is a :class:`VideoError` that names the file and says what to do.

Frames are ``(H, W, 3) uint8`` arrays, RGB unless ``bgr=True`` is asked for (OpenCV's native order,
which saves two conversions when frames go straight back to ``cv2.imwrite``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from v2v.io.atomic import atomic_path

Decoder = Literal["auto", "opencv", "pyav"]
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
        self.first: np.ndarray | None = first
        self.info = VideoInfo(
            width=first.shape[1],
            height=first.shape[0],
            fps=float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=max(int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            codec=_fourcc_text(self.cap.get(cv2.CAP_PROP_FOURCC)),
            decoder="opencv",
        )

    def frames_bgr(self) -> Iterator[np.ndarray]:
        if self.first is not None:
            first, self.first = self.first, None
            yield first
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield frame

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

    def frames_bgr(self) -> Iterator[np.ndarray]:
        import av

        try:
            for frame in self.container.decode(self.stream):
                yield frame.to_ndarray(format="bgr24")
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
        for frame in self._reader.frames_bgr():
            self.frames_read += 1
            yield frame if self.bgr else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

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
    with av.open(str(path), mode="w", format=container_format) as container:
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
