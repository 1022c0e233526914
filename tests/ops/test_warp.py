import numpy as np
import pytest
import torch

from v2v.data.synthetic import generate_clip
from v2v.ops.warp import warp


def test_zero_flow_is_identity() -> None:
    image = torch.rand(2, 3, 17, 23)
    torch.testing.assert_close(warp(image, torch.zeros(2, 2, 17, 23)), image, rtol=0, atol=1e-5)
    image64 = image.double()
    torch.testing.assert_close(warp(image64, torch.zeros(2, 2, 17, 23)), image64, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, -2), (-4, 5)])
def test_integer_flow_is_an_exact_shift(dx: int, dy: int) -> None:
    image = torch.rand(1, 3, 20, 30, dtype=torch.float64)
    flow = torch.zeros(1, 2, 20, 30, dtype=torch.float64)
    flow[:, 0], flow[:, 1] = dx, dy
    out = warp(image, flow)
    # out(y, x) = image(y + dy, x + dx) wherever that lies inside the image
    ys, xs = slice(max(0, -dy), 20 - max(0, dy)), slice(max(0, -dx), 30 - max(0, dx))
    src_ys, src_xs = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
    torch.testing.assert_close(out[..., ys, xs], image[..., src_ys, src_xs], rtol=0, atol=1e-12)


def test_half_pixel_flow_averages_neighbours_and_border_clamps() -> None:
    image = torch.arange(5, dtype=torch.float64).view(1, 1, 1, 5).expand(1, 1, 3, 5).contiguous()
    flow = torch.zeros(1, 2, 3, 5, dtype=torch.float64)
    flow[:, 0] = 0.5
    out = warp(image, flow)[0, 0, 1]
    assert out.tolist() == [0.5, 1.5, 2.5, 3.5, 4.0]  # the last pixel samples past the border: clamped


def test_ground_truth_flow_direction_matches_warp() -> None:
    """warp(frame_{t-1}, flow_t) reconstructs frame_t on the synthetic clip's valid pixels."""
    frames = list(generate_clip("street", width=128, height=64, num_frames=3, seed=4))
    to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].double()  # noqa: E731
    prev, cur = frames[1], frames[2]
    warped = warp(to_tensor(prev.rgb), to_tensor(cur.flow))
    error = (warped - to_tensor(cur.rgb)).abs().mean(1)[0].numpy()
    assert error[cur.flow_valid].mean() < 2.0
    # the opposite sign is clearly wrong: the convention is not symmetric
    wrong = (warp(to_tensor(prev.rgb), -to_tensor(cur.flow)) - to_tensor(cur.rgb)).abs().mean(1)[0].numpy()
    assert wrong[cur.flow_valid].mean() > 2 * error[cur.flow_valid].mean()


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="warp expects"):
        warp(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        warp(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 8, 9))
