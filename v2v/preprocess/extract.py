"""Decode videos into frame folders: resample to a target rate, resize/crop, write JPEG or PNG.

One video → one folder ``<frames>/<video_id>/`` holding ``000000.jpg``, ``000001.jpg``, ... and
``meta.json``. The folder is built under a temporary name and renamed into place when complete,
so a folder that exists is always whole. Decoding streams (memory does not grow with the video's
length) and overlaps with frame encoding on ``writer_threads`` threads (OpenCV releases the GIL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from tqdm import tqdm

from v2v.io.atomic import atomic_dir, write_json
from v2v.io.decode import Decoder, VideoReader
from v2v.io.files import file_sha256, write_manifest
from v2v.io.frames import META_FILE, frame_name, frame_pattern
from v2v.io.video import VIDEO_SUFFIXES, VideoError

log = logging.getLogger(__name__)

META_FORMAT = 3  # bump when meta.json or the frames change meaning: older folders are then re-extracted
SPLITS = ("train", "test")


@dataclass(frozen=True)
class VideoSource:
    """One input video and where its frames go."""

    path: Path
    video_id: str  # folder name under the frames folder: ASCII-safe and unique
    split: Literal["train", "test"]
    part: tuple[float, float] | None = None  # only this share of the video's frames ([start, stop) fractions)


@dataclass(frozen=True)
class FrameSpec:
    """How frames are produced: everything that changes the output of :func:`extract_video`."""

    fps: float | None  # target rate; None keeps the source rate
    width: int | None  # None: source width rounded down to size_multiple
    height: int | None
    resize: Literal["crop", "stretch"]
    size_multiple: int
    frame_format: Literal["jpg", "png"]
    jpeg_quality: int
    png_compression: int
    max_frames: int | None


# file names that stages keep beside the per-video folders (data/frames/index.json, evaluation/report.html, ...):
# a video id never takes one of them, or its folder would replace the stage's own file
RESERVED_IDS = frozenset({"index.json", "meta.json", "report.html", "status.json", "summary.json"})


def safe_video_id(name: str) -> str:
    """ASCII-safe folder name for a video file name; a short hash keeps changed names unique.

    ``"clip 01.mp4"`` → ``"clip_01-3f2a9c"``, ``"walk.mp4"`` → ``"walk"``; a name that would meet a
    stage's own file (``"index.json.mp4"``, see :data:`RESERVED_IDS`) gets the hash too.
    """
    stem = Path(name).stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._") or "video"
    if safe != stem or safe.lower() in RESERVED_IDS:
        safe += "-" + hashlib.sha1(stem.encode("utf-8")).hexdigest()[:6]
    return safe


def _hash_split(name: str) -> float:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def _walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root``, following symlinked folders (each real folder visited once: no loops)."""
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def discover_videos(input_dir: Path, test_fraction: float) -> tuple[list[VideoSource], list[tuple[Path, str]]]:
    """Find the videos under ``input_dir`` (symlinked folders followed) and assign each a split.

    Videos inside ``train/`` or ``test/`` subfolders take that split. Other videos ("loose") are
    held out when a stable hash of their name falls below ``test_fraction``, so adding a video
    never moves another one between splits; when that holds out none of two or more loose
    videos and ``test_fraction > 0``, the one with the smallest hash is held out. A folder of
    one video (no ``train/`` or ``test/`` subfolder) is split in time: its first ``1 - test_fraction`` of
    frames train (``<id>_train``), the rest are held out (``<id>_test``).
    Returns the videos and the files skipped, each with its reason.
    """
    if not input_dir.is_dir():
        raise FileNotFoundError(
            f"{input_dir}: input folder not found; create it and put videos in it, or set extract.input_dir"
        )
    sources: list[VideoSource] = []
    loose: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in _walk_files(input_dir):
        parts = path.relative_to(input_dir).parts
        if any(part.startswith(".") for part in parts):
            if path.suffix.lower() in VIDEO_SUFFIXES:  # a hidden video is worth a word; other dot-files are not
                skipped.append((path, "hidden: its name or a folder above it starts with '.'; rename it to use it"))
            continue
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            skipped.append((path, f"not a video file name (known suffixes: {', '.join(sorted(VIDEO_SUFFIXES))})"))
            continue
        top = parts[0]
        if top in SPLITS and len(parts) > 1:
            sources.append(VideoSource(path, safe_video_id(path.name), top))  # type: ignore[arg-type]
        else:
            loose.append(path)
    scores = {p: _hash_split(p.name) for p in loose}
    held = {p for p in loose if scores[p] < test_fraction}
    if not held and len(loose) >= 2 and test_fraction > 0:
        held = {min(loose, key=lambda p: scores[p])}
    if len(loose) == 1 and not sources and 0 < test_fraction < 1:
        base, cut = safe_video_id(loose[0].name), 1.0 - test_fraction
        sources += [
            VideoSource(loose[0], f"{base}_train", "train", (0.0, cut)),
            VideoSource(loose[0], f"{base}_test", "test", (cut, 1.0)),
        ]
        loose = []
    sources += [VideoSource(p, safe_video_id(p.name), "test" if p in held else "train") for p in loose]
    seen: dict[str, Path] = {}
    for src in sources:
        if src.video_id in seen:
            raise ValueError(
                f"{src.path} and {seen[src.video_id]} map to the same video id {src.video_id!r}; rename one of them"
            )
        seen[src.video_id] = src.path
    return sorted(sources, key=lambda s: s.video_id), skipped


