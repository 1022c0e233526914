import pytest
import torch

from v2v.ops.device import DeviceError, resolve_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_an_error_naming_the_key() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="segment.device: 'cuda' was requested but no CUDA GPU"):
        resolve_device("cuda", "segment.device")
