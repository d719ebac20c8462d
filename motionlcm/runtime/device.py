"""Which torch device a command runs on: `--device` checked against what this machine has."""

from __future__ import annotations

import re

import torch

DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps")


def resolve_device(name: str | torch.device | None, option: str = "--device") -> torch.device:
    """`name` as a torch.device (None: CUDA when available, else the CPU). An unknown name, or a CUDA or MPS
    device this machine does not have, is a ValueError naming `option`."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(name).strip()
    if not DEVICE_PATTERN.fullmatch(text):
        raise ValueError(f"{option}: unknown device {text!r}; use cpu, cuda, cuda:N or mps")
    device = torch.device(text)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{option} {text}: no CUDA device is available")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{option} {text}: this machine has {count} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{option} mps: no MPS device is available")
    return device
