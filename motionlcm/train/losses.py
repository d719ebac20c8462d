"""Training losses as plain functions; each returns one value per sequence, the caller reduces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_sequence_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over the feature dims, then over the valid frames of each sequence: (B, T, ...) -> (B,).

    MotionLCM's `mask_loss: true` reduction (official `configs/vae.yaml`; `loss_calculate` in
    `mld/models/modeltype/vae.py`).
    """
    per_frame = values.flatten(2).mean(-1)
    mask = mask.to(per_frame.dtype)
    return (per_frame * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def masked_smooth_l1(pred: Tensor, target: Tensor, mask: Tensor, beta: float = 1.0) -> Tensor:
    """Smooth-L1 (beta 1, as MotionLCM's VAE losses) with the masked per-sequence mean: (B,)."""
    return masked_sequence_mean(F.smooth_l1_loss(pred, target, reduction="none", beta=beta), mask)


def frame_differences(x: Tensor) -> Tensor:
    """Per-frame velocity x[:, t+1] - x[:, t] of a (B, T, ...) sequence: (B, T-1, ...)."""
    return x[:, 1:] - x[:, :-1]


def kl_to_standard_normal(mu: Tensor, std: Tensor) -> Tensor:
    """KL(N(mu, std) || N(0, 1)) averaged over all latent elements of each sample: (B,)."""
    kl = 0.5 * (mu.square() + std.square() - 1.0) - torch.log(std)
    return kl.flatten(1).mean(-1)


def masked_token_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Squared error of (B, L, D) latents averaged over the valid tokens of each sample ((B, L) mask): (B,)."""
    weights = mask[:, :, None].to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1.0)
