import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import frame_spec as spec

from v2v.io.frames import frame_paths
from v2v.io.video import VideoError
from v2v.preprocess.extract import (
    FrameResizer,
    VideoSource,
    discover_videos,
    extract_video,
    output_size,
    resample,
    safe_video_id,
)


def shown(frames: list[tuple[float | None, np.ndarray]], src_fps: float, out_fps: float | None) -> list[int]:
    """The source indices resample() shows, checked against the frames it yields."""
    out = list(resample(iter(frames), src_fps, out_fps))
    assert all(int(frame[0]) == j for j, frame in out)
    return [j for j, _ in out]


def test_resample_is_nearest_in_time() -> None:
    frames = [(i / 30, np.full((1,), i)) for i in range(30)]
    assert shown(frames, 30.0, 10.0) == list(range(0, 30, 3))
    up = [(i / 10, np.full((1,), i)) for i in range(5)]
    assert shown(up, 10.0, 20.0) == [0, 1, 1, 2, 2, 3, 3, 4, 4]  # ties go to the later frame; nothing past the last
    assert shown(frames[:4], 25.0, None) == [0, 1, 2, 3]


def test_resample_follows_presentation_times_not_indices() -> None:
    times = [0.0, 0.1, 0.2, 0.5, 0.6]  # a 0.3 s pause between frames 2 and 3
    frames = [(t, np.full((1,), i)) for i, t in enumerate(times)]
    assert shown(frames, 5 / 0.6, 10.0) == [0, 1, 2, 2, 3, 3, 4]  # 0.4 s is nearer 0.5 than 0.2
    offset = [(t + 7.25, f) for t, f in frames]  # a stream that starts late is measured from its first frame
    assert shown(offset, 5 / 0.6, 10.0) == [0, 1, 2, 2, 3, 3, 4]
    unknown = [(None, np.full((1,), i)) for i in range(6)]  # no times, or times that do not increase: nominal rate
    assert shown(unknown, 30.0, 10.0) == [0, 3]
    assert shown([(0.0, f) for _, f in unknown], 30.0, 10.0) == [0, 3]


def test_resizer_crop_keeps_aspect_and_centres() -> None:
    frame = np.zeros((100, 300, 3), np.uint8)
    frame[:, 140:160] = 255  # a white band in the middle
    out = FrameResizer(300, 100, 64, 64, "crop")(frame)  # scale 0.64 (height-limited) → 192x64, crop x 64..128
    assert out.shape == (64, 64, 3)
    assert out[:, 27:37].mean() > 250 and out[:, :20].mean() < 5 and out[:, 44:].mean() < 5
    stretched = FrameResizer(300, 100, 64, 64, "stretch")(frame)  # x scale 0.213: band at 29.9..34.1
    assert stretched.shape == (64, 64, 3) and stretched[:, 31:33].mean() > 200 and stretched[:, :24].mean() < 5


def test_output_size_defaults_to_source_rounded_down() -> None:
    assert output_size(1000, 500, spec(width=None, height=None)) == (992, 480)
    assert output_size(1000, 500, spec()) == (64, 32)
    with pytest.raises(ValueError, match="smaller than extract.size_multiple"):
        output_size(20, 20, spec(width=None, height=None))


def test_safe_ids() -> None:
    assert safe_video_id("walk.mp4") == "walk"
    odd = safe_video_id("my clip é 01.mp4")
    assert odd.startswith("my_clip_e_01-") and odd.isascii()
    assert safe_video_id("a b.mp4") != safe_video_id("a_b.mp4")
    for reserved in ("index.json.mp4", "Report.html.mov", "summary.json.mkv", "meta.json.mp4"):
        video_id = safe_video_id(reserved)  # never one of the stages' own file names
        assert video_id.lower().startswith(Path(reserved).stem.lower() + "-") and len(video_id) > len(reserved) - 4


def test_discover_splits(tmp_path: Path) -> None:
    for rel in ["train/a.mp4", "test/b.mov", "c.mp4", "d.mkv", "readme.txt", ".hidden/e.mp4"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    sources, skipped = discover_videos(tmp_path, test_fraction=0.0)
    splits = {s.video_id: s.split for s in sources}
    assert splits == {"a": "train", "b": "test", "c": "train", "d": "train"}
    reasons = {p.name: reason for p, reason in skipped}  # every skipped video or stray file, with its reason
    assert set(reasons) == {"readme.txt", "e.mp4"}
    assert reasons["readme.txt"].startswith("not a video file name") and reasons["e.mp4"].startswith("hidden")
    held = discover_videos(tmp_path, test_fraction=0.01)[0]
    assert sum(s.split == "test" for s in held) == 2  # b, plus one loose video so the test split is never empty
    (tmp_path / "train" / "c.mp4").write_bytes(b"x")
    with pytest.raises(ValueError, match="same video id 'c'"):
        discover_videos(tmp_path, test_fraction=0.0)


def test_symlinked_split_folders_are_followed_once(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "clips").mkdir(parents=True)
    (elsewhere / "clips" / "walk.mp4").write_bytes(b"x")
    (elsewhere / "clips" / "loop").symlink_to(elsewhere / "clips")  # a loop: must not recurse forever
    root = tmp_path / "videos"
    root.mkdir()
    (root / "train").symlink_to(elsewhere / "clips")
    sources, _ = discover_videos(root, test_fraction=0.0)
    assert [(s.video_id, s.split) for s in sources] == [("walk", "train")]


def test_extract_video_frames_and_meta(tmp_path: Path, make_video: Callable, frames_factory: Callable) -> None:
    src = make_video(tmp_path / "in" / "clip.mp4", num_frames=30, width=128, height=64, fps=30.0)
    meta = extract_video(VideoSource(src, "clip", "train"), tmp_path / "out" / "clip", spec(fps=10.0), progress=False)
    assert meta["num_frames"] == 10 and meta["fps"] == 10.0
    assert (meta["width"], meta["height"]) == (64, 32)
    assert meta["source_fps"] == pytest.approx(30.0) and meta["decoded_frames"] == 30
    assert meta["codec"] == "h264" and meta["decoder"] == "opencv"
    files = frame_paths(tmp_path / "out" / "clip")
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(10)]
    # frame i is the source frame 3i, downscaled 2x (128x64 → 64x32 keeps the aspect: no crop)
    truth = frames_factory(30, 128, 64)
    for i in (0, 5, 9):
        got = cv2.cvtColor(cv2.imread(str(files[i])), cv2.COLOR_BGR2RGB).astype(float)
        want = cv2.resize(truth[3 * i], (64, 32), interpolation=cv2.INTER_AREA).astype(float)
        assert np.abs(got - want).mean() < 6.0
    on_disk = json.loads((tmp_path / "out" / "clip" / "meta.json").read_text())
    assert on_disk == meta


