"""A faithful eager re-implementation of the official MotionLCM / MLD inference loop, for speed comparisons.

It runs the same weights as a `MotionLCM` pipeline, the way the official code runs them
(official `mld/models/modeltype/mld.py` forward / `_diffusion_reverse`, `mld/models/architectures/mld_clip.py`):

1. text: the transformers backbone + pooling on every call (the official `SentenceTransformer.encode`, no
   cache; the teacher encodes ["" x B] + texts in one batch for classifier-free guidance);
2. reverse loop: `set_timesteps`, fresh noise x init sigma, per step one denoiser call (the teacher on the
   doubled [uncond; cond] batch, then CFG) and one scheduler step;
3. `vae.decode(z, lengths)` at max(lengths) with the lengths mask;
4. features de-normalised, then joints (`feats2joints`).

The networks run with `nn.MultiheadAttention` as the official layers call it (`FastPaths.eager()`); set
that on the pipeline before timing this loop (`motionlcm bench` does). sentence-transformers' own wrapper
overhead (sorting, batching) is not reproduced, so this baseline is if anything faster than the original.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from motionlcm.data.features import features_to_joints
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.diffusion.lcm import embedded_guidance


def applies_to(pipe: Any) -> bool:
    """Whether the pipeline has the official layout this loop re-implements: the transformer VAE with
    global latents and one pooled text token (not the conv VAE or token-level text of the shipped model)."""
    encoder = pipe.text_encoder
    return pipe.vae.config.arch == "transformer" and (encoder is None or encoder.tokens == 0)


@torch.no_grad()
def encode_text(pipe: Any, texts: list[str], guided: bool) -> Tensor:
    """(B, 1, C) embeddings, or (2B, 1, C) [uncond; cond] for the guided teacher; never cached. The prompts as
    the model reads them (`MotionLCM.read_prompt`: its folder's rewrites), so both loops encode the same text."""
    texts = [pipe.read_prompt(t) for t in texts]
    batch = [""] * len(texts) + list(texts) if guided else list(texts)
    return pipe.text_encoder._encode(batch).to(pipe.device)  # (B, 1, C): the pooled token


@torch.no_grad()
def reverse_diffusion(pipe: Any, text_emb: Tensor, steps: int, guidance: float, generator: torch.Generator) -> Tensor:
    """The official `_diffusion_reverse` for a student (LCM, w embedded) or a teacher (DDIM + CFG)."""
    scheduler, denoiser = pipe.scheduler, pipe.denoiser
    cfg = pipe.vae.config
    is_lcm = pipe.kind == "student"
    guided = not is_lcm and guidance > 1.0
    batch = text_emb.shape[0] // 2 if guided else text_emb.shape[0]
    latents = torch.randn(batch, cfg.latent_size, cfg.latent_dim, generator=generator, device=pipe.device)
    latents = latents * scheduler.init_noise_sigma
    scheduler.set_timesteps(steps, device=pipe.device)
    w_emb = None
    if is_lcm:
        w = torch.full((batch,), embedded_guidance(guidance), device=pipe.device)
        w_emb = guidance_scale_embedding(w, denoiser.config.time_cond_proj_dim)
    for t in scheduler.timesteps:
        model_input = torch.cat([latents] * 2) if guided else latents
        timesteps = t.expand(model_input.shape[0])
        if is_lcm:
            eps = denoiser(model_input, timesteps, text_emb, guidance_emb=w_emb)
            latents = scheduler.step(eps, t, latents, generator=generator).prev_sample
        else:
            eps = denoiser(model_input, timesteps, text_emb)
            if guided:
                eps_uncond, eps_text = eps.chunk(2)
                eps = eps_uncond + guidance * (eps_text - eps_uncond)
            latents = scheduler.step(eps, t, latents).prev_sample
    return latents


@torch.no_grad()
def decode(pipe: Any, latents: Tensor, lengths: list[int]) -> Tensor:
    """De-normalised features (B, max(lengths), 263): the official `vae.decode(z, lengths)` + `feats2joints`'
    first half."""
    return pipe.vae.decode(latents, lengths) * pipe.std + pipe.mean


@torch.no_grad()
def feats2joints(features: Tensor) -> Tensor:
    """Joint positions (B, T, 22, 3) from de-normalised features."""
    return features_to_joints(features)


@torch.no_grad()
def official_generate(
    pipe: Any, texts: list[str], lengths: list[int], steps: int, guidance: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Features and joints by the official loop (see the module docstring)."""
    text_emb = encode_text(pipe, texts, guided=pipe.kind != "student" and guidance > 1.0)
    latents = reverse_diffusion(pipe, text_emb, steps, guidance, generator)
    features = decode(pipe, latents, lengths)
    return features, feats2joints(features)
