"""train/optim.py: AdamW with a linear warm-up and a cosine decay, stepped per optimiser step."""

from __future__ import annotations

import math

import pytest
import torch

from motionlcm.train.optim import build_optimizer, warmup_cosine


def test_schedule_shape():
    assert warmup_cosine(0, 10, 110) == 0.0
    assert warmup_cosine(5, 10, 110) == 0.5  # linear warm-up
    assert warmup_cosine(10, 10, 110) == 1.0
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)  # half-way down the cosine
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(500, 10, 110) == pytest.approx(0.0, abs=1e-12)  # held at the end, never rising again
    assert warmup_cosine(110, 10, 110, min_ratio=0.1) == pytest.approx(0.1)
    decay = [warmup_cosine(s, 10, 110) for s in range(10, 111)]
    assert all(b <= a for a, b in zip(decay, decay[1:], strict=False))


def test_no_warm_up_starts_at_the_full_rate():
    assert warmup_cosine(0, 0, 100) == 1.0
    assert warmup_cosine(50, 0, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_the_optimiser_follows_the_schedule_step_by_step():
    weight = torch.nn.Parameter(torch.zeros(3))
    built = build_optimizer([weight], lr=1e-3, warmup_steps=4, total_steps=20, weight_decay=0.01)
    optimizer, schedule = built["optimizer"], built["lr_scheduler"]["scheduler"]
    assert built["lr_scheduler"]["interval"] == "step" and isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    for step in range(20):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * warmup_cosine(step, 4, 20))
        weight.grad = torch.ones(3)
        optimizer.step()
        schedule.step()
    assert weight.detach().lt(0).all()  # it moved against the gradient once the rate was positive
