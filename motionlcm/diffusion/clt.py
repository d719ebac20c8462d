"""Consistency latent tuning (CLT, MotionLCM V2): steer a one-step student by optimising its initial noise.

No ControlNet: the noise z of one-step generation is optimised with Adam so that the motion the student makes
from it meets the control targets, while a penalty keeps z looking like Gaussian noise (so the student stays
on the motions it knows). Official settings (`configs/modules/noise_optimizer.yaml`, `mld/models/architectures/
dno.py`; shared/docs/motionlcm-reference.md section 7.5): Adam lr 0.1, cosine schedule with 50 warm-up steps,
400 steps, each sample's gradient normalised to unit L2 norm, loss = masked MSE in metres + 100 x the
multiscale autocorrelation penalty of DNO (Karunratanakul et al., "Optimizing Diffusion Noise Can Serve As
Universal Motion Priors", CVPR 2024).

Plain functions over tensors: the caller supplies `render` (noise -> joints, differentiable) and `loss`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

LEARNING_RATE = 0.1  # official noise_optimizer.yaml
WARMUP_STEPS = 50
STEPS = 400
AUTOCORRELATION_WEIGHT = 100.0


def noise_autocorrelation_penalty(noise: Tensor, stop_at: int = 2) -> Tensor:
    """(B,) DNO's multiscale penalty along the token axis (dim 1) of (B, L, D) noise: at each scale, the squared
    mean of the noise times itself shifted by one token, then average neighbouring tokens and repeat until
    `stop_at` tokens are left. White noise scores about 0; smooth or repeated noise scores high. L is
    zero-padded to a power of two (official: padded with fresh noise; zeros keep it deterministic)."""
    size = noise.shape[1]
    padded = 1 << max(size - 1, 0).bit_length()
    x = torch.nn.functional.pad(noise, (0, 0, 0, padded - size))
    loss = noise.new_zeros(noise.shape[0])
    while x.shape[1] > stop_at:
        loss = loss + (x * torch.roll(x, shifts=1, dims=1)).flatten(1).mean(1).pow(2)
        x = x.unflatten(1, (x.shape[1] // 2, 2)).mean(2)
    return loss


def learning_rate_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `steps` (diffusers `get_scheduler("cosine")`)."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = (step - warmup) / max(steps - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def consistency_latent_tuning(
    render: Callable[[Tensor], Tensor],
    loss: Callable[[Tensor], Tensor],
    noise: Tensor,
    steps: int = STEPS,
    lr: float = LEARNING_RATE,
    warmup: int = WARMUP_STEPS,
    autocorrelation_weight: float = AUTOCORRELATION_WEIGHT,
) -> Tensor:
    """Optimise `noise` (B, L, D) so that `loss(render(noise))` ((B,) per sample) falls; returns the tuned noise.

    Each step normalises every sample's gradient to unit L2 norm (official `clip_grad: true`), so samples of
    one batch are tuned independently of each other's loss scale.
    """
    if steps < 1:
        raise ValueError(f"steps: must be >= 1, got {steps}")
    z = noise.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr * learning_rate_factor(step, steps, warmup)
            total = loss(render(z)) + autocorrelation_weight * noise_autocorrelation_penalty(z)
            (grad,) = torch.autograd.grad(total.sum(), z)  # only z: the networks' weights collect nothing
            z.grad = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
            optimizer.step()
    return z.detach()
