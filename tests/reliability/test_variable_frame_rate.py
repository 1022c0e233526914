"""A variable-frame-rate video is resampled by its presentation times, so it plays at the right speed."""

from __future__ import annotations

import fractions
import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support import frame_spec

from v2v.io.frames import frame_paths, read_meta
from v2v.preprocess.extract import VideoSource, extract_video

# a burst at 30 fps, a pause of 0.1 s per frame, another burst: 12 frames over 0.7 s
TIMES_MS = [0, 33, 67, 100, 200, 300, 400, 433, 467, 500, 600, 700]


def write_vfr(path: Path) -> Path:
    """An H.264 MP4 whose frame i is flat grey 20*i, shown at TIMES_MS[i] (a millisecond time base)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.time_base = fractions.Fraction(1, 1000)
        for i, ms in enumerate(TIMES_MS):
            frame = av.VideoFrame.from_ndarray(np.full((32, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("decoder", ["opencv", "pyav"])
def test_variable_frame_rate_is_resampled_by_time(tmp_path: Path, decoder: str) -> None:
    src = write_vfr(tmp_path / "vfr.mp4")
    meta = extract_video(
        VideoSource(src, "vfr", "train"),
        tmp_path / "vfr",
        frame_spec(fps=10.0),
        decoder=decoder,
        progress=False,  # type: ignore[arg-type]
    )
    # by time: 0.0 .. 0.7 s at 10 fps is 8 frames; by index (12 frames at the 20 fps average) it would be 6
    want = [int(np.argmin([abs(ms - 100 * i) for ms in TIMES_MS])) for i in range(8)]
    assert meta["variable_frame_rate"] and meta["resampled"]
    assert meta["num_frames"] == 8 and meta["source_frames"] == want == [0, 3, 4, 5, 6, 9, 10, 11]
    greys = [int(cv2.imread(str(p))[16, 32, 0]) for p in frame_paths(tmp_path / "vfr")]
    assert np.abs(np.array(greys) - 20 * np.array(want)).max() <= 4  # the frames are the ones recorded
    assert read_meta(tmp_path / "vfr") == meta


def test_variable_frame_rate_kept_as_decoded_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = write_vfr(tmp_path / "vfr.mp4")
    with caplog.at_level(logging.WARNING):
        meta = extract_video(VideoSource(src, "vfr", "train"), tmp_path / "vfr", frame_spec(fps=None), progress=False)
    assert meta["num_frames"] == 12 and meta["variable_frame_rate"] and not meta["resampled"]
    assert "variable frame rate" in caplog.text and "extract.fps" in caplog.text and str(src) in caplog.text


def test_constant_frame_rate_is_not_called_variable(tmp_path: Path, make_video) -> None:
    src = make_video(tmp_path / "cfr.mp4", num_frames=9, width=64, height=32, fps=30.0)
    meta = extract_video(VideoSource(src, "cfr", "train"), tmp_path / "cfr", frame_spec(fps=10.0), progress=False)
    assert not meta["variable_frame_rate"] and meta["source_frames"] == [0, 3, 6]
