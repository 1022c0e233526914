"""Edge maps: Canny with the reference's defaults, automatic thresholds, instance boundaries."""

import numpy as np

from v2v.maps.edges import auto_thresholds, canny, instance_boundaries


def square(size: int = 64, lo: int = 40, hi: int = 200) -> np.ndarray:
    rgb = np.full((size, size, 3), lo, np.uint8)
    rgb[16:48, 16:48] = hi
    return rgb


def test_canny_finds_the_square_outline_and_nothing_else() -> None:
    edges = canny(square())
    assert edges.dtype == bool and edges.shape == (64, 64)
    ys, xs = np.nonzero(edges)
    assert ys.min() >= 14 and ys.max() <= 49 and xs.min() >= 14 and xs.max() <= 49
    assert edges[16:48, 15:17].any(axis=1).all()  # the left side is found along its whole length
    assert not edges[24:40, 24:40].any() and not edges[:10].any()


def test_thresholds_decide_what_counts_as_an_edge() -> None:
    faint = square(lo=100, hi=110)  # a step of 10 grey levels: below the reference's 25.5 / 51
    assert not canny(faint).any()
    assert canny(faint, low=2, high=4).any()
    assert canny(faint, sigma=0, low=2, high=4).sum() >= canny(faint, low=2, high=4).sum() * 0.5


def test_auto_thresholds_follow_the_median() -> None:
    grey = np.full((10, 10), 100, np.uint8)
    assert auto_thresholds(grey, 0.33) == (67.0, 133.0)
    low, high = auto_thresholds(np.zeros((4, 4), np.uint8))
    assert low == 0 and high >= 1  # a black frame still gets a usable band
    assert canny(square(), low=None, high=None).any()


def test_instance_boundaries_mark_both_sides_of_every_id_change() -> None:
    inst = np.full((6, 8), 7, np.int32)
    inst[2:4, 2:5] = 26000
    edge = instance_boundaries(inst)
    assert edge.dtype == bool
    assert edge[2:4, 2:5].all()  # the object's pixels all touch its outline here
    assert edge[1, 2:5].all() and edge[4, 2:5].all() and edge[2:4, 1].all() and edge[2:4, 5].all()
    assert not edge[0].any() and not edge[:, 7].any()
    assert not instance_boundaries(np.full((4, 4), 26000)).any()
