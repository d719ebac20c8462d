"""Classifier-free guidance (Ho & Salimans 2022) and the guidance-scale embedding of LCM (Luo et al. 2023)."""

from __future__ import annotations

import torch
from torch import Tensor


def classifier_free_guidance(cond: Tensor, uncond: Tensor, scale: float | Tensor) -> Tensor:
    """Extrapolate from the unconditional towards the conditional prediction: uncond + s · (cond − uncond).

    Scale 1 returns `cond`, scale 0 returns `uncond`. MLD uses s = 7.5. The LCM paper writes the same
    thing as cond + w · (cond − uncond) with w = s − 1.

    Args:
        cond: conditional prediction (ε or x0), shape (B, ...).
        uncond: unconditional prediction, same shape.
        scale: s, a float or a tensor broadcastable to `cond` (e.g. shape (B, 1, 1) for one s per sample).

    Returns:
        The guided prediction, shape (B, ...).
    """
    return uncond + scale * (cond - uncond)


def guidance_scale_embedding(w: Tensor, embedding_dim: int = 256, dtype: torch.dtype = torch.float32) -> Tensor:
    """Sinusoidal embedding of the guidance weight w, fed to the LCM student via `cond_proj`.

    w is multiplied by 1000 (the range of timesteps), then embedded as [sin(1000w · f_i), cos(1000w · f_i)]
    with half = embedding_dim // 2 frequencies f_i = exp(−ln(10000) · i / (half − 1)), i = 0..half−1,
    sin first (not flipped). An odd `embedding_dim` gets one trailing zero.

    Args:
        w: guidance weights, shape (B,) (MotionLCM embeds w = s − 1).
        embedding_dim: output size (MotionLCM: 256).
        dtype: dtype of the result.

    Returns:
        Embedding, shape (B, embedding_dim).
    """
    if w.ndim != 1:
        raise ValueError(f"w must have shape (B,), got {tuple(w.shape)}")
    if embedding_dim < 4:
        raise ValueError(f"embedding_dim must be >= 4 (two or more frequencies), got {embedding_dim}")
    half = embedding_dim // 2
    # Everything in `dtype`, in the order of operations of the official `get_guidance_scale_embedding`
    # (mld/utils/utils.py; the same in train_motionlcm.py): at float32 the arguments reach
    # ~1.5e4, where any reordering shifts them by ~1e-3, so this keeps trained `cond_proj` weights valid.
    log_base = torch.log(torch.tensor(10000.0, dtype=dtype, device=w.device))
    freqs = torch.exp(torch.arange(half, dtype=dtype, device=w.device) * -(log_base / (half - 1)))
    args = (w * 1000.0).to(dtype)[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb
