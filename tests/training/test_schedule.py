import itertools

import pytest

from v2v.training.schedule import ClipSchedule, lr_at


def test_clip_length_doubles_to_the_cap() -> None:
    schedule = ClipSchedule(start_frames=4, double_every=5, max_frames=30)
    assert [schedule.frames_at(e) for e in (0, 4, 5, 9, 10, 15, 100)] == [4, 4, 8, 8, 16, 30, 30]
    assert ClipSchedule(6, 0, 6).frames_at(50) == 6
    with pytest.raises(ValueError):
        ClipSchedule(8, 1, 4)


def test_lr_constant_then_linear_decay() -> None:
    rates = [lr_at(2e-4, e, epochs=6, decay_epochs=3) for e in range(6)]
    assert rates[:3] == [2e-4] * 3
    assert rates[3] == pytest.approx(1.5e-4) and rates[5] == pytest.approx(0.5e-4)
    assert all(a > b for a, b in itertools.pairwise(rates[2:]))
    assert lr_at(1.0, 3, epochs=4, decay_epochs=0) == 1.0
