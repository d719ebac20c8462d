"""Temporal-convolution motion VAE with segment latents: (B, T, nfeats) <-> (B, L, D), token l = frames
[l*k, (l+1)*k).

Why: the official transformer VAE (vae.py) decodes every frame from the same few global tokens, and on
a CPU budget (thousands of steps, not hundreds of epochs) it stops at one pose per clip: the shipped model
of issue "The shipped model must move" reconstructed 31 % of the real joint speed. A convolutional encoder
and decoder (the design of T2M-GPT's and MoMask's motion VAEs: strided 1-d convolutions down, nearest
upsampling and convolutions up, ReLU residual blocks) only ever see neighbouring frames, so each latent
token holds its own stretch of motion and the decoder has no single pose to fall back on; measured in
docs/benchmarks.md ("VAE screen").

Layout: `encoder` = Conv(nfeats -> H), then log2(k) times [Conv(H, H, 4, stride 2), num_layers residual
blocks], then Conv(H -> 2D) giving mu and logvar per token. `decoder` = Conv(D -> H), then log2(k) times
[num_layers residual blocks, upsample x2, Conv(H, H, 3)], then ReLU, Conv(H -> nfeats).

Lengths: frames past a clip's length are zeroed before encoding and after every layer (`_run_masked`); a
clip of n frames has ceil(n / k) tokens and the rest are 0 (posterior N(0, 1), no KL). `latent_mask(lengths)` tells the denoiser which tokens are
real (it attends only to those and its loss ignores the rest), so generated tokens past the requested
length never reach the decoder, which also zeroes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from motionlcm.data.collate import lengths_to_mask
from motionlcm.models.vae import Lengths, VAEConfig, check_lengths, decode_mask


class ResidualBlock(nn.Module):
    """x + Conv1x1(ReLU(Conv3(ReLU(x)))) over (B, H, T)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


def _encoder(c: VAEConfig) -> nn.Sequential:
    h, levels = c.hidden_dim, int(math.log2(c.latent_frames))
    layers: list[nn.Module] = [nn.Conv1d(c.nfeats, h, 3, padding=1)]
    for _ in range(levels):
        layers += [nn.Conv1d(h, h, 4, stride=2, padding=1), *(ResidualBlock(h) for _ in range(c.num_layers))]
    return nn.Sequential(*layers, nn.Conv1d(h, 2 * c.latent_dim, 3, padding=1))


