"""Save and restore every random number generator with a checkpoint, so a resumed run continues exactly."""

from __future__ import annotations

import random

import numpy as np
import torch


def _numpy_state() -> dict:
    """numpy's global state in plain types (checkpoints stay loadable with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _set_numpy_state(state: dict) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))


class RNGStateMixin:
    """LightningModule mixin: puts the python/numpy/torch(/cuda) RNG states into checkpoints and back."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = {
            "python": random.getstate(),
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._pending_rng_states = checkpoint.get("rng_states")

    def on_train_start(self) -> None:
        """Apply restored states just before training resumes (after anything else that draws numbers)."""
        states = getattr(self, "_pending_rng_states", None)
        self._pending_rng_states = None
        if not states:
            return
        random.setstate(states["python"])
        _set_numpy_state(states["numpy"])
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