def output_size(src_w: int, src_h: int, spec: FrameSpec) -> tuple[int, int]:
    """(width, height) of the extracted frames."""
    m = spec.size_multiple
    width = spec.width if spec.width is not None else (src_w // m) * m
    height = spec.height if spec.height is not None else (src_h // m) * m
    if width <= 0 or height <= 0:
        raise ValueError(f"source size {src_w}x{src_h} is smaller than extract.size_multiple ({m})")
    return width, height


class FrameResizer:
    """Resize (and centre-crop) frames of one source size to one output size."""

    def __init__(self, src_w: int, src_h: int, out_w: int, out_h: int, mode: Literal["crop", "stretch"]) -> None:
        if mode == "stretch":
            self.scaled = (out_w, out_h)
        else:
            scale = max(out_w / src_w, out_h / src_h)
            self.scaled = (
                max(out_w, math.ceil(src_w * scale - 1e-6)),
                max(out_h, math.ceil(src_h * scale - 1e-6)),
            )
        self.x0 = (self.scaled[0] - out_w) // 2
        self.y0 = (self.scaled[1] - out_h) // 2
        self.out = (out_w, out_h)
        shrinking = self.scaled[0] * self.scaled[1] < src_w * src_h
        self.interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        self.identity = self.scaled == (src_w, src_h) and self.out == (src_w, src_h)

    def geometry(self) -> dict[str, int]:
        """How source pixels map to output pixels: resize to ``scaled`` then crop at ``(x0, y0)``."""
        return {"scaled_width": self.scaled[0], "scaled_height": self.scaled[1], "x0": self.x0, "y0": self.y0}

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.identity:
            return frame
        if (frame.shape[1], frame.shape[0]) != self.scaled:
            frame = cv2.resize(frame, self.scaled, interpolation=self.interpolation)
        return frame[self.y0 : self.y0 + self.out[1], self.x0 : self.x0 + self.out[0]]


TIE = 0.01  # of a source frame interval: timestamps within this of a midpoint count as a tie (to the later frame)


def resample(
    frames: Iterator[tuple[float | None, np.ndarray]], src_fps: float, out_fps: float | None
) -> Iterator[tuple[int, np.ndarray]]:
    """Nearest-in-time resampling by presentation time: output frame i shows the source frame nearest t0 + i / out_fps.

    ``frames`` are ``(time in seconds, frame)``; a missing or non-increasing time is taken as one nominal
    interval after the previous frame, so a constant-rate video gives the same frames as by index. Lower
    rates drop frames, higher rates repeat them, ties go to the later frame, and nothing is shown past the
    last frame's half interval. Yields ``(source frame index, frame)``; ``out_fps=None`` passes frames through.
    """
    if out_fps is None:
        for j, (_, frame) in enumerate(frames):
            yield j, frame
        return
    nominal = 1.0 / src_fps if src_fps > 0 else 1.0 / out_fps
    tie = TIE * nominal
    wanted = 0  # output index
    held: tuple[int, float, np.ndarray] | None = None  # the latest source frame, shown until the next midpoint
    gap = nominal
    start = 0.0
    for j, (time, frame) in enumerate(frames):
        if held is None:
            start = time if time is not None else 0.0
            held = (0, 0.0, frame)
            continue
        t = time - start if time is not None else -math.inf
        if t <= held[1]:
            t = held[1] + nominal
        gap = t - held[1]
        boundary = held[1] + gap / 2 - tie
        while wanted / out_fps < boundary:
            yield held[0], held[2]
            wanted += 1
        held = (j, t, frame)
    if held is not None:
        boundary = held[1] + gap / 2 - tie
        while wanted / out_fps < boundary:
            yield held[0], held[2]
            wanted += 1


def is_variable_rate(times: list[float | None], fps: float) -> bool:
    """Whether the frame intervals differ by more than a quarter of the nominal one (container rounding is far less)."""
    known = [t for t in times if t is not None]
    if len(known) < 3 or len(known) < len(times) or fps <= 0:
        return False
    gaps = np.diff(np.asarray(known, dtype=float))
    if gaps.min() <= 0:
        return False  # times that do not increase are not times: resample() spaces such frames nominally
    return bool(gaps.max() - gaps.min() > 0.25 / fps)


def fingerprint(source_sha256: str, spec: FrameSpec, decoder: Decoder, part: tuple[float, float] | None = None) -> str:
    """Identity of an extraction: same source bytes + same settings + same format → same frames."""
    identity: dict[str, Any] = {
        "source": source_sha256,
        "spec": asdict(spec),
        "decoder": decoder,
        "format": META_FORMAT,
    }
    if part is not None:
        identity["part"] = list(part)
    blob = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def extract_video(
    source: VideoSource,
    dest: Path,
    spec: FrameSpec,
    decoder: Decoder = "auto",  # "auto": OpenCV, then PyAV
    writer_threads: int = 2,  # frame files encoded in parallel with decoding
    source_sha256: str | None = None,  # known hash of the source file (computed when None)
    progress: bool = True,  # show a per-frame progress bar
) -> dict[str, Any]:
    """Extract one video into ``dest`` (replaced whole, atomically); returns its ``meta.json`` content."""
    with VideoReader(source.path, decoder=decoder, bgr=True) as video, atomic_dir(dest) as tmp:
        sha = source_sha256 or file_sha256(source.path)
        info = video.info
        width, height = output_size(info.width, info.height, spec)
        resize = FrameResizer(info.width, info.height, width, height, spec.resize)
        out_fps = spec.fps if spec.fps is not None else (info.fps or 30.0)
        params = (
            [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
            if spec.frame_format == "jpg"
            else [cv2.IMWRITE_PNG_COMPRESSION, spec.png_compression]
        )
        expected = info.frame_count * out_fps / info.fps if info.fps and info.frame_count else None
        first, stop = 0, None  # output frames kept: [first, stop)
        if source.part is not None:
            if expected is None:
                raise VideoError(
                    source.path,
                    "does not state its frame count, so it cannot be split in time; put a second video in a test/ "
                    "subfolder of the input folder instead",
                )
            first, stop = round(source.part[0] * expected), round(source.part[1] * expected)
            expected = stop - first
        if spec.max_frames is not None and expected is not None:
            expected = min(expected, spec.max_frames)
        bar = tqdm(
            total=round(expected) if expected else None,
            desc=source.video_id,
            unit="frame",
            leave=False,
            disable=not progress,
        )
        written = 0
        failures: list[BaseException] = []
        in_flight = threading.BoundedSemaphore(4 * writer_threads)  # bounds memory held by queued frames

        def write(path: Path, frame: np.ndarray) -> None:
            try:
                if not cv2.imwrite(str(path), frame, params):
                    raise OSError(f"cv2.imwrite failed for {path}")
            finally:
                in_flight.release()

        with ThreadPoolExecutor(max_workers=writer_threads) as pool:
            futures: list[Future[None]] = []
            stopped = False  # ended before the source did (max_frames or the end of a part)
            times: list[float | None] = []

            def timed() -> Iterator[tuple[float | None, np.ndarray]]:
                for time, frame in video.timed():
                    times.append(time)
                    yield time, frame

            source_frames: list[int] = []  # the source frame each written frame shows
            for position, (j, frame) in enumerate(resample(timed(), info.fps, spec.fps)):
                if position < first:
                    continue
                if (spec.max_frames is not None and written >= spec.max_frames) or (
                    stop is not None and position >= stop
                ):
                    stopped = True
                    break
                in_flight.acquire()
                name = frame_name(written, f".{spec.frame_format}")
                futures.append(pool.submit(write, tmp / name, np.ascontiguousarray(resize(frame))))
                source_frames.append(j)
                written += 1
                bar.update()
            for future in futures:
                if (exc := future.exception()) is not None:
                    failures.append(exc)
        bar.close()
        if failures:
            raise failures[0]
        if not stopped:
            video.check_complete()
        if written < 2 and source.part is not None:
            raise VideoError(
                source.path,
                f"is too short to split in time: its {source.split} part has {written} frame(s), vid2vid needs at "
                "least 2; use a longer video, or put a second video in a test/ subfolder of the input folder",
            )
        if written < 2:
            raise VideoError(
                source.path,
                f"has {written} frame(s) after resampling; vid2vid needs at least 2 (pairs of consecutive frames)",
            )
        variable = is_variable_rate(times, info.fps)
        if variable and spec.fps is None:
            log.warning(
                "%s: variable frame rate; with extract.fps unset its %d frames are kept as decoded and play at the "
                "average %.3g fps; set extract.fps to resample it by presentation time",
                source.path,
                written,
                out_fps,
            )
        meta = {
            "video_id": source.video_id,
            "source": source.path.name,
            "source_sha256": sha,
            "split": source.split,
            "source_width": info.width,
            "source_height": info.height,
            "source_fps": info.fps,
            "source_frame_count": info.frame_count,
            "decoded_frames": video.frames_read,
            "codec": info.codec,
            "decoder": info.decoder,
            "fps": out_fps,
            "resampled": spec.fps is not None and (variable or abs(spec.fps - info.fps) >= 1e-6),
            "variable_frame_rate": variable,
            "source_frames": source_frames,  # by presentation time; see resample()
            "geometry": resize.geometry(),
            "width": width,
            "height": height,
            "num_frames": written,
            "first_source_frame": first,  # after resampling; > 0 for the held-out part of a video split in time
            "frame_format": spec.frame_format,
            "frame_pattern": frame_pattern(f".{spec.frame_format}"),
            "fingerprint": fingerprint(sha, spec, decoder, source.part),
        }
        write_json(tmp / META_FILE, meta)
        write_manifest(tmp)  # last: the folder is complete
    return meta
