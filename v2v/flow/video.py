"""One video's flow: stream its frame pairs through a backend onto disk (memory independent of length)."""

from __future__ import annotations

import contextlib
import queue
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from v2v.flow.confidence import ConfidenceSettings, confidence_mask
from v2v.flow.estimator import FlowEstimator
from v2v.flow.io import write_flow_pair
from v2v.flow.truth import FlowScore, load_truth
from v2v.flow.viz import flow_to_rgb, mask_to_rgb
from v2v.io.maps import read_rgb
from v2v.ops.memory import keep_freed_memory


@dataclass
class VideoFlow:
    """What computing one video's flow produced (its files are already written)."""

    num_pairs: int = 0
    seconds: float = 0.0  # wall time for the whole video: reading, estimating, checking, writing
    estimate_seconds: float = 0.0  # time spent inside the backend only, summed over the workers
    valid_pixels: int = 0
    pixels: int = 0
    score: FlowScore | None = None  # against the ground truth, when the dataset has it
    previews: list[list[np.ndarray]] = field(default_factory=list)  # rows: frame t, flow, confidence (, truth)

    @property
    def valid_fraction(self) -> float | None:
        return self.valid_pixels / self.pixels if self.pixels else None


def read_frames(files: Sequence[Path]) -> Iterator[np.ndarray]:
    """Decode frames one at a time; a corrupt frame or one of another size raises ``ValueError`` naming the file."""
    first: tuple[Path, tuple[int, ...]] | None = None
    for path in files:
        rgb = read_rgb(path)
        if first is None:
            first = (path, rgb.shape)
        elif rgb.shape != first[1]:
            raise ValueError(
                f"{path}: frame is {rgb.shape[1]}x{rgb.shape[0]} but {first[0].name} is "
                f"{first[1][1]}x{first[1][0]}; all frames of a video must have one size (re-run the extract stage)"
            )
        yield rgb


