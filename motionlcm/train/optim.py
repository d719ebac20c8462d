"""Optimiser and learning-rate schedule shared by every training system (AdamW + warm-up + cosine)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """LR multiplier: linear warm-up from 0, then half a cosine down to `min_ratio` at `total_steps`.

    The shape of diffusers' `get_scheduler("cosine")` that MotionLCM uses (1000 warm-up steps,
    `lr_warmup_steps` in every official training config, e.g. `configs/vae.yaml`, `configs/mld_t2m.yaml`).
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    warmup_steps: int,
    total_steps: int,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> dict:
    """AdamW with the warm-up + cosine schedule, stepped every optimiser step, in Lightning's dict form.

    The multi-tensor (`foreach`) update is used on every device (PyTorch picks it only for CUDA tensors by
    default); it computes the same update with a few fused calls instead of a loop over parameters.
    """
    optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
