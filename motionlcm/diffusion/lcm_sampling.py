"""Multistep latent consistency sampling over latents (LCM Algorithm 3; MotionLCM inference, official
`mld/models/modeltype/mld.py`, `_diffusion_reverse`).

The student contract: `student(sample, timestep, text_emb, guidance_emb=...) -> ε`, with `sample` (B, L, D),
`timestep` (B,) int64, `text_emb` (B, 1, C) and `guidance_emb` (B, E). Guidance enters only through the
embedding of w = s − 1; there is no classifier-free-guidance batch doubling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from motionlcm import presets
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.diffusion.lcm import LCMScheduler, embedded_guidance

Student = Callable[..., Tensor]


@torch.no_grad()
def lcm_sample(
    student: Student,
    scheduler: LCMScheduler,
    text_emb: Tensor,
    noise: Tensor,
    num_inference_steps: int = 1,
    guidance_scale: float = presets.GUIDANCE["v1"],
    generator: torch.Generator | None = None,
    guidance_embedding_dim: int = 256,
) -> Tensor:
    """Sample latents with a consistency student in `num_inference_steps` student calls.

    `guidance_scale` is the CFG scale s, as in the official pipeline (V1: 7.5; V2: `presets.GUIDANCE["v2"][n]`,
    i.e. 8.0 / 12.5 / 13.5 for 1 / 2 / 4 steps). The student embeds w = s − 1 (`embedded_guidance`),
    the LCM-form weight it was distilled with.

    Args:
        student: the distilled denoiser, see the module docstring for the contract.
        scheduler: an `LCMScheduler` (`LCMScheduler.v1()` or `.v2()`); its timesteps are (re)set here.
        text_emb: text embeddings, shape (B, 1, C).
        noise: the initial latent, shape (B, L, D); the caller draws it (seeded).
        num_inference_steps: number of consistency steps (V2: 1, 2 or 4).
        guidance_scale: CFG scale s; w = s − 1 is embedded.
        generator: RNG for the noise re-injected between steps.
        guidance_embedding_dim: size of the guidance embedding (the student's `time_cond_proj_dim`, 256).

    Returns:
        The final latents (the last step's denoised value), shape (B, L, D), ready for the VAE decoder.
    """
    batch = noise.shape[0]
    scheduler.set_timesteps(num_inference_steps, device=noise.device)
    w = torch.full((batch,), embedded_guidance(guidance_scale), device=noise.device)
    guidance_emb = guidance_scale_embedding(w, guidance_embedding_dim).to(noise.dtype)
    latents = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t)
        eps = student(model_input, t.expand(batch), text_emb, guidance_emb=guidance_emb)
        latents = scheduler.step(eps, t, latents, generator=generator).prev_sample
    return latents
