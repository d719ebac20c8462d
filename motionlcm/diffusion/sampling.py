"""Reverse-diffusion loops over latents, as plain functions of tensors (MLD's `_diffusion_reverse`).

The denoiser contract: `denoiser(sample, timestep, text_emb) -> prediction`, with `sample` (B, L, D),
`timestep` (B,) int64, `text_emb` (B, 1, C) and a prediction (ε for MLD) of shape (B, L, D).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.guidance import classifier_free_guidance

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]


def _cfg_text(text_emb: Tensor, uncond_emb: Tensor | None) -> Tensor:
    """[cond; uncond] text embeddings, (2B, 1, C); `uncond_emb` is (1, 1, C) or (B, 1, C)."""
    if uncond_emb is None:
        raise ValueError("guidance_scale > 1 needs uncond_emb (the embedding of the empty prompt)")
    return torch.cat([text_emb, uncond_emb.expand_as(text_emb)])


def _guided_prediction(
    denoiser: Denoiser, sample: Tensor, timestep: Tensor, text: Tensor, guidance_scale: float
) -> Tensor:
    """The denoiser's prediction at `timestep`; with guidance, `text` is [cond; uncond] (2B, 1, C)."""
    batch = sample.shape[0]
    if guidance_scale <= 1.0:
        return denoiser(sample, timestep.expand(batch), text)
    # One batched call on [cond; uncond], then CFG (Ho & Salimans 2022).
    pred = denoiser(torch.cat([sample, sample]), timestep.expand(2 * batch), text)
    pred_cond, pred_uncond = pred.chunk(2)
    return classifier_free_guidance(pred_cond, pred_uncond, guidance_scale)


@torch.no_grad()
def ddim_sample(
    denoiser: Denoiser,
    scheduler: DDIMScheduler,
    text_emb: Tensor,
    uncond_emb: Tensor | None,
    noise: Tensor,
    num_inference_steps: int = 50,
    guidance_scale: float = 7.5,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample latents with DDIM and classifier-free guidance (MLD inference: 50 steps, s = 7.5, η = 0).

    Guidance is on only when `guidance_scale > 1`, as in MLD: then each step makes one denoiser call on
    the batch [cond; uncond] and combines ε_u + s · (ε_c − ε_u). With `guidance_scale <= 1` only the
    conditional branch runs (so a scale below 1 means "no guidance", not interpolation towards uncond).

    Args:
        denoiser: the model, see the module docstring for the contract.
        scheduler: a `DDIMScheduler`; its timesteps are (re)set here.
        text_emb: conditional text embeddings, shape (B, 1, C).
        uncond_emb: embedding of the empty prompt, shape (1, 1, C) or (B, 1, C); may be None without guidance.
        noise: the initial latent z_T, shape (B, L, D); the caller draws it (seeded).
        num_inference_steps: number of DDIM steps.
        guidance_scale: CFG scale s.
        eta: DDIM η (0: deterministic).
        generator: RNG for the η > 0 noise.

    Returns:
        The final latents z_0, shape (B, L, D), ready for the VAE decoder.
    """
    scheduler.set_timesteps(num_inference_steps, device=noise.device)
    text = _cfg_text(text_emb, uncond_emb) if guidance_scale > 1.0 else text_emb
    latents = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t)
        pred = _guided_prediction(denoiser, model_input, t, text, guidance_scale)
        latents = scheduler.step(pred, t, latents, eta=eta, generator=generator).prev_sample
    return latents
