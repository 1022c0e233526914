"""Pose maps: COCO-17 → BODY_25, rendering (each limb's colour on the limb's pixels), JSON, smoothing."""

import numpy as np

from v2v.data.synthetic import COCO_KEYPOINTS
from v2v.maps.pose import (
    BODY25_NAMES,
    COCO_TO_BODY25,
    LIMB_COLORS,
    LIMBS,
    Person,
    coco_to_body25,
    line_thickness,
    people_from_json,
    people_json,
    render_pose,
    smooth_tracks,
)

# a T-pose with well separated limbs on a 256 x 256 canvas (COCO order)
T_POSE = {
    "nose": (128, 40),
    "left_eye": (140, 28),
    "right_eye": (116, 28),
    "left_ear": (160, 34),
    "right_ear": (96, 34),
    "left_shoulder": (160, 70),
    "right_shoulder": (96, 70),
    "left_elbow": (196, 70),
    "right_elbow": (60, 70),
    "left_wrist": (236, 70),
    "right_wrist": (20, 70),
    "left_hip": (150, 140),
    "right_hip": (106, 140),
    "left_knee": (170, 190),
    "right_knee": (86, 190),
    "left_ankle": (180, 240),
    "right_ankle": (76, 240),
}


def t_pose(confidence: float = 0.9) -> np.ndarray:
    return np.array([[*T_POSE[name], confidence] for name in COCO_KEYPOINTS], np.float64)


def body25_name(coco_name: str) -> str:
    if "_" not in coco_name:
        return coco_name.capitalize()
    side, part = coco_name.split("_")
    return side[0].upper() + part.capitalize()


def test_coco_to_body25_maps_every_named_point_and_derives_neck_and_midhip() -> None:
    for c, b in COCO_TO_BODY25.items():
        assert BODY25_NAMES[b] == body25_name(COCO_KEYPOINTS[c])
    coco = t_pose()
    body = coco_to_body25(coco)
    assert body.shape == (25, 3)
    np.testing.assert_allclose(body[1], [128, 70, 0.9])  # Neck = mid-shoulders
    np.testing.assert_allclose(body[8], [128, 140, 0.9])  # MidHip = mid-hips
    assert (body[19:, 2] == 0).all()  # COCO has no feet
    coco[5, 2] = 0.0
    assert coco_to_body25(coco)[1, 2] == 0  # no neck without both shoulders


def test_rendering_puts_each_limbs_colour_on_its_pixels() -> None:
    canvas = render_pose([Person(t_pose())], 256, 256, threshold=0.01, line_width=6)
    assert canvas.shape == (256, 256, 3) and canvas.dtype == np.uint8
    body = coco_to_body25(t_pose())
    drawn = 0
    for (a, b), color in zip(LIMBS, LIMB_COLORS, strict=True):
        if body[a, 2] == 0 or body[b, 2] == 0:
            assert not (canvas == color).all(axis=2).any(), f"limb {a}-{b} has no points but its colour is drawn"
            continue
        drawn += 1
        for f in np.linspace(0.3, 0.7, 9):  # the middle of the limb, away from joints shared with other limbs
            x, y = np.rint(body[a, :2] + f * (body[b, :2] - body[a, :2])).astype(int)
            assert tuple(canvas[y, x]) == color, f"limb {BODY25_NAMES[a]}-{BODY25_NAMES[b]} at {(x, y)}"
    assert drawn == len(LIMBS) - 6  # every limb but the six of the feet


def test_low_confidence_points_are_skipped_and_thickness_scales() -> None:
    kp = t_pose()
    kp[COCO_KEYPOINTS.index("left_wrist"), 2] = 0.005
    canvas = render_pose([Person(kp)], 256, 256, threshold=0.01)
    forearm = LIMB_COLORS[LIMBS.index((6, 7))]
    assert not (canvas == forearm).all(axis=2).any()
    assert (canvas == LIMB_COLORS[LIMBS.index((5, 6))]).all(axis=2).any()  # the upper arm is still drawn
    assert line_thickness(512, 1024, 6) == 6 and line_thickness(128, 256, 6) == 2 and line_thickness(8, 8, 6) == 1
    thin = render_pose([Person(t_pose())], 256, 256, line_width=2).any(axis=2).sum()
    thick = render_pose([Person(t_pose())], 256, 256, line_width=12).any(axis=2).sum()
    assert thick > 2 * thin


def test_json_is_openpose_like_and_round_trips() -> None:
    people = [Person(t_pose(), 0.8, 3)]
    data = people_json(people, height=128, width=256)
    (entry,) = data["people"]
    assert len(entry["pose_keypoints_2d"]) == 75 and len(entry["coco17_keypoints_2d"]) == 51
    assert entry["pose_keypoints_2d"][3:6] == [128.0, 70.0, 0.9]  # Neck
    assert data["width"] == 256 and data["height"] == 128 and entry["person_id"] == 3
    back = people_from_json(data)
    np.testing.assert_array_equal(back[0].keypoints, people[0].keypoints)


def test_smoothing_follows_tracked_people_only() -> None:
    a, b = t_pose(), t_pose()
    b[:, 0] += 10
    frames = [[Person(a, 1, 0)], [Person(b, 1, 0), Person(b.copy(), 1, -1)]]
    out = smooth_tracks(frames, 0.5)
    np.testing.assert_allclose(out[1][0].keypoints[:, 0], a[:, 0] + 5)  # halfway
    np.testing.assert_array_equal(out[1][1].keypoints, b)  # untracked: unchanged
    assert smooth_tracks(frames, 0.0) is frames
