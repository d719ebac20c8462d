"""Multistep latent consistency sampling (Luo et al. 2023, "Latent Consistency Models", Algorithm 3).

A re-statement of `diffusers.LCMScheduler` (same config names, timesteps and numerics), plus MotionLCM-V2's
hand-picked `timesteps_step_map` (official `mld/models/schedulers/scheduling_lcm.py`, values in
`configs/modules/scheduler_lcm.yaml`): V1 samples at [999], [999, 499], [999, 759, 499, 259];
V2 at [799], [699, 299], [699, 399, 299, 299].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motionlcm import presets
from motionlcm.diffusion.schedules import (
    add_noise,
    alphas_cumprod,
    config_kwargs,
    make_betas,
)

BETA_SCHEDULES = ("linear", "scaled_linear")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")

# Options of diffusers' LCMScheduler that this class does not implement. `from_config` accepts a diffusers
# config dict when they hold these values (the diffusers defaults), and rejects it otherwise.
_DIFFUSERS_INERT_OPTIONS: dict[str, Any] = {
    "trained_betas": None,
    "clip_sample": False,
    "thresholding": False,
    "rescale_betas_zero_snr": False,
}
# diffusers options that have no effect in LCM sampling with the inert options above.
_DIFFUSERS_IGNORED_OPTIONS = (
    "clip_sample_range",
    "dynamic_thresholding_ratio",
    "sample_max_value",
    "timestep_spacing",
)


def embedded_guidance(scale: float) -> float:
    """The guidance value a student embeds for CFG scale s: w = s − 1.

    The official sampler embeds `guidance_scale - 1` (`mld/models/modeltype/mld.py`, `_diffusion_reverse`).
    Distillation guides the teacher in the LCM form cond + w · (cond − uncond), which is CFG with s = 1 + w.
    """
    return scale - 1.0


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}")


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like `x`, drawn on the generator's device (as diffusers' `randn_tensor`)."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


SIGMA_DATA = 0.5  # σ_data of the LCM boundary condition (diffusers hard-codes the same value)
TIMESTEP_SCALING = 10.0  # τ = 10 t in the boundary condition (diffusers `timestep_scaling`)


def boundary_scalings(
    timesteps: int | Tensor, sigma_data: float = SIGMA_DATA, timestep_scaling: float = TIMESTEP_SCALING
) -> tuple[Tensor, Tensor]:
    """LCM boundary-condition scalings (LCM eq. 9 with τ = timestep_scaling · t; official
    `train_motionlcm.py`, `scalings_for_boundary_conditions`).

        c_skip(τ) = σ_d² / (τ² + σ_d²),   c_out(τ) = τ / √(τ² + σ_d²)

    so f(z, 0) = z exactly: c_skip(0) = 1 and c_out(0) = 0. For t ≥ 19 they are ≈ (0, 1) (c_skip ≈ 6.9e-6
    at t = 19, ≈ 2.6e-7 at t = 99). The one implementation: `LCMScheduler` and the distillation loss (distill.py) call it.

    Args:
        timesteps: int, 0-d or (B,) timesteps.
        sigma_data: σ_d (0.5).
        timestep_scaling: the factor applied to t (10).

    Returns:
        (c_skip, c_out), each shaped like `timesteps`, float32 (or the dtype of a floating `timesteps`).
    """
    t = torch.as_tensor(timesteps)
    scaled = t * timestep_scaling if t.is_floating_point() else t.float() * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


@dataclass
class LCMSchedulerOutput:
    """Output of `LCMScheduler.step`.

    Args:
        prev_sample: the input of the next step (the denoised value re-noised to the next timestep), or the
            denoised value itself on the last step; shape of the sample.
        denoised: the consistency function's estimate f(z_t, t) of the clean latents, shape of the sample.
    """

    prev_sample: Tensor
    denoised: Tensor


class LCMScheduler:
    """Multistep consistency sampling: denoise with the consistency function, re-noise to the next timestep.

    The config is the constructor signature; `config` holds it as a dict and `from_config` rebuilds it (also
    from a diffusers `LCMScheduler` config).

    Args:
        num_train_timesteps: number of training timesteps T.
        beta_start: β at t = 0.
        beta_end: β at t = T − 1.
        beta_schedule: "scaled_linear" (√β linear, latent diffusion) or "linear".
        original_inference_steps: N of the distillation grid t_n = (n + 1) · (T // N) − 1; the default
            schedule picks `num_inference_steps` evenly spaced indices of it (V1: 50).
        set_alpha_to_one: ᾱ "before" t = 0 is 1 if True, else ᾱ_0. Only reachable through a negative
            timestep, so it never changes MotionLCM's results (MotionLCM: False; diffusers' default: True).
        steps_offset: kept for diffusers config compatibility; LCM timesteps do not use it (nor do diffusers').
        prediction_type: what the model predicts: "epsilon", "sample" (x0) or "v_prediction".
        timestep_scaling: τ = timestep_scaling · t in the boundary scalings (10).
        sigma_data: σ_d of the boundary scalings (0.5; a constant in diffusers, a config entry here).
        timesteps_step_map: MotionLCM-V2's explicit schedules {num_inference_steps: [t, ...]}; when given,
            `original_inference_steps` is not used for sampling.
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        original_inference_steps: int = 50,
        set_alpha_to_one: bool = False,
        steps_offset: int = 0,
        prediction_type: str = "epsilon",
        timestep_scaling: float = TIMESTEP_SCALING,
        sigma_data: float = SIGMA_DATA,
        timesteps_step_map: dict[int, list[int]] | None = None,
    ) -> None:
        _check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
        _check_choice("prediction_type", prediction_type, PREDICTION_TYPES)
        if not 1 <= original_inference_steps <= num_train_timesteps:
            raise ValueError(
                f"original_inference_steps must be in [1, {num_train_timesteps}], got {original_inference_steps}"
            )
        if timesteps_step_map is not None:
            timesteps_step_map = _checked_step_map(timesteps_step_map, num_train_timesteps)
        self.config: dict[str, Any] = {
            "num_train_timesteps": num_train_timesteps,
            "beta_start": beta_start,
            "beta_end": beta_end,
            "beta_schedule": beta_schedule,
            "original_inference_steps": original_inference_steps,
            "set_alpha_to_one": set_alpha_to_one,
            "steps_offset": steps_offset,
            "prediction_type": prediction_type,
            "timestep_scaling": timestep_scaling,
            "sigma_data": sigma_data,
            "timesteps_step_map": timesteps_step_map,
        }
        self.betas = make_betas(beta_schedule, num_train_timesteps, beta_start, beta_end)
        self.alphas_cumprod = alphas_cumprod(self.betas)
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.init_noise_sigma = 1.0
        # Runtime state, set by set_timesteps and step (not part of the config).
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.long)
        self._schedule: list[int] = []
        self._step_index: int | None = None

    # ----------------------------------------------------------------------------------------------
    # presets and config

    @classmethod
    def v1(cls, **overrides: Any) -> LCMScheduler:
        """MotionLCM-V1: diffusers' default LCM spacing over the N = 50 distillation grid."""
        return cls(**{**presets.SAMPLING["v1"], **overrides})

    @classmethod
    def v2(cls, **overrides: Any) -> LCMScheduler:
        """MotionLCM-V2: the hand-picked timesteps of `presets.SAMPLING["v2"]` (distilled on the N = 10 grid)."""
        preset = presets.SAMPLING["v2"]
        step_map = {n: list(ts) for n, ts in preset["timesteps_step_map"].items()}  # a copy per scheduler
        return cls(**{**preset, "timesteps_step_map": step_map, **overrides})

    @classmethod
    def from_preset(cls, version: str, **overrides: Any) -> LCMScheduler:
        """`v1()` or `v2()` by name (`presets.VERSIONS`); an unknown name is a ValueError."""
        return cls.v1(**overrides) if presets.check_version(version) == "v1" else cls.v2(**overrides)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LCMScheduler:
        """Build a scheduler from `config` (ours, possibly JSON-loaded, or a diffusers LCMScheduler config).

        Keys starting with "_" (diffusers metadata) are ignored; diffusers-only options are accepted at
        their default values. Any other unknown key raises ValueError. JSON's string keys of
        `timesteps_step_map` are turned back into ints.
        """
        kwargs = config_kwargs(
            config, set(cls().config), _DIFFUSERS_IGNORED_OPTIONS, _DIFFUSERS_INERT_OPTIONS, cls.__name__
        )
        return cls(**kwargs)

    @property
    def num_train_timesteps(self) -> int:
        """T, the number of training timesteps (t ranges over 0..T-1)."""
        return self.config["num_train_timesteps"]

    @property
    def step_index(self) -> int | None:
        """Position of the next `step` in `self.timesteps` (None before the first step)."""
        return self._step_index

    def __len__(self) -> int:
        return self.num_train_timesteps

    def restart(self) -> None:
        """Step through the same timesteps again from the first (an unrolled sampler graph, called again)."""
        self._step_index = 0

    def scale_model_input(self, sample: Tensor, timestep: int | Tensor | None = None) -> Tensor:
        """Identity: the model takes the sample unscaled (kept for a common scheduler API)."""
        return sample

    # ----------------------------------------------------------------------------------------------
    # timesteps

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Choose the sampling timesteps (in decreasing order, possibly repeated) and reset the step index.

        Without a map (V1, diffusers): the distillation grid t_n = (n + 1) · k − 1, k = T // N
        (N = `original_inference_steps`), reversed, at indices floor(linspace(0, N, n, endpoint=False)).
        With `timesteps_step_map` (V2): the map's entry for `num_inference_steps`.

        Args:
            num_inference_steps: n.
            device: where to put `self.timesteps`.
        """
        step_map = self.config["timesteps_step_map"]
        if step_map is not None:
            if num_inference_steps not in step_map:
                raise ValueError(
                    f"num_inference_steps={num_inference_steps} is not in timesteps_step_map; "
                    f"choose one of {sorted(step_map)}"
                )
            timesteps = np.asarray(step_map[num_inference_steps], dtype=np.int64)
        else:
            timesteps = self._default_timesteps(num_inference_steps)
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.from_numpy(timesteps).to(device=device, dtype=torch.long)
        self._schedule = [int(t) for t in timesteps]  # the same as Python ints: `step` does no tensor work on it
        self._step_index = None

    def _default_timesteps(self, num_inference_steps: int) -> np.ndarray:
        """diffusers' LCM schedule: evenly spaced indices into the reversed distillation grid."""
        original_steps = self.config["original_inference_steps"]
        if not 1 <= num_inference_steps <= original_steps:
            raise ValueError(
                f"num_inference_steps must be in [1, original_inference_steps={original_steps}], "
                f"got {num_inference_steps}"
            )
        k = self.num_train_timesteps // original_steps
        grid = (np.arange(1, original_steps + 1) * k - 1)[::-1]  # 999, 979, ..., 19 for N = 50
        indices = np.floor(np.linspace(0, original_steps, num=num_inference_steps, endpoint=False))
        return grid[indices.astype(np.int64)].copy()

    def _init_step_index(self, timestep: int) -> None:
        # As diffusers: the position of the first timestep passed to `step`; if it occurs more than once,
        # its second occurrence (diffusers' rule for starting mid-schedule). V1/V2 schedules start unrepeated.
        positions = [i for i, t in enumerate(self._schedule) if t == timestep]
        if not positions:
            raise ValueError(f"timestep {timestep} is not in the schedule {self._schedule}")
        self._step_index = positions[1] if len(positions) > 1 else positions[0]

    # ----------------------------------------------------------------------------------------------
    # the consistency parameterisation

    def get_scalings_for_boundary_condition(self, timestep: int | Tensor) -> tuple[Tensor, Tensor]:
        """(c_skip, c_out) at `timestep`: c_skip = σ_d² / (τ² + σ_d²), c_out = τ / √(τ² + σ_d²), τ = 10 t
        (LCM eq. 9; see `boundary_scalings` above). c_skip(0) = 1 and c_out(0) = 0 exactly.

        Args:
            timestep: int, 0-d or (B,).

        Returns:
            (c_skip, c_out), float32, shaped like `timestep`.
        """
        return boundary_scalings(timestep, self.config["sigma_data"], self.config["timestep_scaling"])

    def _predict_x0(self, model_output: Tensor, sample: Tensor, alpha_prod_t: Tensor) -> Tensor:
        """x̂0 from the model output, for each `prediction_type`."""
        beta_prod_t = 1 - alpha_prod_t
        prediction_type = self.config["prediction_type"]
        if prediction_type == "epsilon":  # DDIM eq. 12 "predicted x0"
            return (sample - beta_prod_t.sqrt() * model_output) / alpha_prod_t.sqrt()
        if prediction_type == "sample":
            return model_output
        return alpha_prod_t.sqrt() * sample - beta_prod_t.sqrt() * model_output  # "v_prediction"

    # ----------------------------------------------------------------------------------------------
    # the step

    def step(
        self,
        model_output: Tensor,
        timestep: int | Tensor,
        sample: Tensor,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> LCMSchedulerOutput:
        """One step of multistep consistency sampling (LCM Algorithm 3; diffusers `LCMScheduler.step`).

        The step index starts at `timestep`'s position on the first call and then advances by one per call,
        so a repeated timestep (V2's [699, 399, 299, 299]) is two steps: re-noise to 299, then denoise again.

        Args:
            model_output: the model's prediction at `timestep` (see `prediction_type`), shape (B, ...).
            timestep: the current timestep t, `self.timesteps[self.step_index]`.
            sample: z_t, shape (B, ...).
            generator: RNG for the re-injected noise.
            noise: the re-injected noise itself, shape of `sample` (instead of `generator`); unused on the
                last step.

        Returns:
            `LCMSchedulerOutput` with `prev_sample` (the next step's input, or the result on the last step)
            and `denoised`.
        """
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        if generator is not None and noise is not None:
            raise ValueError("pass either generator or noise, not both")
        timestep = int(timestep)
        if self._step_index is None:
            self._init_step_index(timestep)
        if self._step_index >= len(self._schedule):
            raise ValueError("the schedule is finished; call set_timesteps again before stepping")
        if timestep != self._schedule[self._step_index]:
            raise ValueError(
                f"expected timestep {self._schedule[self._step_index]} at step {self._step_index}, got {timestep}"
            )

        # 1. the next scheduled timestep (the noise level to re-inject); none after the last step
        is_last_step = self._step_index == len(self._schedule) - 1
        next_timestep = timestep if is_last_step else self._schedule[self._step_index + 1]

        # 2. ᾱ_t and ᾱ_next
        alpha_prod_t = self.alphas_cumprod[timestep].to(sample.device)
        alpha_prod_next = (self.alphas_cumprod[next_timestep] if next_timestep >= 0 else self.final_alpha_cumprod).to(
            sample.device
        )

        # 3. boundary-condition scalings c_skip(t), c_out(t)
        c_skip, c_out = self.get_scalings_for_boundary_condition(torch.tensor(timestep, device=sample.device))

        # 4. "predicted x0" from the model output
        pred_original_sample = self._predict_x0(model_output, sample, alpha_prod_t)

        # 5. consistency function f(z_t, t) = c_skip · z_t + c_out · x̂0 (LCM eq. 9)
        denoised = c_out * pred_original_sample + c_skip * sample

        # 6. re-inject noise at the next timestep: z_next = √ᾱ_next · denoised + √(1 − ᾱ_next) · ξ
        #    (Algorithm 3, line 6); the last step (hence one-step sampling) returns the denoised value.
        if is_last_step:
            prev_sample = denoised
        else:
            if noise is None:
                noise = _randn_like(denoised, generator)
            prev_sample = alpha_prod_next.sqrt() * denoised + (1 - alpha_prod_next).sqrt() * noise

        self._step_index += 1
        return LCMSchedulerOutput(prev_sample=prev_sample, denoised=denoised)

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: int | Tensor) -> Tensor:
        """Forward process z_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · ε (see `schedules.add_noise`).

        Args:
            original_samples: x0, shape (B, ...).
            noise: ε, same shape.
            timesteps: int, 0-d tensor or shape (B,).

        Returns:
            z_t, same shape as `original_samples`.
        """
        return add_noise(original_samples, noise, timesteps, self.alphas_cumprod)


def _checked_step_map(step_map: dict[Any, list[int]], num_train_timesteps: int) -> dict[int, list[int]]:
    """The map with int keys (JSON turns them into strings) and validated timesteps."""
    checked = {int(n): [int(t) for t in ts] for n, ts in step_map.items()}
    for n, ts in checked.items():
        if len(ts) != n:
            raise ValueError(f"timesteps_step_map[{n}] must hold {n} timesteps, got {ts}")
        if any(not 0 <= t < num_train_timesteps for t in ts):
            raise ValueError(f"timesteps_step_map[{n}] = {ts} has timesteps outside [0, {num_train_timesteps})")
    return checked
