"""Discrete-time noise schedules and the forward process of DDPM (Ho et al. 2020), as plain functions.

`betas` have shape (N,); `alphas_cumprod` is ᾱ_t = prod_{s<=t} (1 - β_s). The latent diffusion
("scaled_linear") schedule of MLD/MotionLCM gives ᾱ_0 ≈ 0.99915 and ᾱ_999 ≈ 0.00466.
"""

from __future__ import annotations

import torch
from torch import Tensor

# --------------------------------------------------------------------------------------------------
# beta schedules (built in float32, as diffusers does, so alphas_cumprod match it bit for bit)


def linear_betas(num_train_timesteps: int = 1000, beta_start: float = 0.0001, beta_end: float = 0.02) -> Tensor:
    """The DDPM linear schedule: β_t evenly spaced from `beta_start` to `beta_end`.

    Returns:
        Betas, shape (num_train_timesteps,), float32.
    """
    return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)


def scaled_linear_betas(
    num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> Tensor:
    """The latent-diffusion schedule: √β_t evenly spaced from √beta_start to √beta_end.

    Returns:
        Betas, shape (num_train_timesteps,), float32.
    """
    sqrt_betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32)
    return sqrt_betas**2


def alphas_cumprod(betas: Tensor) -> Tensor:
    """ᾱ_t = ∏_{s<=t} (1 - β_s) (DDPM eq. 4 notation).

    Args:
        betas: shape (N,).

    Returns:
        ᾱ, shape (N,), same dtype as `betas`.
    """
    return torch.cumprod(1.0 - betas, dim=0)


# --------------------------------------------------------------------------------------------------
# forward process and its inversions


def _alpha_bar_at(alphas_cumprod: Tensor, timesteps: int | Tensor, like: Tensor) -> Tensor:
    """ᾱ at `timesteps` (int, 0-d or (B,)), shaped to broadcast against `like` (B, ...)."""
    alphas_cumprod = alphas_cumprod.to(device=like.device, dtype=like.dtype)
    timesteps = torch.as_tensor(timesteps, device=like.device, dtype=torch.long)
    alpha_bar = alphas_cumprod[timesteps].flatten()
    return alpha_bar.reshape(-1, *([1] * (like.ndim - 1)))


def add_noise(x0: Tensor, noise: Tensor, timesteps: int | Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Sample q(z_t | x0): z_t = √ᾱ_t · x0 + √(1 - ᾱ_t) · ε (DDPM eq. 4).

    Args:
        x0: clean samples, shape (B, ...).
        noise: ε, same shape as `x0`.
        timesteps: one timestep for all samples (int or 0-d tensor) or one per sample, shape (B,).
        alphas_cumprod: ᾱ, shape (N,).

    Returns:
        z_t, same shape as `x0`.
    """
    alpha_bar = _alpha_bar_at(alphas_cumprod, timesteps, x0)
    return alpha_bar**0.5 * x0 + (1 - alpha_bar) ** 0.5 * noise


def predict_x0_from_eps(z_t: Tensor, eps: Tensor, timesteps: int | Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Invert `add_noise` for x0: x̂0 = (z_t - √(1 - ᾱ_t) · ε) / √ᾱ_t ("predicted x0", DDIM eq. 12).

    Args:
        z_t: noisy samples, shape (B, ...).
        eps: (predicted) noise, same shape as `z_t`.
        timesteps: int, 0-d tensor or shape (B,).
        alphas_cumprod: ᾱ, shape (N,).

    Returns:
        x̂0, same shape as `z_t`.
    """
    alpha_bar = _alpha_bar_at(alphas_cumprod, timesteps, z_t)
    return (z_t - (1 - alpha_bar) ** 0.5 * eps) / alpha_bar**0.5


def predict_eps_from_x0(z_t: Tensor, x0: Tensor, timesteps: int | Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Invert `add_noise` for ε given x0: ε̂ = (z_t - √ᾱ_t · x0) / √(1 - ᾱ_t).

    Args:
        z_t: noisy samples, shape (B, ...).
        x0: (predicted) clean samples, same shape as `z_t`.
        timesteps: int, 0-d tensor or shape (B,).
        alphas_cumprod: ᾱ, shape (N,).

    Returns:
        ε̂, same shape as `z_t`.
    """
    alpha_bar = _alpha_bar_at(alphas_cumprod, timesteps, z_t)
    return (z_t - alpha_bar**0.5 * x0) / (1 - alpha_bar) ** 0.5


def make_betas(beta_schedule: str, num_train_timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """The betas of a named schedule ("linear" or "scaled_linear")."""
    builders = {"linear": linear_betas, "scaled_linear": scaled_linear_betas}
    if beta_schedule not in builders:
        raise ValueError(f"beta_schedule: {beta_schedule!r} is not one of {', '.join(builders)}")
    return builders[beta_schedule](num_train_timesteps, beta_start, beta_end)


def config_kwargs(
    config: dict,
    allowed: set[str],
    ignored: set[str] | frozenset = frozenset(),
    inert: dict | None = None,
    name: str = "scheduler",
) -> dict:
    """Constructor arguments from a scheduler config (ours, or a diffusers one).

    Keys starting with "_" (diffusers metadata) and `ignored` keys are dropped; `inert` diffusers-only
    options are accepted only at their default values; any other unknown key raises ValueError.
    """
    kwargs = {}
    for key, value in config.items():
        if key.startswith("_") or key in ignored:
            continue
        if inert and key in inert:
            if value != inert[key]:
                raise ValueError(f"{key}={value!r} is not supported by {name}")
            continue
        kwargs[key] = value
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(allowed)}")
    return kwargs
