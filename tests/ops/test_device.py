import pytest
import torch

from v2v.ops.device import DeviceError, deterministic_algorithms, resolve_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_an_error_naming_the_key() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="segment.device: 'cuda' was requested but no CUDA GPU"):
        resolve_device("cuda", "segment.device")


def test_amp_dtype_per_device() -> None:
    from v2v.ops.device import amp_dtype, autocast

    assert amp_dtype(torch.device("cpu")) == torch.bfloat16 and amp_dtype(torch.device("cuda")) == torch.float16
    conv = torch.nn.Conv2d(2, 2, 1)
    with autocast(torch.device("cpu"), True):
        assert conv(torch.rand(1, 2, 4, 4)).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), False):
        assert conv(torch.rand(1, 2, 4, 4)).dtype == torch.float32


def test_deterministic_algorithms_are_on_inside_and_restored_after() -> None:
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # CUDA ops without one warn, not stop
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError), deterministic_algorithms(True):
        raise RuntimeError("a failed step")
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms(False):
        assert not torch.are_deterministic_algorithms_enabled()
