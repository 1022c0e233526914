"""Instance ids tracked across frames: fed the sample's true masks with shuffled ids, ids stay consistent."""

import numpy as np
import pytest

from v2v.data.synthetic import generate_clip
from v2v.maps.tracking import InstanceTracker, _shift, greedy_match, mask_iou


def consistency(instance_maps: list[np.ndarray], seed: int) -> tuple[int, int, int]:
    """(consistent, pairs, object-frames): an object seen in frames t-1 and t must keep its tracked id.

    Each frame's true objects are given to the tracker in a random order with their true ids
    thrown away; a wrong merge (two objects, one id) also fails the test.
    """
    rng = np.random.default_rng(seed)
    tracker = InstanceTracker()
    previous: dict[int, int] = {}
    consistent = pairs = object_frames = 0
    for inst in instance_maps:
        truth_ids = [int(v) for v in np.unique(inst) if v >= 1000]
        rng.shuffle(truth_ids)
        masks = np.stack([inst == v for v in truth_ids]) if truth_ids else np.zeros((0, *inst.shape), bool)
        ids = tracker.update(np.array([v // 1000 for v in truth_ids], np.int64), masks)
        assert len(set(ids.tolist())) == len(ids), "two objects got the same id in one frame"
        assert all(i // 1000 == v // 1000 for i, v in zip(ids, truth_ids, strict=True)), "class changed"
        current = dict(zip(truth_ids, ids.tolist(), strict=True))
        for truth, tracked in current.items():
            object_frames += 1
            if truth in previous:
                pairs += 1
                consistent += previous[truth] == tracked
        previous = current
    return consistent, pairs, object_frames


@pytest.mark.parametrize(("kind", "width", "height"), [("street", 256, 128), ("street", 64, 32), ("pose", 128, 64)])
def test_tracker_keeps_ids_on_true_masks_with_shuffled_ids(kind: str, width: int, height: int) -> None:
    consistent = pairs = 0
    for seed in range(3):
        clip = generate_clip(kind, width=width, height=height, num_frames=40, seed=seed)  # type: ignore[arg-type]
        c, p, _ = consistency([f.instance for f in clip], seed)
        consistent, pairs = consistent + c, pairs + p
    assert pairs > 50
    assert consistent / pairs >= 0.99, f"{consistent}/{pairs} consecutive object-frames kept their id"


def test_new_objects_get_fresh_k_per_class_and_gaps_are_bridged() -> None:
    tracker = InstanceTracker(max_gap=3)
    a = np.zeros((1, 20, 20), bool)
    a[0, 2:8, 2:8] = True
    b = np.zeros((1, 20, 20), bool)
    b[0, 12:18, 12:18] = True
    assert tracker.update(np.array([26]), a).tolist() == [26000]
    assert tracker.update(np.array([26, 24]), np.concatenate([a, b])).tolist() == [26000, 24000]
    assert tracker.update(np.array([26]), b).tolist() == [26001]  # same class, no overlap → new object
    assert tracker.update(np.zeros(0, np.int64), np.zeros((0, 20, 20), bool)).tolist() == []
    assert tracker.update(np.array([26]), a).tolist() == [26000]  # unseen for 2 frames (t=2, 3): continued
    for _ in range(3):
        tracker.update(np.zeros(0, np.int64), np.zeros((0, 20, 20), bool))
    assert tracker.update(np.array([26]), a).tolist() == [26002]  # gap too long: a new id


def test_greedy_match_and_iou() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert greedy_match(iou, 0.3) == [(0, 0)]  # row 1 and column 1 only pair at 0.1
    assert greedy_match(iou, 0.05) == [(0, 0), (1, 1)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []
    m = np.zeros((2, 4, 4), bool)
    m[0, :2] = True
    m[1, 1:3] = True
    np.testing.assert_allclose(mask_iou(m, m), [[1.0, 1 / 3], [1 / 3, 1.0]])
    assert _shift(m[0], 0, 2)[2:].sum() == 8 and _shift(m[0], 5, 0).sum() == 0