def _pair_batches(frames: Iterator[np.ndarray], batch_size: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(t of the first pair, frames t-1 (B, H, W, 3), frames t (B, H, W, 3))`` for consecutive pairs."""
    prev: np.ndarray | None = None
    befores: list[np.ndarray] = []
    afters: list[np.ndarray] = []
    t = 0
    for t, frame in enumerate(frames):
        if prev is not None:
            befores.append(prev)
            afters.append(frame)
            if len(afters) == batch_size:
                yield t - len(afters) + 1, np.stack(befores), np.stack(afters)
                befores, afters = [], []
        prev = frame
    if afters:
        yield t - len(afters) + 1, np.stack(befores), np.stack(afters)


def compute_video_flow(
    files: Sequence[Path],  # the video's frame files, in order
    out_dir: Path,  # where NNNNNN.npy + NNNNNN_valid.png go (a temporary folder, renamed by the caller)
    estimator: FlowEstimator | Sequence[FlowEstimator],  # the backend, or independent instances of it
    settings: ConfidenceSettings,  # confidence checks and thresholds
    batch_size: int = 4,  # frame pairs per backend call (memory grows with it, not with the video)
    truth: Path | None = None,  # the clip's ground-truth folder, or None
    frames_meta: dict[str, Any] | None = None,  # the frames' meta.json (needed with truth)
    preview_at: Sequence[int] = (),  # frames t whose pictures to keep
) -> VideoFlow:
    """Write the backward flow and confidence of frames 1..T-1 of one video into ``out_dir``.

    The main thread decodes the frames and keeps the results in order (ground-truth scores,
    previews); batches of pairs are estimated, checked and written by worker threads, one per
    estimator. With several estimators (e.g. one DIS per CPU core) the batches run side by side
    and OpenCV and torch run single-threaded meanwhile: the parallelism moves from inside each
    pair to across pairs, where it also covers the confidence checks and the writes. At most two
    batches per worker are in flight, so memory stays independent of the video's length; freed
    batch memory is kept for reuse by the process (:func:`v2v.ops.memory.keep_freed_memory`).
    """
    if truth is not None and frames_meta is None:
        raise ValueError("compute_video_flow: ground truth needs the frames' meta.json")
    estimators = [estimator] if not isinstance(estimator, Sequence) else list(estimator)
    if not estimators:
        raise ValueError("compute_video_flow: no estimator given")
    keep_freed_memory()
    free: queue.SimpleQueue[FlowEstimator] = queue.SimpleQueue()
    for item in estimators:
        free.put(item)
    result = VideoFlow(score=FlowScore() if truth is not None else None)
    wanted = set(preview_at)
    started = time.perf_counter()
    name = files[0].parent.name if files else out_dir.name  # the video's frames folder, not the temporary output
    bar = tqdm(total=max(len(files) - 1, 0), desc=f"flow {name}", unit="pair", leave=False)

    def finish(done: _Batch) -> None:  # in the main thread, in frame order
        for i in range(len(done.after)):
            t = done.t0 + i
            true_flow = None
            if truth is not None:
                assert result.score is not None and frames_meta is not None
                true_flow, true_valid = load_truth(truth, t, frames_meta)
                result.score.add(done.backward[i], true_flow, done.valid[i], true_valid)
            if t in wanted:
                result.previews.append(_preview(done.after[i], done.backward[i], done.valid[i], true_flow))
        result.num_pairs += len(done.after)
        result.estimate_seconds += done.estimate_seconds
        result.valid_pixels += int(np.count_nonzero(done.valid))
        result.pixels += done.valid.size
        bar.update(len(done.after))

    pool = ThreadPoolExecutor(max_workers=len(estimators), thread_name_prefix="flow")
    pending: deque[Future[_Batch]] = deque()
    try:
        with single_threaded_kernels(len(estimators) > 1):
            for t0, before, after in _pair_batches(read_frames(files), batch_size):
                pending.append(pool.submit(_flow_batch, free, settings, out_dir, t0, before, after))
                while len(pending) >= 2 * len(estimators):
                    finish(pending.popleft().result())  # re-raises a worker's error
            while pending:
                finish(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _Batch:
    """One batch of frame pairs, estimated, checked and already written by a worker."""

    t0: int  # frame t of the first pair
    after: np.ndarray  # frames t (B, H, W, 3), for previews
    backward: np.ndarray  # (B, H, W, 2)
    valid: np.ndarray  # (B, H, W) bool
    estimate_seconds: float  # time inside the backend


def _flow_batch(
    free: queue.SimpleQueue[FlowEstimator],
    settings: ConfidenceSettings,
    out_dir: Path,
    t0: int,
    before: np.ndarray,
    after: np.ndarray,
) -> _Batch:
    """Estimate, check and write one batch on a free estimator (a worker thread)."""
    estimator = free.get()  # never blocks: there are as many estimators as workers
    try:
        n = len(after)
        tick = time.perf_counter()
        if settings.forward_backward:  # one backend call for both directions (RAFT batches them)
            both = estimator(np.concatenate((after, before)), np.concatenate((before, after)))
            backward, forward = both[:n], both[n:]
        else:
            backward, forward = estimator(after, before), None
        seconds = time.perf_counter() - tick
    finally:
        free.put(estimator)
    assert backward.shape == (*after.shape[:3], 2), backward.shape
    valid = confidence_mask(before, after, backward, forward, settings)
    for i in range(n):
        write_flow_pair(out_dir, t0 + i, backward[i], valid[i])
    return _Batch(t0, after, backward, valid, seconds)


@contextlib.contextmanager
def single_threaded_kernels(enabled: bool) -> Iterator[None]:
    """OpenCV and torch on one thread each while ``enabled`` (restored afterwards)."""
    if not enabled:
        yield
        return
    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(torch_threads)


def _preview(frame: np.ndarray, flow: np.ndarray, valid: np.ndarray, truth: np.ndarray | None) -> list[np.ndarray]:
    """Frame t, its flow, its confidence and (with ground truth) the true flow on the same colour scale."""
    scale = float(np.hypot(truth[..., 0], truth[..., 1]).max()) if truth is not None else None
    row = [frame, flow_to_rgb(flow, scale or None), mask_to_rgb(valid)]
    if truth is not None:
        row.append(flow_to_rgb(truth, scale or None))
    return row
