"""train/ema.py: the EMA copy used by VAE and teacher training (one rule with the distillation target)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from motionlcm.train.ema import EMA


class Net(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.register_buffer("table", torch.zeros(width))


def test_update_moves_the_average_by_one_minus_decay_and_copies_buffers():
    torch.manual_seed(0)
    model = Net()
    ema = EMA(model, decay=0.9)
    before = ema.average.linear.weight.clone()
    with torch.no_grad():
        model.linear.weight.add_(1.0)
        model.table.fill_(7.0)
    ema.update(model)
    torch.testing.assert_close(ema.average.linear.weight, before + 0.1, rtol=0, atol=1e-6)
    assert torch.equal(ema.average.table, torch.full((3,), 7.0))  # buffers are copied, not averaged
    assert not any(p.requires_grad for p in ema.average.parameters())


def test_a_different_model_is_refused_instead_of_half_averaged():
    ema = EMA(Net(3), decay=0.9)
    with pytest.raises(ValueError, match="different parameters"):
        ema.update(nn.Sequential(nn.Linear(3, 3)))
    other = Net(3)
    other.register_buffer("extra", torch.zeros(1))
    with pytest.raises(ValueError, match="buffers differ"):
        ema.update(other)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_decay_must_lie_strictly_between_zero_and_one(decay):
    with pytest.raises(ValueError, match="ema decay"):
        EMA(Net(), decay)


def test_the_average_stays_in_eval_mode():
    ema = EMA(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), decay=0.5)
    ema.train()
    assert ema.training and not ema.average.training
