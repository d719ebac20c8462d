"""Exponential moving average of a module's weights (an optional training feature)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from motionlcm.diffusion.distill import ema_update


class EMA(nn.Module):
    """Holds `average`, a frozen copy of `model` updated as avg <- decay * avg + (1 - decay) * model.

    Buffers (e.g. positional tables) are copied, not averaged. Its state is saved with the system's
    checkpoint, so a resumed run continues the same average.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.average = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_update(self.average, model, self.decay)  # the one EMA rule; refuses a parameter mismatch
        averaged, current = dict(self.average.named_buffers()), dict(model.named_buffers())
        if averaged.keys() != current.keys():
            raise ValueError("ema: the model's buffers differ from the average's")
        for name, buf in current.items():
            averaged[name].copy_(buf)

    def train(self, mode: bool = True) -> EMA:  # the average always stays in eval mode
        super().train(mode)
        self.average.eval()
        return self
