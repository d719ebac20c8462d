"""Motion VAE of MLD / MotionLCM: a skip-transformer encoder to L Gaussian latent tokens and a
skip-transformer decoder back to per-frame features (official `MldVae`, arch "encoder_decoder").

See docs/models.md (architecture, key names) and the official `mld/models/architectures/mld_vae.py`,
`configs/modules/motion_vae.yaml`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from motionlcm import presets
from motionlcm.data.collate import lengths_to_mask
from motionlcm.models.layers import LearnedPositionalEncoding, SkipTransformerDecoder, SkipTransformerEncoder

Lengths = torch.Tensor | Sequence[int]


@dataclass(frozen=True)
class VAEConfig:
    """Hyper-parameters of `MotionVAE`; the defaults are MotionLCM V2 (configs/modules/motion_vae.yaml).

    Attributes:
        nfeats: per-frame feature size (263 HumanML3D, 251 KIT).
        latent_size: L, number of latent tokens.
        latent_dim: D, width of a latent token.
        hidden_dim: H, transformer width.
        ff_size: feed-forward width.
        num_layers: transformer layers per stack (odd).
        num_heads: attention heads.
        dropout: dropout rate (attention, feed-forward, residuals).
        activation: feed-forward activation.
        max_len: size of the learned positional tables (2L + frames must fit for the encoder).
        force_pre_post_proj: add the D<->H Linear projections even when D == H.
        position_init: initialisation of the learned position tables, "uniform" (official) or
            "sinusoidal" (same parameters; only training from scratch differs).
        arch: "transformer" (official `MotionVAE`: L global latent tokens, any length up to max_len) or
            "conv" (`ConvMotionVAE`: segment latents, token l holds frames [l*k, (l+1)*k), at most L*k
            frames; `num_layers` residual blocks per resolution).
        latent_frames: k, frames per latent token of the conv VAE (a power of 2); 0 for the transformer.
    """

    nfeats: int = 263
    latent_size: int = 16
    latent_dim: int = 32
    hidden_dim: int = 256
    ff_size: int = 1024
    num_layers: int = 9
    num_heads: int = 4
    dropout: float = 0.1
    activation: str = "gelu"
    max_len: int = 500
    force_pre_post_proj: bool = True
    position_init: str = "uniform"
    arch: str = "transformer"
    latent_frames: int = 0

    def __post_init__(self) -> None:
        _check_transformer_config(self)
        if self.position_init not in ("uniform", "sinusoidal"):
            raise ValueError(f"position_init: unknown {self.position_init!r}, expected 'uniform' or 'sinusoidal'")
        if self.arch not in ("transformer", "conv"):
            raise ValueError(f"arch: unknown {self.arch!r}, expected 'transformer' or 'conv'")
        k = self.latent_frames
        if (self.arch == "conv") != (k > 0) or (k and k & (k - 1)):
            raise ValueError(f"latent_frames: the conv VAE needs a power of 2, the transformer 0; got {k}")
        if self.arch == "conv" and self.max_len > self.latent_size * k:
            raise ValueError(f"max_len: {self.max_len} frames do not fit in {self.latent_size} tokens of {k} frames")

    @property
    def use_projections(self) -> bool:
        """Whether `latent_pre` / `latent_post` are Linear layers (else Identity)."""
        return self.force_pre_post_proj or self.hidden_dim != self.latent_dim

    @classmethod
    def v1(cls, **overrides: Any) -> VAEConfig:
        """MotionLCM V1 / MLD: one 256-d latent token, no projections (`presets.VAE`)."""
        return cls(**{**presets.VAE["v1"], **overrides})

    @classmethod
    def v2(cls, **overrides: Any) -> VAEConfig:
        """MotionLCM V2: 16 x 32 latents, width 256 with projections (`presets.VAE`)."""
        return cls(**{**presets.VAE["v2"], **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> VAEConfig:
        """A very small model for tests: 2 x 8 latents, width 32, 3 layers, 2 heads."""
        base = {
            "latent_size": 2,
            "latent_dim": 8,
            "hidden_dim": 32,
            "ff_size": 64,
            "num_layers": 3,
            "num_heads": 2,
        }
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        """Inverse of `to_dict`; unknown keys are an error."""
        return cls(**_known_fields(cls, data))


def _check_transformer_config(config: Any) -> None:
    for name in ("latent_size", "latent_dim", "hidden_dim", "ff_size", "num_heads", "max_len"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}: must be >= 1, got {getattr(config, name)}")
    if config.num_layers < 1 or config.num_layers % 2 == 0:
        raise ValueError(f"num_layers: must be a positive odd number, got {config.num_layers}")
    if config.hidden_dim % config.num_heads:
        raise ValueError(f"hidden_dim: {config.hidden_dim} is not divisible by num_heads={config.num_heads}")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout: must be in [0, 1), got {config.dropout}")
    if config.activation not in ("gelu", "relu", "silu"):
        raise ValueError(f"activation: unknown {config.activation!r}, expected 'gelu', 'relu' or 'silu'")


MAX_SIZE = 1 << 20  # largest integer a size field may hold (a million channels, layers or frames)


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """`data` as constructor arguments of the config dataclass `cls`: unknown keys, values of the wrong type
    (e.g. a float 1e12 for an integer size) and integers above MAX_SIZE are a ValueError naming the key."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object of fields, got {type(data).__name__}")
    fields = {f.name: str(f.type).replace(" ", "") for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
    for name, value in data.items():
        _check_field(name, value, fields[name])
    return dict(data)


def _check_field(name: str, value: Any, annotation: str) -> None:
    base, optional = annotation.removesuffix("|None"), annotation.endswith("|None")
    if value is None:
        ok = optional
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SIZE
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif base == "bool":
        ok = isinstance(value, bool)
    elif base == "str":
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ValueError(
            f"{name}: expected {annotation.replace('|', ' or ')}"
            f"{f' of at most {MAX_SIZE}' if base == 'int' else ''}, got {value!r}"
        )


def check_lengths(lengths: Lengths, num_frames: int, device: torch.device | None = None) -> torch.Tensor:
    """`lengths` as a (B,) long tensor on `device` (default: theirs), checking B >= 1 and 1 <= length <= T.

    The mask itself is `motionlcm.data.collate.lengths_to_mask`, the one implementation.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=device)
    if lengths.ndim != 1 or lengths.numel() == 0:
        raise ValueError(f"lengths: expected a non-empty 1-d sequence, got shape {tuple(lengths.shape)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > num_frames:
        raise ValueError(f"lengths: must lie in [1, {num_frames}], got {lengths.tolist()}")
    return lengths


def decode_mask(z: torch.Tensor, lengths: Lengths, num_frames: int | None = None) -> torch.Tensor:
    """The (B, T) validity mask a decoder fills for latents z (B, L, D) and `lengths` (T default max)."""
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=z.device)
    if num_frames is None:
        num_frames = int(lengths.max()) if lengths.numel() else 0
    mask = lengths_to_mask(check_lengths(lengths, num_frames, z.device), num_frames)
    if z.ndim != 3 or z.shape[0] != mask.shape[0]:
        raise ValueError(f"z: expected shape (B={mask.shape[0]}, L, D), got {tuple(z.shape)}")
    return mask


class MotionVAE(nn.Module):
    """Transformer VAE: (B, T, nfeats) motion features <-> (B, L, D) latents.

    Encode: the 2L learned global tokens are prepended to the embedded frames, positions are added to the
    whole sequence, and the key-padding-masked skip encoder's first 2L outputs (after `latent_pre`) give
    mu (first L) and logvar (last L). Decode: zero queries plus positions cross-attend to `latent_post(z)`.
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or VAEConfig()
        if c.arch != "transformer":
            raise ValueError(f"arch: MotionVAE is the transformer VAE; use build_vae for {c.arch!r}")
        h = c.hidden_dim
        self.latent_pre = nn.Linear(h, c.latent_dim) if c.use_projections else nn.Identity()
        self.latent_post = nn.Linear(c.latent_dim, h) if c.use_projections else nn.Identity()
        stack = (c.num_heads, c.ff_size, c.dropout, c.activation, c.num_layers)
        self.query_pos_encoder = LearnedPositionalEncoding(h, c.max_len, c.position_init)
        self.encoder = SkipTransformerEncoder(h, *stack)
        self.query_pos_decoder = LearnedPositionalEncoding(h, c.max_len, c.position_init)
        self.decoder = SkipTransformerDecoder(h, *stack)
        self.global_motion_token = nn.Parameter(torch.randn(2 * c.latent_size, h))
        self.skel_embedding = nn.Linear(c.nfeats, h)
        self.final_layer = nn.Linear(h, c.nfeats)

    def latent_mask(self, lengths: Lengths) -> None:
        """Global latents: every token always counts (segment latents: `ConvMotionVAE.latent_mask`)."""
        return None

    def encode(
        self, features: torch.Tensor, lengths: Lengths, *, use_mean: bool = False
    ) -> tuple[torch.Tensor, torch.distributions.Normal]:
        """Encode motions to latents.

        As in the official code the returned latent is a reparameterised sample (`rsample`) of the
        posterior, in training and evaluation alike; `use_mean=True` returns mu instead.

        Args:
            features: (B, T, nfeats) normalised features, frames past each length are ignored.
            lengths: (B,) valid frame counts, each in [1, T].
            use_mean: return the posterior mean instead of a sample.

        Returns:
            z of shape (B, L, D), and the posterior Normal whose loc/scale are (L, B, D), sequence-first
            as in the official code.
        """
        batch, num_frames, nfeats = features.shape
        if nfeats != self.config.nfeats:
            raise ValueError(f"features: expected {self.config.nfeats} features per frame, got {nfeats}")
        mask = lengths_to_mask(check_lengths(lengths, num_frames, features.device), num_frames)
        num_tokens = 2 * self.config.latent_size
        x = self.skel_embedding(features).permute(1, 0, 2)  # (T, B, H)
        tokens = self.global_motion_token[:, None, :].expand(-1, batch, -1)  # (2L, B, H)
        seq = self.query_pos_encoder(torch.cat([tokens, x], dim=0))
        padding = ~torch.cat([mask.new_ones(batch, num_tokens), mask], dim=1)
        out = self.latent_pre(self.encoder(seq, key_padding_mask=padding)[:num_tokens])  # (2L, B, D)
        mu, logvar = out.chunk(2, dim=0)
        dist = torch.distributions.Normal(mu, logvar.exp().pow(0.5))
        z = mu if use_mean else dist.rsample()
        return z.permute(1, 0, 2), dist

    def decode(self, z: torch.Tensor, lengths: Lengths, *, num_frames: int | None = None) -> torch.Tensor:
        """Decode latents to motion features.

        Args:
            z: (B, L, D) latents.
            lengths: (B,) frame counts to generate.
            num_frames: output length T (default max(lengths); e.g. 200 to pad to the dataset maximum).

        Returns:
            (B, T, nfeats) features, exactly 0 past each length.
        """
        return self.decode_masked(z, decode_mask(z, lengths, num_frames))

    def decode_masked(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`decode` from a ready (B, T) validity mask: tensors only, no host synchronisation, so it
        compiles to one graph and records into a CUDA graph (runtime/fast_paths.py)."""
        memory = self.latent_post(z).permute(1, 0, 2)  # (L, B, H), no positions, no mask
        queries = self.query_pos_decoder(memory.new_zeros(mask.shape[1], z.shape[0], self.config.hidden_dim))
        out = self.final_layer(self.decoder(queries, memory, key_padding_mask=~mask)).permute(1, 0, 2)
        return out.masked_fill(~mask[:, :, None], 0.0)

    def forward(
        self, features: torch.Tensor, lengths: Lengths
    ) -> tuple[torch.Tensor, torch.Tensor, torch.distributions.Normal]:
        """Reconstruct: encode (sampled z), then decode to the input's length T.

        Args:
            features: (B, T, nfeats) features.
            lengths: (B,) valid frame counts.

        Returns:
            (reconstruction (B, T, nfeats), z (B, L, D), posterior).
        """
        z, dist = self.encode(features, lengths)
        return self.decode(z, lengths, num_frames=features.shape[1]), z, dist


def build_vae(config: VAEConfig) -> nn.Module:
    """The VAE a config describes: `MotionVAE` (arch "transformer") or `ConvMotionVAE` (arch "conv")."""
    if config.arch == "conv":
        from motionlcm.models.conv_vae import ConvMotionVAE

        return ConvMotionVAE(config)
    return MotionVAE(config)
