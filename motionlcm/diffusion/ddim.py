"""DDIM sampling (Song et al. 2021, "Denoising Diffusion Implicit Models"), eqs. 12 and 16.

A small re-statement of `diffusers.DDIMScheduler` with the same config names, timesteps and numerics.
MLD/MotionLCM's teacher uses it with the defaults below: 50 steps at t = 981, 961, ..., 1, η = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motionlcm.diffusion.schedules import (
    add_noise,
    alphas_cumprod,
    config_kwargs,
    make_betas,
)

BETA_SCHEDULES = ("linear", "scaled_linear")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")

# Options of diffusers' DDIMScheduler that this class does not implement. `from_config` accepts a diffusers
# config dict when they hold these values (the diffusers defaults), and rejects it otherwise.
_DIFFUSERS_INERT_OPTIONS: dict[str, Any] = {
    "trained_betas": None,
    "thresholding": False,
    "rescale_betas_zero_snr": False,
}
_DIFFUSERS_THRESHOLDING_OPTIONS = ("dynamic_thresholding_ratio", "sample_max_value")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}")


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like `x`, drawn on the generator's device (e.g. a CPU generator for
    CUDA samples, for device-independent seeds) and moved to `x`'s device."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


@dataclass
class DDIMSchedulerOutput:
    """Output of `DDIMScheduler.step`.

    Args:
        prev_sample: z at the previous (less noisy) timestep, shape of the sample.
        pred_original_sample: the model's estimate x̂0 at the current timestep, shape of the sample.
    """

    prev_sample: Tensor
    pred_original_sample: Tensor


class DDIMScheduler:
    """Denoising diffusion implicit models: deterministic (η = 0) or stochastic (η > 0) reverse steps.

    The config is the constructor signature; `config` holds it as a dict and `from_config` rebuilds it.

    Args:
        num_train_timesteps: number of training timesteps N.
        beta_start: β at t = 0.
        beta_end: β at t = N - 1.
        beta_schedule: "scaled_linear" (√β linear, latent diffusion) or "linear".
        prediction_type: what the model predicts: "epsilon" (the noise), "sample" (x0) or "v_prediction"
            (v = √ᾱ·ε − √(1−ᾱ)·x0, Salimans & Ho 2022).
        clip_sample: clamp x̂0 to [-clip_sample_range, clip_sample_range] (off for latents).
        clip_sample_range: see `clip_sample`.
        set_alpha_to_one: the final step lands on ᾱ = 1 if True, else on ᾱ_0 (MLD: False).
        steps_offset: added to the "leading" timesteps (MLD: 1, so 50 steps end at t = 1).
        timestep_spacing: "leading", "trailing" or "linspace" (Lin et al. 2024, Table 2).
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
        beta_schedule: str = "scaled_linear",
        prediction_type: str = "epsilon",
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
        set_alpha_to_one: bool = False,
        steps_offset: int = 1,
        timestep_spacing: str = "leading",
    ) -> None:
        _check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
        _check_choice("prediction_type", prediction_type, PREDICTION_TYPES)
        _check_choice("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
        self.config: dict[str, Any] = {
            "num_train_timesteps": num_train_timesteps,
            "beta_start": beta_start,
            "beta_end": beta_end,
            "beta_schedule": beta_schedule,
            "prediction_type": prediction_type,
            "clip_sample": clip_sample,
            "clip_sample_range": clip_sample_range,
            "set_alpha_to_one": set_alpha_to_one,
            "steps_offset": steps_offset,
            "timestep_spacing": timestep_spacing,
        }
        self.betas = make_betas(beta_schedule, num_train_timesteps, beta_start, beta_end)
        self.alphas_cumprod = alphas_cumprod(self.betas)
        # ᾱ "before" the last step: there is no t = -1, so use 1 or ᾱ_0.
        self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.init_noise_sigma = 1.0
        # Runtime state, set by set_timesteps (not part of the config).
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.long)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DDIMScheduler:
        """Build a scheduler from `config` (ours, or a diffusers DDIMScheduler config).

        Keys starting with "_" (diffusers metadata) are ignored; diffusers-only options are accepted at
        their default values. Any other unknown key raises ValueError.
        """
        kwargs = config_kwargs(
            config, set(cls().config), _DIFFUSERS_THRESHOLDING_OPTIONS, _DIFFUSERS_INERT_OPTIONS, cls.__name__
        )
        return cls(**kwargs)

    @property
    def num_train_timesteps(self) -> int:
        """N, the number of training timesteps (t ranges over 0..N-1)."""
        return self.config["num_train_timesteps"]

    def __len__(self) -> int:
        return self.num_train_timesteps

    def scale_model_input(self, sample: Tensor, timestep: int | Tensor | None = None) -> Tensor:
        """Identity: DDIM feeds the sample to the model unscaled (kept for a common scheduler API)."""
        return sample

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Choose the `num_inference_steps` timesteps of the reverse chain, in decreasing order.

        "leading" (MLD): t_i = i · (N // n) + steps_offset, e.g. n = 50 gives 981, 961, ..., 1.

        Args:
            num_inference_steps: n, 1 <= n <= num_train_timesteps.
            device: where to put `self.timesteps`.
        """
        n_train = self.config["num_train_timesteps"]
        if not 1 <= num_inference_steps <= n_train:
            raise ValueError(f"num_inference_steps must be in [1, {n_train}], got {num_inference_steps}")
        spacing = self.config["timestep_spacing"]
        if spacing == "leading":
            timesteps = np.arange(num_inference_steps)[::-1] * (n_train // num_inference_steps)
            timesteps = timesteps + self.config["steps_offset"]
        elif spacing == "trailing":
            timesteps = np.round(np.arange(n_train, 0, -n_train / num_inference_steps)) - 1
        else:  # "linspace"
            timesteps = np.linspace(0, n_train - 1, num_inference_steps).round()[::-1]
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.from_numpy(timesteps.astype(np.int64)).to(device)

    def previous_timestep(self, timestep: int) -> int:
        """The timestep one inference step earlier: t - N // n (negative past the end, as in diffusers)."""
        return timestep - self.config["num_train_timesteps"] // self.num_inference_steps

    def _variance(self, alpha_prod_t: Tensor, alpha_prod_t_prev: Tensor) -> Tensor:
        # DDIM eq. 16 with η = 1: σ_t² = (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev)
        return (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)

    def step(
        self,
        model_output: Tensor,
        timestep: int | Tensor,
        sample: Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        variance_noise: Tensor | None = None,
    ) -> DDIMSchedulerOutput:
        """One reverse step z_t → z_prev (DDIM eq. 12, with σ_t from eq. 16).

        Args:
            model_output: the model's prediction at `timestep` (see `prediction_type`), shape (B, ...).
            timestep: the current timestep t, one of `self.timesteps`.
            sample: z_t, shape (B, ...).
            eta: η; 0 is deterministic DDIM, 1 is DDPM-like ancestral sampling.
            generator: RNG for the η > 0 noise.
            variance_noise: the η > 0 noise itself, shape of `sample` (instead of `generator`).

        Returns:
            `DDIMSchedulerOutput` with `prev_sample` (z_prev) and `pred_original_sample` (x̂0).
        """
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        if generator is not None and variance_noise is not None:
            raise ValueError("pass either generator or variance_noise, not both")

        # 1. previous timestep t - N/n
        timestep = int(timestep)
        prev_timestep = self.previous_timestep(timestep)

        # 2. ᾱ_t, ᾱ_prev and 1 − ᾱ_t
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = 1 - alpha_prod_t

        # 3. "predicted x0" and the implied ε (eq. 12)
        pred_original_sample, pred_epsilon = self._x0_and_eps(model_output, sample, alpha_prod_t, beta_prod_t)

        # 4. optional clipping of x̂0
        if self.config["clip_sample"]:
            limit = self.config["clip_sample_range"]
            pred_original_sample = pred_original_sample.clamp(-limit, limit)

        # 5. σ_t(η) = η · √(variance) (eq. 16)
        std_dev_t = eta * self._variance(alpha_prod_t, alpha_prod_t_prev) ** 0.5

        # 6. "direction pointing to x_t" (eq. 12)
        pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t**2) ** 0.5 * pred_epsilon

        # 7. z_prev = √ᾱ_prev · x̂0 + direction (eq. 12 without the random term)
        prev_sample = alpha_prod_t_prev**0.5 * pred_original_sample + pred_sample_direction

        # 8. the random term σ_t · ξ of eq. 12
        if eta > 0:
            if variance_noise is None:
                variance_noise = _randn_like(model_output, generator)
            prev_sample = prev_sample + std_dev_t * variance_noise

        return DDIMSchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)

    def _x0_and_eps(
        self, model_output: Tensor, sample: Tensor, alpha_prod_t: Tensor, beta_prod_t: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(x̂0, ε̂) from the model output, for each `prediction_type`."""
        prediction_type = self.config["prediction_type"]
        if prediction_type == "epsilon":
            pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
            return pred_original_sample, model_output
        if prediction_type == "sample":
            pred_epsilon = (sample - alpha_prod_t**0.5 * model_output) / beta_prod_t**0.5
            return model_output, pred_epsilon
        # "v_prediction": x0 = √ᾱ·z − √(1−ᾱ)·v, ε = √ᾱ·v + √(1−ᾱ)·z
        pred_original_sample = alpha_prod_t**0.5 * sample - beta_prod_t**0.5 * model_output
        pred_epsilon = alpha_prod_t**0.5 * model_output + beta_prod_t**0.5 * sample
        return pred_original_sample, pred_epsilon

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