def test_extract_video_max_frames_and_jpeg(tmp_path: Path, make_video: Callable) -> None:
    src = make_video(tmp_path / "clip.mp4", num_frames=12)
    meta = extract_video(
        VideoSource(src, "clip", "test"), tmp_path / "clip", spec(frame_format="jpg", max_frames=5), progress=False
    )
    assert meta["num_frames"] == 5 and meta["frame_pattern"] == "%06d.jpg"
    assert len(list((tmp_path / "clip").glob("*.jpg"))) == 5


def test_geometry_maps_ground_truth_like_frames(tmp_path: Path, make_video: Callable, frames_factory: Callable) -> None:
    from v2v.io.frames import apply_geometry, source_frame

    src = make_video(tmp_path / "clip.mp4", num_frames=9, width=160, height=64, fps=30.0)
    meta = extract_video(VideoSource(src, "clip", "train"), tmp_path / "clip", spec(fps=10.0), progress=False)
    assert meta["resampled"] and meta["geometry"] == {"scaled_width": 80, "scaled_height": 32, "x0": 8, "y0": 0}
    truth = frames_factory(9, 160, 64)
    files = frame_paths(tmp_path / "clip")
    for i, path in enumerate(files):
        j = source_frame(meta, i)
        assert j == 3 * i
        want = apply_geometry(truth[j], meta).astype(float)
        got = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(float)
        assert np.abs(got - want).mean() < 6.0
    labels = np.repeat(np.arange(160, dtype=np.uint8)[None], 64, axis=0)
    mapped = apply_geometry(labels, meta, nearest=True)
    assert mapped.shape == (32, 64) and set(np.unique(mapped)) <= set(range(160))
    with pytest.raises(ValueError, match="expected a 160x64 array"):
        apply_geometry(labels[:, :100], meta)


def test_a_single_loose_video_is_split_in_time(tmp_path: Path, make_video: Callable) -> None:
    src = make_video(tmp_path / "in" / "talk.mp4", num_frames=20, width=128, height=64, fps=10.0)
    sources, _ = discover_videos(tmp_path / "in", test_fraction=0.25)
    assert [(s.video_id, s.split, s.part) for s in sources] == [
        ("talk_test", "test", (0.75, 1.0)),
        ("talk_train", "train", (0.0, 0.75)),
    ]
    whole = extract_video(VideoSource(src, "talk", "train"), tmp_path / "whole", spec(), progress=False)
    metas = {s.video_id: extract_video(s, tmp_path / s.video_id, spec(), progress=False) for s in sources}
    assert metas["talk_train"]["num_frames"] == 15 and metas["talk_test"]["num_frames"] == 5
    assert metas["talk_test"]["first_source_frame"] == 15 and metas["talk_train"]["first_source_frame"] == 0
    assert len({whole["fingerprint"], metas["talk_train"]["fingerprint"], metas["talk_test"]["fingerprint"]}) == 3
    full = [cv2.imread(str(p)) for p in frame_paths(tmp_path / "whole")]
    tail = [cv2.imread(str(p)) for p in frame_paths(tmp_path / "talk_test")]
    assert all(np.array_equal(a, b) for a, b in zip(full[15:], tail, strict=True))  # the same frames, not re-timed
    # a second video (or a test/ folder) means no time split
    make_video(tmp_path / "in" / "test" / "other.mp4", num_frames=4)
    assert [s.part for s in discover_videos(tmp_path / "in", test_fraction=0.25)[0]] == [None, None]


def test_a_video_too_short_to_split_in_time_says_so(tmp_path: Path, make_video: Callable) -> None:
    make_video(tmp_path / "in" / "blink.mp4", num_frames=4)
    held_out = [s for s in discover_videos(tmp_path / "in", test_fraction=0.25)[0] if s.split == "test"]
    with pytest.raises(VideoError, match=r"too short to split in time: its test part has 1 frame"):
        extract_video(held_out[0], tmp_path / "out", spec(), progress=False)
    assert not (tmp_path / "out").exists()
