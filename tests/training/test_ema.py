"""The moving average of the weights: one step is the documented formula; buffers follow the trained net."""

import pytest
import torch

from v2v.training.ema import ema_copy, recalibrate_batch_norm, update_ema


def test_update_moves_parameters_by_the_decay_and_copies_buffers() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    averaged = ema_copy(net)
    assert not any(p.requires_grad for p in averaged.parameters())
    before = {k: v.clone() for k, v in averaged.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(2, 3, 8, 8))  # moves the running statistics
    update_ema(averaged, net, decay=0.75)
    trained = dict(net.named_parameters())
    for name, value in averaged.named_parameters():
        torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * trained[name].detach())
    for name, value in averaged.named_buffers():
        assert torch.equal(value, dict(net.named_buffers())[name])
    update_ema(averaged, net, decay=0.0)  # decay 0: the average is the trained network
    assert all(
        torch.equal(a, b) for a, b in zip(averaged.state_dict().values(), net.state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="decay"):
        update_ema(averaged, net, decay=1.0)


def test_batch_norm_statistics_are_re_estimated_for_the_average() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.3)).eval()
    batches = [{"x": torch.randn(2, 3, 8, 8) * (i + 1) + i} for i in range(3)]
    used = recalibrate_batch_norm([net], lambda batch: net(batch["x"]), iter(batches))
    assert used == 3
    norm = net[1]
    assert isinstance(norm, torch.nn.BatchNorm2d)
    with torch.no_grad():
        means = [net[0](b["x"]).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(norm.running_mean, torch.stack(means).mean(0))  # the plain mean over the batches
    assert norm.momentum == 0.3 and not net.training  # settings restored
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert recalibrate_batch_norm([plain], lambda batch: plain(batch["x"]), iter(batches)) == 0
