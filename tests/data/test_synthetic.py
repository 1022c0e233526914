"""Synthetic clips: shapes, determinism, and that the ground truth is exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from v2v.data.labels import BY_ID
from v2v.data.synthetic import COCO_KEYPOINTS, FrameTruth, generate_clip

CAR, PERSON = 26, 24
STUFF = (7, 8, 11, 21, 23)


def _clip(kind: str, width: int, height: int, num_frames: int, seed: int) -> list[FrameTruth]:
    return list(generate_clip(kind, width=width, height=height, num_frames=num_frames, seed=seed))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def street() -> list[FrameTruth]:
    return _clip("street", 256, 128, 10, seed=0)


@pytest.fixture(scope="module")
def pose() -> list[FrameTruth]:
    return _clip("pose", 256, 128, 10, seed=0)


def _bilinear(img: np.ndarray, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """Sample an (H, W, C) image at float positions (pixel centres at integers), edge-clamped."""
    h, w = img.shape[:2]
    qx, qy = np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1)
    x0, y0 = np.floor(qx).astype(int), np.floor(qy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (qx - x0)[..., None], (qy - y0)[..., None]
    img = img.astype(np.float64)
    return (
        img[y0, x0] * (1 - fx) * (1 - fy)
        + img[y0, x1] * fx * (1 - fy)
        + img[y1, x0] * (1 - fx) * fy
        + img[y1, x1] * fx * fy
    )


def _backward_warp(prev: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    return _bilinear(prev, np.arange(w)[None, :] + flow[..., 0], np.arange(h)[:, None] + flow[..., 1])


def _warp_error(prev: FrameTruth, cur: FrameTruth) -> np.ndarray:
    """Per-pixel mean abs error (grey levels) of frame t vs frame t-1 warped by the true flow."""
    return np.abs(_backward_warp(prev.rgb, cur.flow) - cur.rgb).mean(axis=-1)


def _class_of(instance: np.ndarray) -> np.ndarray:
    return np.where(instance >= 1000, instance // 1000, instance)


# ------------------------------------------------------------------------------ API, shapes


@pytest.mark.parametrize("kind", ["street", "pose"])
@pytest.mark.parametrize(("width", "height"), [(64, 32), (256, 128)])
def test_shapes_and_dtypes(kind: str, width: int, height: int) -> None:
    frames = _clip(kind, width, height, 3, seed=1)
    assert len(frames) == 3
    for t, f in enumerate(frames):
        assert f.rgb.shape == (height, width, 3) and f.rgb.dtype == np.uint8
        assert f.label.shape == (height, width) and f.label.dtype == np.uint8
        assert f.instance.shape == (height, width) and f.instance.dtype == np.int32
        assert f.flow.shape == (height, width, 2) and f.flow.dtype == np.float32
        assert f.flow_valid.shape == (height, width) and f.flow_valid.dtype == np.bool_
        assert np.isfinite(f.flow).all()
        if t == 0:
            assert not f.flow.any() and not f.flow_valid.any()
        else:
            assert f.flow_valid.mean() > 0.5
        assert f.keypoints, "every scene has at least one articulated figure"
        for fig in f.keypoints:
            assert isinstance(fig["instance_id"], int) and fig["instance_id"] // 1000 == PERSON
            assert len(fig["keypoints"]) == len(COCO_KEYPOINTS) == 17
            for x, y, v in fig["keypoints"]:
                assert isinstance(x, float) and isinstance(y, float) and v in (0, 1, 2)
    if kind == "pose":
        assert [fig["instance_id"] for fig in frames[0].keypoints] == [24000]
    else:
        assert 1 <= len(frames[0].keypoints) <= 3


def test_streaming_and_argument_errors() -> None:
    clip = generate_clip("pose", width=64, height=32, num_frames=1000, seed=0)
    first = next(clip)  # an iterator: nothing is rendered up front
    assert first.rgb.shape == (32, 64, 3)
    with pytest.raises(ValueError, match="kind"):
        generate_clip("forest", width=64, height=32, num_frames=2, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least"):
        generate_clip("street", width=32, height=16, num_frames=2, seed=0)
    with pytest.raises(ValueError, match="num_frames"):
        generate_clip("street", width=64, height=32, num_frames=0, seed=0)


@pytest.mark.parametrize("kind", ["street", "pose"])
def test_deterministic_and_seed_dependent(kind: str) -> None:
    a = _clip(kind, 128, 64, 3, seed=7)
    b = _clip(kind, 128, 64, 3, seed=7)
    c = _clip(kind, 128, 64, 3, seed=8)
    for fa, fb in zip(a, b, strict=True):
        for field in ("rgb", "label", "instance", "flow", "flow_valid"):
            np.testing.assert_array_equal(getattr(fa, field), getattr(fb, field))
        assert fa.keypoints == fb.keypoints
    assert np.abs(a[0].rgb.astype(int) - c[0].rgb.astype(int)).mean() > 5


# ------------------------------------------------------------------------------ labels and instances


@pytest.mark.parametrize("scene", ["street", "pose"])
def test_label_and_instance_agree(scene: str, request: pytest.FixtureRequest) -> None:
    frames: list[FrameTruth] = request.getfixturevalue(scene)
    seen: set[int] = set()
    for f in frames:
        np.testing.assert_array_equal(_class_of(f.instance), f.label)
        things = f.instance >= 1000
        assert all(BY_ID[int(c)].is_thing for c in np.unique(f.label[things]))
        assert not any(BY_ID[int(c)].is_thing for c in np.unique(f.label[~things]))
        seen |= set(np.unique(f.label).tolist())
    if scene == "street":
        assert {7, 8, 11, 23, CAR, PERSON} <= seen
    else:
        assert seen == {11, 8, PERSON}
        assert set(np.unique(frames[0].instance[frames[0].label == PERSON])) == {24000}


def test_street_instances_are_stable(street: list[FrameTruth]) -> None:
    cars_checked = 0
    for prev, cur in itertools.pairwise(street):
        ids = set(np.unique(cur.instance[cur.instance >= 1000]).tolist())
        assert {i // 1000 for i in ids} <= {CAR, PERSON}
        assert all(i % 1000 < 4 for i in ids)
        for car in (i for i in ids if i // 1000 == CAR):
            now = cur.instance == car
            before = prev.instance == car
            if not before.any():
                continue
            flow = cur.flow[now]
            assert flow.std(axis=0).max() < 1e-4, "a car is a pure translation"
            ys, xs = np.nonzero(now)
            touches_border = xs.min() == 0 or xs.max() == cur.rgb.shape[1] - 1
            if touches_border:
                continue
            # the car's pixels at t, moved by the flow, land on its pixels at t-1
            bx = np.rint(xs + flow[0, 0]).astype(int).clip(0, cur.rgb.shape[1] - 1)
            by = np.rint(ys + flow[0, 1]).astype(int)
            assert (prev.instance[by, bx] == car).mean() > 0.9
            assert abs(int(now.sum()) - int(before.sum())) < 0.1 * now.sum()
            cars_checked += 1
    assert cars_checked > 0


@pytest.mark.parametrize("scene", ["street", "pose"])
def test_valid_flow_lands_on_the_same_surface(scene: str, request: pytest.FixtureRequest) -> None:
    frames: list[FrameTruth] = request.getfixturevalue(scene)
    h, w = frames[0].label.shape
    for prev, cur in itertools.pairwise(frames):
        ys, xs = np.nonzero(cur.flow_valid)
        bx = np.rint(xs + cur.flow[ys, xs, 0]).astype(int)
        by = np.rint(ys + cur.flow[ys, xs, 1]).astype(int)
        assert bx.min() >= 0 and bx.max() < w and by.min() >= 0 and by.max() < h
        before, now = prev.instance[by, bx], cur.instance[ys, xs]
        things = now >= 1000
        assert things.any()
        np.testing.assert_array_equal(before[things], now[things])
        # the background is one surface: stuff maps onto stuff (its internal class borders may
        # shift by the nearest-pixel rounding of the label map)
        assert (before[~things] < 1000).all()
        assert (before[~things] == now[~things]).mean() > 0.97


# ------------------------------------------------------------------------------ flow exactness


@pytest.mark.parametrize("scene", ["street", "pose"])
def test_true_flow_reconstructs_the_frame(scene: str, request: pytest.FixtureRequest) -> None:
    frames: list[FrameTruth] = request.getfixturevalue(scene)
    for prev, cur in itertools.pairwise(frames):
        err = _warp_error(prev, cur)
        valid = cur.flow_valid
        assert 0 < (~valid).mean() < 0.1
        assert err[valid].mean() < 2.0
        assert err[~valid].mean() > 3 * err[valid].mean()


def test_true_flow_beats_zero_and_wrong_flow(street: list[FrameTruth]) -> None:
    prev, cur = street[4], street[5]
    valid = cur.flow_valid
    good = _warp_error(prev, cur)[valid].mean()
    zero = np.abs(prev.rgb.astype(float) - cur.rgb).mean(axis=-1)[valid].mean()
    flipped = np.abs(_backward_warp(prev.rgb, -cur.flow) - cur.rgb).mean(axis=-1)[valid].mean()
    assert good < 0.5 * zero
    assert good < 0.5 * flipped


@pytest.mark.parametrize("scene", ["street", "pose"])
def test_true_flow_is_optimal_per_surface(scene: str, request: pytest.FixtureRequest) -> None:
    """Nudging the flow of any one object (or the background) by 0.25 px makes the warp worse."""
    frames: list[FrameTruth] = request.getfixturevalue(scene)
    checked = 0
    for prev, cur in itertools.pairwise(frames[1:5]):
        things = np.where(cur.instance >= 1000, cur.instance, 0)
        for inst in np.unique(things):
            region = (things == inst) & cur.flow_valid
            if region.sum() < 200:
                continue
            base = _warp_error(prev, cur)[region].mean()
            for delta in ((0.25, 0.0), (-0.25, 0.0), (0.0, 0.25), (0.0, -0.25)):
                nudged = cur.flow + np.where(region[..., None], np.float32(delta), np.float32(0))
                err = np.abs(_backward_warp(prev.rgb, nudged) - cur.rgb).mean(axis=-1)[region].mean()
                assert err > base, (inst, delta)
            checked += 1
    assert checked >= 3


def test_disocclusion_behind_moving_cars_is_invalid(street: list[FrameTruth]) -> None:
    """Background revealed behind a car was covered by the car one frame earlier: not valid."""
    revealed_total = 0
    for prev, cur in itertools.pairwise(street):
        h, w = cur.label.shape
        ys, xs = np.mgrid[0:h, 0:w]
        bx = np.rint(xs + cur.flow[..., 0]).astype(int).clip(0, w - 1)
        by = np.rint(ys + cur.flow[..., 1]).astype(int).clip(0, h - 1)
        was_car = _class_of(prev.instance[by, bx]) == CAR
        revealed = np.isin(cur.label, STUFF) & was_car
        revealed_total += int(revealed.sum())
        assert not cur.flow_valid[revealed].any()
        if revealed.any():
            err = _warp_error(prev, cur)
            assert err[revealed].mean() > 3 * err[cur.flow_valid].mean()
    assert revealed_total > 0


def _best_shift(prev: np.ndarray, cur: np.ndarray) -> float:
    """The s minimising |cur(x) - prev(x + s)| over interior columns (coarse-to-fine search)."""
    h, w = cur.shape[:2]
    xs = np.arange(8, w - 8)
    ys = np.arange(h, dtype=float)[:, None]

    def cost(s: float) -> float:
        shifted = _bilinear(prev, np.broadcast_to(xs + s, (h, xs.size)), ys)
        return float(np.abs(shifted - cur[:, xs]).mean())

    best = 0.0
    for step, radius in ((0.25, 4.0), (0.02, 0.3), (0.002, 0.025)):
        candidates = best + np.arange(-radius, radius + step / 2, step)
        best = float(candidates[int(np.argmin([cost(c) for c in candidates]))])
    return best


def test_camera_pan_is_the_background_flow(street: list[FrameTruth]) -> None:
    speeds = []
    for prev, cur in itertools.pairwise(street):
        background = np.isin(cur.label, STUFF) & cur.flow_valid
        dx, dy = cur.flow[background, 0], cur.flow[background, 1]
        assert np.ptp(dx) < 1e-5 and np.abs(dy).max() < 1e-6
        speeds.append(float(dx[0]))
        # independent estimate: the horizontal shift that best aligns the top rows (sky, roofs)
        rows = slice(0, int(0.3 * cur.label.shape[0]))
        assert abs(_best_shift(prev.rgb[rows], cur.rgb[rows]) - dx[0]) < 0.05
    assert 0.2 < abs(speeds[0]) < 3.0
    assert np.ptp(speeds) < 1e-5, "constant pan speed"


# ------------------------------------------------------------------------------ keypoints


def test_pose_keypoints_lie_on_the_figure(pose: list[FrameTruth]) -> None:
    for f in pose:
        (fig,) = f.keypoints
        kps = np.array(fig["keypoints"])
        assert (kps[:, 2] > 0).all(), "the dancer stays inside the frame"
        assert (kps[:, 2] == 2).sum() >= 15
        for x, y, v in kps:
            if v != 2:
                continue
            xi, yi = round(x), round(y)
            patch = f.instance[max(0, yi - 1) : yi + 2, max(0, xi - 1) : xi + 2]
            assert (patch == fig["instance_id"]).any()
            assert f.instance[yi, xi] == fig["instance_id"]
        # a skeleton: head above hips, hips above ankles
        names = {n: kps[i, :2] for i, n in enumerate(COCO_KEYPOINTS)}
        assert names["nose"][1] < names["left_hip"][1] < names["left_ankle"][1]
        assert names["left_shoulder"][0] > names["right_shoulder"][0], "facing the camera: left is image right"


def test_pose_keypoints_move_smoothly_and_follow_the_flow(pose: list[FrameTruth]) -> None:
    h = pose[0].label.shape[0]
    steps = []
    for prev, cur in itertools.pairwise(pose):
        a = np.array(prev.keypoints[0]["keypoints"])
        b = np.array(cur.keypoints[0]["keypoints"])
        step = np.linalg.norm(b[:, :2] - a[:, :2], axis=1)
        steps.append(step)
        assert step.max() < 0.04 * h
        # a visible keypoint moved back by the flow at its pixel lands where it was at t-1
        for (x, y, v), (px, py, _) in zip(b, a, strict=True):
            if v == 2:
                fx, fy = cur.flow[round(y), round(x)]
                assert np.hypot(x + fx - px, y + fy - py) < 0.25
    assert np.mean(steps) > 0.1, "the figure moves"


def test_street_walkers_have_keypoints(street: list[FrameTruth]) -> None:
    for f in street:
        ids = {fig["instance_id"] for fig in f.keypoints}
        present = set(np.unique(f.instance[f.label == PERSON]).tolist())
        assert present <= ids
        for fig in f.keypoints:
            for x, y, v in fig["keypoints"]:
                if v == 2:
                    assert f.instance[round(y), round(x)] == fig["instance_id"]
                inside = 0 <= round(x) < f.label.shape[1] and 0 <= round(y) < f.label.shape[0]
                assert (v > 0) == inside
