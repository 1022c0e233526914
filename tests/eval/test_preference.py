"""Preference proxies: counting, ties, complementarity and Wilson intervals."""

import numpy as np
import pytest

from v2v.eval.preference import combine, preference, wilson_interval


def test_wins_ties_and_losses_are_counted() -> None:
    p = preference([1.0, 2.0, 3.0, 5.0], [2.0, 2.01, 1.0, 5.0], lower_is_better=True, tolerance=0.01)
    assert (p.wins, p.ties, p.losses) == (1, 2, 1)
    assert p.rate == pytest.approx((1 + 1) / 4)
    higher = preference([1.0, 3.0], [2.0, 1.0], lower_is_better=False)
    assert (higher.wins, higher.losses) == (1, 1)


def test_preferences_of_a_over_b_and_b_over_a_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50).tolist(), rng.normal(size=50).tolist()
    for tolerance in (0.0, 0.1, 0.5):
        ab, ba = preference(a, b, tolerance=tolerance), preference(b, a, tolerance=tolerance)
        assert ab.rate + ba.rate == pytest.approx(1.0)
        assert ab.low == pytest.approx(1 - ba.high) and ab.high == pytest.approx(1 - ba.low)


def test_wilson_interval_known_values_and_bounds() -> None:
    low, high = wilson_interval(8, 10)  # a textbook value: 0.490 .. 0.943
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == pytest.approx(1.0)
    narrow, wide = wilson_interval(500, 1000), wilson_interval(5, 10)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_combine_pools_questions_and_mismatched_lengths_fail() -> None:
    p = combine([preference([1, 1], [2, 2]), preference([3, 3], [2, 2])])
    assert (p.wins, p.losses, p.questions, p.rate) == (2, 2, 4, 0.5)
    with pytest.raises(ValueError, match="3 scores for A but 2"):
        preference([1, 2, 3], [1, 2])
