from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from v2v.io.decode import VideoReader, read_video
from v2v.io.video import VideoError, write_video


@pytest.mark.parametrize(("codec", "suffix"), [("h264", ".mp4"), ("mp4v", ".mp4"), ("mjpg", ".avi")])
def test_write_then_read_round_trip(tmp_path: Path, frames_factory: Callable, codec: str, suffix: str) -> None:
    frames = frames_factory(10, 96, 64)
    path = tmp_path / f"clip{suffix}"
    assert write_video(path, frames, fps=12.0, codec=codec) == 10
    with VideoReader(path) as video:
        decoded = list(video)
        video.check_complete()
        assert video.info.width == 96 and video.info.height == 64
        assert video.info.fps == pytest.approx(12.0)
        assert video.info.frame_count == 10
    assert len(decoded) == 10
    error = np.abs(np.stack(decoded).astype(float) - np.stack(frames)).mean()
    assert error < 8.0, f"{codec}: mean abs error {error:.2f} grey levels"
    # RGB order is kept: a red-only frame stays red
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 200
    write_video(tmp_path / "red.mp4", [red, red], fps=5, codec="h264")
    assert read_video(tmp_path / "red.mp4")[0].mean(axis=(0, 1)).argmax() == 0


def test_pyav_decoder_and_bgr(tmp_path: Path, make_video: Callable) -> None:
    path = make_video(tmp_path / "a.mp4", num_frames=6)
    rgb = read_video(path, decoder="pyav")
    assert rgb.shape == (6, 64, 96, 3)
    with VideoReader(path, decoder="opencv", bgr=True) as video:
        bgr = np.stack(list(video))
    assert np.abs(bgr[..., ::-1].astype(int) - rgb).mean() < 2.0


def test_av1_falls_back_to_pyav(tmp_path: Path, frames_factory: Callable) -> None:
    """OpenCV's wheel has no AV1 decoder; 'auto' must still read AV1 (through PyAV) and say so."""
    path = tmp_path / "av1.mp4"
    try:
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libsvtav1", rate=10)
            stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
            for frame in frames_factory(8, 96, 64):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))
    except (av.FFmpegError, ValueError) as exc:  # pragma: no cover - depends on the PyAV build
        pytest.skip(f"this PyAV build cannot encode AV1: {exc}")
    with VideoReader(path) as video:
        frames = list(video)
        assert video.info.codec in {"av1", "libdav1d", "av01", "libaom-av1"} or "av1" in video.info.codec
    assert len(frames) == 8


def test_bad_files_name_the_file(tmp_path: Path, make_video: Callable) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    broken = tmp_path / "broken link.mp4"
    broken.symlink_to(tmp_path / "nowhere.mp4")
    good = make_video(tmp_path / "good.mp4", num_frames=20)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {
        empty: "is empty (0 bytes)",
        text: "cannot decode",
        folder: "is not a regular file",
        broken: "does not exist (a broken symbolic link)",
        tmp_path / "missing.mp4": "does not exist",
        truncated: "cannot decode",
    }
    for path, message in cases.items():
        with pytest.raises(VideoError) as info:
            VideoReader(path)
        assert str(path) in str(info.value) and message in str(info.value)


def test_truncated_stream_is_detected_after_decoding(tmp_path: Path, make_video: Callable) -> None:
    """A container that still opens but lost its tail (AVI/MJPEG) decodes fewer frames than declared."""
    good = make_video(tmp_path / "good.avi", num_frames=40, codec="mjpg")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with VideoReader(cut) as video:
        count = sum(1 for _ in video)
        assert 0 < count < 40
        with pytest.raises(VideoError, match="looks truncated"):
            video.check_complete()


def test_writer_rejects_bad_frames_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    with pytest.raises(ValueError, match="even width and height"):
        write_video(path, [np.zeros((33, 32, 3), np.uint8)], fps=5)
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) uint8"):
        write_video(path, [np.zeros((32, 32), np.uint8)], fps=5)
    with pytest.raises(ValueError, match="no frames"):
        write_video(path, [], fps=5)
    assert list(tmp_path.iterdir()) == []
