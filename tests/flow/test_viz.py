import numpy as np

from v2v.flow.viz import colour_wheel, flow_to_rgb, mask_to_rgb


def test_flow_colours() -> None:
    flow = np.zeros((2, 3, 2), np.float32)
    flow[0, 0] = (1, 0)  # right: red
    flow[0, 1] = (-1, 0)  # left: cyan
    flow[0, 2] = (0.5, 0)  # right, half speed: pale red
    rgb = flow_to_rgb(flow)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[1, 0]) == (255, 255, 255)  # still: white
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[0, 1]) == (0, 255, 255)
    assert rgb[0, 2, 0] == 255 and 100 < rgb[0, 2, 1] < 160
    assert flow_to_rgb(np.zeros((4, 4, 2), np.float32)).min() == 255  # no division by zero
    assert colour_wheel(32).shape == (32, 32, 3)
    assert tuple(mask_to_rgb(np.array([[True, False]]))[0, 1]) == (220, 30, 30)
