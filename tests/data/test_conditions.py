"""Condition maps of the label tasks: one-hot labels plus instance boundaries."""

import pytest
import torch

from v2v.data.conditions import condition_maps


def test_condition_maps_are_one_hot_plus_instance_boundaries() -> None:
    label = torch.zeros(1, 2, 6, 8, dtype=torch.int64)
    label[..., 2:5, 3:6] = 4
    instance = label * 1000
    maps = condition_maps(label, instance, 6)
    assert maps.shape == (1, 2, 7, 6, 8)
    torch.testing.assert_close(maps[:, :, :6].sum(2), torch.ones(1, 2, 6, 8))
    assert maps[0, 0, 4, 3, 4] == 1 and maps[0, 0, 0, 3, 4] == 0
    boundary = maps[0, 0, 6]
    assert boundary[3, 4] == 0  # inside the object
    assert boundary[2, 4] == 1 and boundary[1, 4] == 1  # both sides of the top edge
    assert boundary[0, 0] == 0
    assert condition_maps(label, None, 6).shape == (1, 2, 6, 6, 8)
    with pytest.raises(ValueError, match="label ids"):
        condition_maps(label, instance, 4)
    with pytest.raises(ValueError, match="instance: expected shape"):
        condition_maps(label, instance[:, :1], 6)
