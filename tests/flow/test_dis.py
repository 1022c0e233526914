"""DIS: the direction of its flow, and its accuracy on exact synthetic flow."""

import itertools

import numpy as np
import pytest
import torch

from v2v.data.synthetic import generate_clip
from v2v.flow.dis import DisFlow
from v2v.flow.truth import endpoint_error
from v2v.ops.warp import warp


def street(width: int, height: int, num_frames: int, seed: int = 7) -> list:
    return list(generate_clip("street", width=width, height=height, num_frames=num_frames, seed=seed))


def test_dis_source_to_target_is_backward_flow_when_called_on_frame_t_then_t_minus_1() -> None:
    frames = street(256, 128, 4)
    dis = DisFlow("medium")
    cur = np.stack([f.rgb for f in frames[1:]])
    prev = np.stack([f.rgb for f in frames[:-1]])
    truth = np.stack([f.flow for f in frames[1:]])
    backward = dis(cur, prev)  # the stage's call
    reversed_call = dis(prev, cur)
    assert backward.shape == truth.shape and backward.dtype == np.float32
    right, wrong = endpoint_error(backward, truth).mean(), endpoint_error(reversed_call, truth).mean()
    assert right < 0.5 and wrong > 3 * right, (right, wrong)
    # and it is the direction the shared warp uses: warp(frame_{t-1}, flow_t) ≈ frame_t
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()  # noqa: E731
    err = (warp(as_t(prev), as_t(backward)) - as_t(cur)).abs().mean()
    err_reversed = (warp(as_t(prev), as_t(reversed_call)) - as_t(cur)).abs().mean()
    assert err < 0.5 * err_reversed


@pytest.mark.parametrize(("width", "height"), [(256, 128), (512, 256)])
def test_dis_medium_epe_below_one_pixel_on_street_clips(width: int, height: int, capsys: pytest.CaptureFixture) -> None:
    frames = street(width, height, 8)
    dis = DisFlow("medium")
    epes = []
    for prev, cur in itertools.pairwise(frames):
        flow = dis(cur.rgb[None], prev.rgb[None])[0]
        epes.append(endpoint_error(flow, cur.flow).mean())
    epe = float(np.mean(epes))
    with capsys.disabled():
        print(f"\nDIS medium EPE on synthetic street {width}x{height}: {epe:.3f} px (all pixels, 7 pairs)")
    assert epe < 1.0


def test_dis_rejects_bad_batches() -> None:
    dis = DisFlow("ultrafast")
    with pytest.raises(ValueError, match="uint8 RGB"):
        dis(np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="differ"):
        dis(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="dis_preset"):
        DisFlow("slow")  # type: ignore[arg-type]
