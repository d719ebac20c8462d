"""Every choice that differs between MotionLCM V1 and V2, in one place.

The official repository keeps V1 in `configs_v1/` and V2 in `configs/` (MotionLCM README, "V2"); the
numbers below come from those files and from the V2 release notes (the MotionLCM-V2 report and Hugging Face
blog linked from the official README; tabulated in docs/distillation.md). Model configs, the LCM scheduler,
the distillation system and the pipeline's default guidance all read them from here; nothing else in the
package spells a version's numbers.

This module imports nothing from the package: it sits at the bottom of the layer stack.
"""

from __future__ import annotations

import math
from typing import Any

VERSIONS = ("v1", "v2")
DEFAULT = "v2"

# The two roles are the teacher and the student everywhere (code, configs, CLI, model folders); MLD and
# MotionLCM call them "mld" and "lcm", and earlier model folders and commands used those names. Accepted
# wherever users type them, and read from old model.json files.
ROLE_ALIASES = {"mld": "teacher", "lcm": "student"}

# Motion VAE (configs_v1/modules/motion_vae.yaml, configs/modules/motion_vae.yaml): V1 is MLD's single
# 256-d latent token without projections; V2 is the dataclass default (16 x 32 latents, width 256 with
# pre/post projections), so it overrides nothing.
VAE = {
    "v1": {"latent_size": 1, "latent_dim": 256, "hidden_dim": 256, "force_pre_post_proj": False},
    "v2": {},
}

# Latent denoiser (configs_v1/modules/denoiser.yaml, configs/modules/denoiser.yaml): V1 adds a ReLU on the
# text vector; V2 is the dataclass default.
DENOISER = {
    "v1": {"latent_size": 1, "latent_dim": 256, "hidden_dim": 256, "force_pre_post_proj": False, "text_act": "relu"},
    "v2": {},
}

# Consistency distillation (official `configs_v1/motionlcm_t2m.yaml`, `configs/motionlcm_t2m.yaml`): N solver
# points on the T = 1000 grid and the pseudo-Huber constant c.
DISTILLATION = {
    "v1": {"num_ddim_timesteps": 50, "huber_c": 0.001},
    "v2": {"num_ddim_timesteps": 10, "huber_c": 0.5},
}

# LCM sampling (official `configs_v1/modules/scheduler_lcm.yaml`, `configs/modules/scheduler_lcm.yaml`).
# V1: diffusers' default LCM spacing over the N = 50 grid. V2: hand-picked timesteps per number of steps;
# the 4-step schedule repeats 299 on purpose (the third step re-noises to t = 299 and the fourth denoises
# from there again).
SAMPLING = {
    "v1": {"original_inference_steps": 50, "timesteps_step_map": None},
    "v2": {"original_inference_steps": 10, "timesteps_step_map": {1: [799], 2: [699, 299], 4: [699, 399, 299, 299]}},
}

# Classifier-free guidance scale s at sampling time: one value for V1, one per number of steps for V2.
GUIDANCE = {
    "v1": 7.5,
    "v2": {1: 8.0, 2: 12.5, 4: 13.5},
}


def check_version(version: str, where: str = "preset") -> str:
    """`version` if it is a known preset, else ValueError naming `where`."""
    if version not in VERSIONS:
        raise ValueError(f"{where}: {version!r} is not one of {', '.join(VERSIONS)}")
    return version


def sampling_guidance(version: str, steps: int) -> float:
    """The default CFG scale of a student of `version` sampled in `steps` steps (V2: the 1-step value for
    step counts the release did not tune)."""
    scale = GUIDANCE[check_version(version)]
    return float(scale.get(steps, scale[1]) if isinstance(scale, dict) else scale)


def guidance_table(table: Any, where: str, max_steps: int = 1000) -> dict[int, float]:
    """A {step count: CFG scale} table (a model folder's `meta.sampling.guidance`, a distillation config's
    `sampling_guidance`; JSON keys are strings) as ints and floats; a malformed entry is a ValueError naming
    `where` and the entry. `max_steps`: the training schedule's timesteps."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected {{steps: scale}}, got {table!r}")
    tuned = {}
    for key, value in table.items():
        try:
            steps, scale = int(key), float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {key!r}: {value!r} is not a step count and a scale") from None
        if not (1 <= steps <= max_steps and math.isfinite(scale) and scale > 0):
            raise ValueError(f"{where}: {key!r}: {value!r} is out of range (steps 1..{max_steps}, scale > 0)")
        tuned[steps] = scale
    return tuned


def w_range_of(value: Any, where: str) -> tuple[float, float] | None:
    """A distilled guidance range `[w_min, w_max]` (LCM form, w = scale - 1; a model folder's
    `meta.sampling.w_range`) as two floats, None when absent; anything else is a ValueError naming `where`."""
    if value is None:
        return None
    try:
        low, high = (float(w) for w in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ValueError(f"{where}: expected [w_min, w_max], got {value!r}")
    return low, high
