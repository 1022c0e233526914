"""Flow storage: float16 round trip, one reader, clear errors."""

from pathlib import Path

import numpy as np
import pytest

from v2v.flow.io import flow_path, read_flow_pair, valid_path, write_flow_pair


def test_float16_round_trip_within_005_px(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    flow = rng.uniform(-60, 60, (32, 48, 2)).astype(np.float32)
    valid = rng.random((32, 48)) > 0.3
    write_flow_pair(tmp_path, 3, flow, valid)
    assert flow_path(tmp_path, 3).name == "000003.npy" and valid_path(tmp_path, 3).name == "000003_valid.png"
    assert np.load(flow_path(tmp_path, 3)).dtype == np.float16
    back, back_valid = read_flow_pair(tmp_path, 3)
    assert back.dtype == np.float32 and back_valid.dtype == np.bool_
    assert np.abs(back - flow).max() < 0.05
    assert (back_valid == valid).all()


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="from frame 1 on"):
        write_flow_pair(tmp_path, 0, np.zeros((4, 4, 2), np.float32), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="differ in size"):
        write_flow_pair(tmp_path, 1, np.zeros((4, 4, 2), np.float32), np.ones((4, 5), bool))
    with pytest.raises(FileNotFoundError, match="000002.npy"):
        read_flow_pair(tmp_path, 2)
    write_flow_pair(tmp_path, 1, np.zeros((4, 4, 2), np.float32), np.ones((4, 4), bool))
    flow_path(tmp_path, 1).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="000001.npy"):
        read_flow_pair(tmp_path, 1)