def _decoder(c: VAEConfig) -> nn.Sequential:
    h, levels = c.hidden_dim, int(math.log2(c.latent_frames))
    layers: list[nn.Module] = [nn.Conv1d(c.latent_dim, h, 3, padding=1)]
    for _ in range(levels):
        layers += [
            *(ResidualBlock(h) for _ in range(c.num_layers)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv1d(h, h, 3, padding=1),
        ]
    return nn.Sequential(*layers, nn.ReLU(), nn.Conv1d(h, c.nfeats, 3, padding=1))


def _run_masked(layers: nn.Sequential, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Apply `layers` to (B, C, T), zeroing every position past each sample's valid length after each
    layer (the length halves at a strided convolution and doubles at an upsampling), so that a clip's
    output never depends on how far its batch is padded."""
    for layer in layers:
        x = layer(x)
        if isinstance(layer, nn.Conv1d) and layer.stride[0] == 2:
            valid = (valid + 1) // 2
        elif isinstance(layer, nn.Upsample):
            valid = valid * 2
        x = x * (torch.arange(x.shape[-1], device=x.device)[None, :] < valid[:, None])[:, None, :]
    return x


class ConvMotionVAE(nn.Module):
    """Convolutional VAE with segment latents; the same interface as `MotionVAE`."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        if config.arch != "conv":
            raise ValueError(f"arch: ConvMotionVAE needs arch 'conv', got {config.arch!r}")
        self.config = config
        self.encoder = _encoder(config)
        self.decoder = _decoder(config)
        # per-dimension spread of the posterior means over the training set, set once training ends
        # (`fit_latent_std`): encode divides by it and decode multiplies, so the diffusion models see latents
        # of unit variance (the role of Stable Diffusion's latent scale factor)
        self.register_buffer("latent_std", torch.ones(config.latent_dim))

    def latent_mask(self, lengths: Lengths) -> torch.Tensor:
        """(B, L) bool: True for the tokens that hold frames of clips of `lengths` frames."""
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        segments = (lengths + self.config.latent_frames - 1) // self.config.latent_frames
        return torch.arange(self.config.latent_size, device=lengths.device)[None, :] < segments[:, None]

    def _padded_frames(self, num_frames: int) -> int:
        k, limit = self.config.latent_frames, self.config.latent_size * self.config.latent_frames
        if num_frames > limit:
            raise ValueError(f"frames: this VAE holds at most {limit} frames, got {num_frames}")
        return -(-num_frames // k) * k

    def encode(
        self, features: torch.Tensor, lengths: Lengths, *, use_mean: bool = False
    ) -> tuple[torch.Tensor, torch.distributions.Normal]:
        """Encode motions to latents (a posterior sample, or the mean with `use_mean`).

        Args:
            features: (B, T, nfeats) normalised features, frames past each length are ignored.
            lengths: (B,) valid frame counts, each in [1, T].

        Returns:
            z (B, L, D) in diffusion units (divided by `latent_std`), 0 past each clip's tokens, and the
            posterior Normal with loc/scale (L, B, D) (sequence-first, as `MotionVAE`; not rescaled).
        """
        batch, num_frames, nfeats = features.shape
        if nfeats != self.config.nfeats:
            raise ValueError(f"features: expected {self.config.nfeats} features per frame, got {nfeats}")
        mask = lengths_to_mask(check_lengths(lengths, num_frames, features.device), num_frames)
        padded = self._padded_frames(num_frames)
        x = nn.functional.pad(features * mask[:, :, None], (0, 0, 0, padded - num_frames)).transpose(1, 2)
        stats = _run_masked(self.encoder, x, mask.sum(1)).transpose(1, 2)  # (B, S, 2D), S = padded / k tokens
        stats = nn.functional.pad(stats, (0, 0, 0, self.config.latent_size - stats.shape[1]))
        valid = self.latent_mask(mask.sum(1))[:, :, None].to(stats.dtype)
        mu, logvar = (stats * valid).chunk(2, dim=-1)  # tokens without frames: N(0, 1), no KL
        # bounded as diffusers' DiagonalGaussianDistribution does (-30, 20): trained with latent noise the
        # encoder shrinks its posterior sigma until it underflows to 0 (docs/benchmarks.md)
        logvar = logvar.clamp(-30.0, 20.0)
        dist = torch.distributions.Normal(mu.transpose(0, 1), logvar.exp().pow(0.5).transpose(0, 1))
        z = mu if use_mean else dist.rsample().transpose(0, 1) * valid
        return z / self.latent_std, dist

    def decode(self, z: torch.Tensor, lengths: Lengths, *, num_frames: int | None = None) -> torch.Tensor:
        """Decode latents to (B, T, nfeats) features, exactly 0 past each length (T default max(lengths))."""
        mask = decode_mask(z, lengths, num_frames)
        self._padded_frames(mask.shape[1])
        return self.decode_masked(z, mask)

    def decode_masked(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`decode` from a ready (B, T) validity mask, without host synchronisation."""
        k, num_frames = self.config.latent_frames, mask.shape[1]
        tokens = (num_frames + k - 1) // k  # ceil: (not -(-n // k), which symbolic export misreads)
        segments = mask.sum(1, keepdim=True).add(k - 1).div(k, rounding_mode="floor")
        valid = torch.arange(tokens, device=z.device)[None, :] < segments  # (B, S)
        x = (z[:, :tokens] * self.latent_std * valid[:, :, None]).transpose(1, 2)
        out = _run_masked(self.decoder, x, segments[:, 0]).transpose(1, 2)[:, :num_frames]
        return out.masked_fill(~mask[:, :, None], 0.0)

    def forward(
        self, features: torch.Tensor, lengths: Lengths
    ) -> tuple[torch.Tensor, torch.Tensor, torch.distributions.Normal]:
        """Reconstruct: encode (sampled z), then decode to the input's length T."""
        z, dist = self.encode(features, lengths)
        return self.decode(z, lengths, num_frames=features.shape[1]), z, dist


@torch.no_grad()
def fit_latent_std(vae: ConvMotionVAE, batches: Iterable[dict]) -> torch.Tensor:
    """Set `vae.latent_std` to the per-dimension standard deviation of the posterior means over the real
    tokens of `batches` (dicts with normalised "features" and "lengths"); returns it."""
    vae.latent_std.fill_(1.0)
    tokens = []
    for batch in batches:
        z, _ = vae.encode(batch["features"], batch["lengths"], use_mean=True)
        tokens.append(z[vae.latent_mask(batch["lengths"]).to(z.device)])
    std = torch.cat(tokens).std(0).clamp_min(1e-3)
    vae.latent_std.copy_(std)
    return std
