"""Latent denoiser of MLD / MotionLCM: a skip-transformer encoder over [latent tokens, time token, text
token] that predicts the noise of a latent (official `MldDenoiser`, arch "trans_enc").

The same network is the diffusion teacher and, with a guidance-scale projection (`time_cond_proj_dim`),
the latent consistency student. See docs/models.md and the official `mld/models/architectures/mld_denoiser.py`,
`configs/modules/denoiser.yaml` and `train_motionlcm.py` (the student's initialisation from the teacher).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from motionlcm import presets
from motionlcm.models.layers import (
    LearnedPositionalEncoding,
    SkipTransformerEncoder,
    TimestepEmbedding,
    build_activation,
    timestep_embedding,
)
from motionlcm.models.vae import _check_transformer_config, _known_fields

TIME_ACT = "silu"  # configs/modules/denoiser.yaml: time_act_fn


@dataclass(frozen=True)
class DenoiserConfig:
    """Hyper-parameters of `LatentDenoiser`; the defaults are the MotionLCM V2 teacher (MLD++,
    configs/modules/denoiser.yaml).

    Attributes:
        latent_size: L, number of latent tokens (not a weight shape; kept for sampling).
        latent_dim: D, width of a latent token.
        hidden_dim: H, transformer width.
        ff_size: feed-forward width.
        num_layers: transformer layers (odd).
        num_heads: attention heads.
        dropout: dropout rate.
        activation: feed-forward activation.
        max_len: size of the learned positional table (L + 1 + text tokens must fit).
        text_dim: width of the text-encoder vectors (sentence-t5-large: 768).
        time_dim: size of the sinusoidal timestep features.
        text_act: activation applied to the text vector before its projection ("relu" in V1, None in V2).
        flip_sin_to_cos: timestep features as [cos, sin].
        freq_shift: timestep-frequency shift (diffusers `downscale_freq_shift`).
        time_cond_proj_dim: guidance-embedding size of an LCM student (256), None for a teacher.
        force_pre_post_proj: add the D<->H Linear projections even when D == H.
    """

    latent_size: int = 16
    latent_dim: int = 32
    hidden_dim: int = 256
    ff_size: int = 1024
    num_layers: int = 9
    num_heads: int = 4
    dropout: float = 0.1
    activation: str = "gelu"
    max_len: int = 500
    text_dim: int = 768
    time_dim: int = 768
    text_act: str | None = None
    flip_sin_to_cos: bool = True
    freq_shift: float = 0.0
    time_cond_proj_dim: int | None = None
    force_pre_post_proj: bool = True

    def __post_init__(self) -> None:
        _check_transformer_config(self)
        if self.text_act not in (None, "relu", "gelu", "silu"):
            raise ValueError(f"text_act: unknown {self.text_act!r}, expected None, 'relu', 'gelu' or 'silu'")
        if self.time_cond_proj_dim is not None and self.time_cond_proj_dim < 1:
            raise ValueError(f"time_cond_proj_dim: must be >= 1 or None, got {self.time_cond_proj_dim}")

    @property
    def use_projections(self) -> bool:
        """Whether `latent_pre` / `latent_post` are Linear layers (else Identity)."""
        return self.force_pre_post_proj or self.hidden_dim != self.latent_dim

    @property
    def is_lcm(self) -> bool:
        """True for a latent consistency student (has the guidance-embedding projection)."""
        return self.time_cond_proj_dim is not None

    @classmethod
    def v1(cls, **overrides: Any) -> DenoiserConfig:
        """MotionLCM V1 / MLD*: one 256-d latent, ReLU on the text vector (`presets.DENOISER`)."""
        return cls(**{**presets.DENOISER["v1"], **overrides})

    @classmethod
    def v2(cls, **overrides: Any) -> DenoiserConfig:
        """MotionLCM V2 / MLD++ (`presets.DENOISER`)."""
        return cls(**{**presets.DENOISER["v2"], **overrides})

    @classmethod
    def tiny(cls, text_dim: int = 16, **overrides: Any) -> DenoiserConfig:
        """A very small model for tests, matching `VAEConfig.tiny()` latents (2 x 8)."""
        base = {
            "latent_size": 2,
            "latent_dim": 8,
            "hidden_dim": 32,
            "ff_size": 64,
            "num_layers": 3,
            "num_heads": 2,
            "text_dim": text_dim,
            "time_dim": 32,
        }
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DenoiserConfig:
        """Inverse of `to_dict`; unknown keys are an error."""
        return cls(**_known_fields(cls, data))


def _broadcast_timesteps(timestep: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(timestep, device=device)
    if t.numel() not in (1, batch) or t.ndim > 1:
        raise ValueError(f"timestep: expected a scalar or shape ({batch},), got shape {tuple(t.shape)}")
    return t.reshape(-1).expand(batch)


class LatentDenoiser(nn.Module):
    """Noise predictor eps(z_t, t, text[, w]) over latents of shape (B, L, D).

    Tokens are [L projected latents, one time token, text token(s)] with learned positions over the whole
    sequence and no attention mask; the first L outputs are projected back to D.
    """

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or DenoiserConfig()
        h = c.hidden_dim
        self.latent_pre = nn.Linear(c.latent_dim, h) if c.use_projections else nn.Identity()
        self.latent_post = nn.Linear(h, c.latent_dim) if c.use_projections else nn.Identity()
        self.time_embedding = TimestepEmbedding(c.time_dim, h, TIME_ACT, cond_proj_dim=c.time_cond_proj_dim)
        self.emb_proj = nn.Sequential(build_activation(c.text_act), nn.Linear(c.text_dim, h))
        self.query_pos = LearnedPositionalEncoding(h, c.max_len)
        self.encoder = SkipTransformerEncoder(h, c.num_heads, c.ff_size, c.dropout, c.activation, c.num_layers)

    def tokens(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        text_emb: torch.Tensor,
        guidance_emb: torch.Tensor | None = None,
        latent_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoder's input: [L projected latents, time token, text tokens] with positions, (N, B, H), and
        its key-padding mask (B, N) (None without `latent_mask`). Shared with the ControlNet copy."""
        batch, num_latents, _ = sample.shape
        if text_emb.ndim == 2:
            text_emb = text_emb[:, None, :]
        if text_emb.ndim != 3 or text_emb.shape[0] != batch:
            raise ValueError(
                f"text_emb: expected shape ({batch}, S, {self.config.text_dim}), got {tuple(text_emb.shape)}"
            )
        x = self.latent_pre(sample.permute(1, 0, 2))  # (L, B, H)
        t = _broadcast_timesteps(timestep, batch, sample.device)
        t_feat = timestep_embedding(t, self.config.time_dim, self.config.flip_sin_to_cos, self.config.freq_shift)
        time_token = self.time_embedding(t_feat.to(x.dtype), guidance_emb)[None]  # (1, B, H)
        text_tokens = self.emb_proj(text_emb.permute(1, 0, 2))  # (S, B, H)
        seq = self.query_pos(torch.cat([x, time_token, text_tokens], dim=0))
        if latent_mask is None:
            return seq, None
        return seq, torch.cat([~latent_mask, latent_mask.new_zeros(batch, seq.shape[0] - num_latents)], dim=1)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        text_emb: torch.Tensor,
        guidance_emb: torch.Tensor | None = None,
        latent_mask: torch.Tensor | None = None,
        control_residuals: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predict the noise in `sample`.

        Args:
            sample: (B, L, D) noisy latents z_t.
            timestep: scalar or (B,) diffusion timesteps.
            text_emb: (B, 1, text_dim) pooled text vector, or (B, text_dim); (B, S, text_dim) gives S
                text tokens.
            guidance_emb: (B, time_cond_proj_dim) guidance-scale embedding (LCM students), or None.
            latent_mask: (B, L) bool, True for the latent tokens that hold motion (segment latents of a
                conv VAE, `vae.latent_mask(lengths)`); the others are not attended to and their outputs are
                0. None (official): every token counts.
            control_residuals: a `ControlNet`'s output, one (N, B, H) tensor per encoder block, added after
                that block (models/controlnet.py); None: text-only.

        Returns:
            (B, L, D) predicted noise.
        """
        num_latents = sample.shape[1]
        seq, padding = self.tokens(sample, timestep, text_emb, guidance_emb, latent_mask)
        hidden = self.encoder(seq, key_padding_mask=padding, residuals=control_residuals)
        out = self.latent_post(hidden[:num_latents]).permute(1, 0, 2)
        return out if latent_mask is None else out * latent_mask[:, :, None]


def widen_feed_forward(denoiser: LatentDenoiser, ff_size: int) -> LatentDenoiser:
    """A copy of `denoiser` with `ff_size` feed-forward units per layer that computes the same function.

    Function-preserving growth (Net2Net, Chen et al. 2016; the zero-initialised branch of LoRA): every
    layer keeps its trained units, the new units of `linear1` get the default random initialisation and
    the matching columns of `linear2` are zero, so they add nothing until training moves them. Used to
    distil a student wider than its teacher (`DistillSystem(student_ff_size=...)`).
    """
    old = denoiser.config.ff_size
    if ff_size < old:
        raise ValueError(f"ff_size: {ff_size} is smaller than the network's {old}; widening only grows layers")
    wide = LatentDenoiser(dataclasses.replace(denoiser.config, ff_size=ff_size))
    state = wide.state_dict()  # the new units' random initialisation
    for name, value in denoiser.state_dict().items():
        if name.endswith(("linear1.weight", "linear1.bias")):
            state[name] = torch.cat([value, state[name][old:]])
        elif name.endswith("linear2.weight"):
            state[name] = torch.cat([value, torch.zeros_like(state[name][:, old:])], dim=1)
        else:
            state[name] = value
    wide.load_state_dict(state)
    return wide.to(next(denoiser.parameters()).device)
