"""Exponential moving average of a module's weights (an optional training feature)."""

from __future__ import annotations

import copy

import torch
from torch import nn


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
        for avg, param in zip(self.average.parameters(), model.parameters(), strict=False):
            avg.lerp_(param.detach(), 1.0 - self.decay)
        for avg, buf in zip(self.average.buffers(), model.buffers(), strict=False):
            avg.copy_(buf)

    def train(self, mode: bool = True) -> EMA:  # the average always stays in eval mode
        super().train(mode)
        self.average.eval()
        return self
