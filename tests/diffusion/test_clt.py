"""Consistency latent tuning: DNO's noise penalty and the tuning loop, as plain functions."""

from __future__ import annotations

import torch

from motionlcm.diffusion.clt import consistency_latent_tuning, learning_rate_factor, noise_autocorrelation_penalty


def test_penalty_is_small_for_white_noise_and_large_for_smooth_noise():
    torch.manual_seed(0)
    white = torch.randn(8, 16, 32)
    smooth = white[:, :1].expand(-1, 16, -1).contiguous()  # one token repeated
    assert noise_autocorrelation_penalty(white).max() < 0.01
    assert noise_autocorrelation_penalty(smooth).min() > 0.5
    assert noise_autocorrelation_penalty(torch.randn(2, 25, 8)).shape == (2,)  # 25 tokens: padded to 32


def test_schedule_warms_up_then_decays_to_zero():
    assert learning_rate_factor(0, 100, 10) == 0.1
    assert learning_rate_factor(9, 100, 10) == 1.0
    assert abs(learning_rate_factor(99, 100, 10)) < 1e-3


def test_tuning_meets_a_target_through_a_fixed_network_and_stays_noise_like():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(16 * 4, 3), torch.nn.Tanh())
    target = torch.tensor([[0.5, -0.2, 0.1], [-0.3, 0.4, 0.0]])
    noise = torch.randn(2, 16, 4)

    def loss(out):
        return ((out - target) ** 2).sum(1)

    before = loss(net(noise))
    tuned = consistency_latent_tuning(net, loss, noise, steps=150, lr=0.05, warmup=10)
    assert (loss(net(tuned)) < 0.05 * before).all()
    assert noise_autocorrelation_penalty(tuned).max() < 0.05
    assert not any(p.grad is not None for p in net.parameters())  # the network collects no gradients
