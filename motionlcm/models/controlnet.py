"""Motion ControlNet of MotionLCM (paper sec. 3.3; official `mld/models/architectures/mld_traj_encoder.py` and the
`is_controlnet` branch of `mld_denoiser.py`; shared/docs/motionlcm-reference.md section 7.1).

Three parts steer a frozen student with joint hints:

* `TrajectoryEncoder`: normalised hints (B, T, 22, 3), zero where a joint is free, become a latent-shaped
  condition (B, L, D). "transformer" is the official encoder (global tokens + a skip transformer over the
  controlled frames); "conv" is ours for VAEs with segment latents: a temporal convolution whose stride is
  the VAE's frames per token, so condition token i describes the same frames as latent token i.
* `ControlNet`: a trainable copy of the student's denoiser (no final norm) that adds the embedded
  condition to its noisy input and emits one residual per encoder block through zero-initialised linears.
* `LatentDenoiser(control_residuals=...)` adds residual i after its block i, so an untrained ControlNet
  leaves the student's output exactly unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.layers import LearnedPositionalEncoding, SkipTransformerEncoder, build_activation
from motionlcm.models.vae import _known_fields

ARCHS = ("transformer", "conv")


def zero_module(module: nn.Module) -> nn.Module:
    """`module` with every parameter set to 0 (ControlNet's zero convolutions, Zhang et al. 2023, sec. 3.1)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


@dataclass(frozen=True)
class TrajectoryEncoderConfig:
    """Hyper-parameters of `TrajectoryEncoder` (defaults: the official V2 encoder, configs/modules/traj_encoder.yaml).

    Attributes:
        arch: "transformer" (official) or "conv" (segment-aligned, for conv VAEs).
        num_joints: joints per hint frame (22).
        latent_size: L, condition tokens (= the denoiser's latent tokens).
        latent_dim: D, width of a condition token (= the latent width).
        hidden_dim: H.
        ff_size: feed-forward width (transformer).
        num_layers: transformer layers (odd) or residual conv blocks.
        num_heads: attention heads (transformer).
        dropout: dropout rate (transformer).
        activation: feed-forward activation (transformer).
        max_len: learned positional table size (transformer: L + frames must fit).
        force_post_proj: a Linear H -> D even when H == D (V2: true).
        mask_channels: append the per-axis 0/1 control mask to every frame (ours; official: False, which cannot
            tell a joint held at the dataset mean from a free one, nor a floor-plane path from a 3-D one).
        latent_frames: frames per condition token (conv; the conv VAE's `latent_frames`).
    """

    arch: str = "transformer"
    num_joints: int = 22
    latent_size: int = 16
    latent_dim: int = 32
    hidden_dim: int = 256
    ff_size: int = 1024
    num_layers: int = 9
    num_heads: int = 4
    dropout: float = 0.1
    activation: str = "gelu"
    max_len: int = 500
    force_post_proj: bool = True
    mask_channels: bool = False
    latent_frames: int = 8

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch: unknown {self.arch!r}, expected one of {', '.join(ARCHS)}")
        for name in ("num_joints", "latent_size", "latent_dim", "hidden_dim", "num_layers", "latent_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.arch == "transformer" and (self.num_layers % 2 == 0 or self.hidden_dim % self.num_heads):
            raise ValueError("num_layers must be odd and hidden_dim divisible by num_heads for the transformer")

    @classmethod
    def v1(cls, **overrides: Any) -> TrajectoryEncoderConfig:
        """Official V1 (configs_v1/modules/traj_encoder.yaml): one 256-d token, no output projection."""
        return cls(**{"latent_size": 1, "latent_dim": 256, "force_post_proj": False, **overrides})

    @classmethod
    def v2(cls, **overrides: Any) -> TrajectoryEncoderConfig:
        """Official V2 (configs/modules/traj_encoder.yaml): 16 x 32 latents."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> TrajectoryEncoderConfig:
        """A very small encoder for tests (matching `DenoiserConfig.tiny()`: 2 x 8 latents)."""
        base = {"latent_size": 2, "latent_dim": 8, "hidden_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2}
        return cls(**{**base, **overrides})

    @property
    def input_dim(self) -> int:
        """Features per frame: xyz per joint, plus one mask bit per axis with `mask_channels`."""
        return self.num_joints * (6 if self.mask_channels else 3)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrajectoryEncoderConfig:
        return cls(**_known_fields(cls, data))


def _frame_features(hints: Tensor, mask: Tensor, with_mask: bool) -> Tensor:
    """(B, T, J*3[*2]) encoder input: normalised hints zeroed where free, [the 0/1 mask]."""
    x = (hints * mask).flatten(2)
    return torch.cat([x, mask.flatten(2).to(x.dtype)], dim=-1) if with_mask else x


class TrajectoryEncoder(nn.Module):
    """Hints (B, T, J, 3) normalised + mask (B, T, J, 3) -> condition (B, L, D)."""

    def __init__(self, config: TrajectoryEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TrajectoryEncoderConfig()
        h = c.hidden_dim
        use_proj = c.force_post_proj or h != c.latent_dim
        if c.arch == "transformer":  # official key names: skel_embedding, query_pos_encoder, encoder, ...
            self.skel_embedding = nn.Linear(c.input_dim, h)
            self.query_pos_encoder = LearnedPositionalEncoding(h, c.max_len)
            self.encoder = SkipTransformerEncoder(h, c.num_heads, c.ff_size, c.dropout, c.activation, c.num_layers)
            self.global_motion_token = nn.Parameter(torch.randn(c.latent_size, h))
        else:
            self.skel_embedding = nn.Conv1d(c.input_dim, h, 3, padding=1)
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.SiLU(), nn.Conv1d(h, h, 3, padding=1), nn.SiLU(), nn.Conv1d(h, h, 3, padding=1))
                for _ in range(c.num_layers)
            )
            self.downsample = nn.Conv1d(h, h, c.latent_frames, stride=c.latent_frames)
        self.latent_proj = nn.Linear(h, c.latent_dim) if use_proj else nn.Identity()

    def forward(self, hints: Tensor, mask: Tensor) -> Tensor:
        """Encode.

        Args:
            hints: (B, T, J, 3) normalised joint targets (values where `mask` is False are ignored).
            mask: (B, T, J, 3) bool, True where a joint's axis is controlled at a frame.

        Returns:
            (B, L, D) condition for `ControlNet`.
        """
        c = self.config
        if hints.shape[-2:] != (c.num_joints, 3) or mask.shape != hints.shape:
            raise ValueError(
                f"hints: expected (B, T, {c.num_joints}, 3) and a mask of the same shape, "
                f"got {tuple(hints.shape)} and {tuple(mask.shape)}"
            )
        x = _frame_features(hints, mask, c.mask_channels)
        return self._transformer(x, mask.flatten(2).any(-1)) if c.arch == "transformer" else self._conv(x)

    def _transformer(self, x: Tensor, controlled: Tensor) -> Tensor:
        batch = x.shape[0]
        frames = self.skel_embedding(x).permute(1, 0, 2)  # (T, B, H)
        tokens = self.global_motion_token[:, None, :].expand(-1, batch, -1)
        seq = self.query_pos_encoder(torch.cat([tokens, frames], dim=0))
        # the global tokens attend to each other and to the controlled frames only (official key-padding mask)
        padding = torch.cat([controlled.new_zeros(batch, tokens.shape[0]), ~controlled], dim=1)
        out = self.encoder(seq, key_padding_mask=padding)[: tokens.shape[0]]
        return self.latent_proj(out).permute(1, 0, 2)

    def _conv(self, x: Tensor) -> Tensor:
        c = self.config
        frames = x.shape[1]
        limit = c.latent_size * c.latent_frames
        if frames > limit:
            raise ValueError(f"hints: at most {limit} frames for {c.latent_size} tokens, got {frames}")
        padded = -(-frames // c.latent_frames) * c.latent_frames
        h = self.skel_embedding(nn.functional.pad(x, (0, 0, 0, padded - frames)).transpose(1, 2))
        for block in self.blocks:
            h = h + block(h)
        tokens = self.downsample(h).transpose(1, 2)  # (B, padded / k, H)
        tokens = nn.functional.pad(tokens, (0, 0, 0, c.latent_size - tokens.shape[1]))
        return self.latent_proj(tokens)


class ControlNet(LatentDenoiser):
    """Trainable copy of a denoiser that turns a condition into per-block residuals for the frozen original.

    State-dict keys are the official `controlnet.*` ones: the denoiser's (without `encoder.norm`),
    `controlnet_cond_embedding` (Linear D->H, act, Linear H->H, act, zero Linear H->D; V2 act SiLU, V1 none)
    and `controlnet_down_mid_blocks` (one zero Linear H->H per block).
    """

    def __init__(self, config: DenoiserConfig | None = None, cond_act: str | None = "silu") -> None:
        super().__init__(config)
        c = self.config
        h, d = c.hidden_dim, c.latent_dim
        self.encoder.norm = None  # official: a ControlNet encoder has no final LayerNorm
        self.cond_act = cond_act
        layers = [nn.Linear(d, h), build_activation(cond_act), nn.Linear(h, h), build_activation(cond_act)]
        if cond_act is None:  # official V1: no activation modules, keys 0, 1, 2
            layers = [layers[0], layers[2]]
        self.controlnet_cond_embedding = nn.Sequential(*layers, zero_module(nn.Linear(h, d)))
        self.controlnet_down_mid_blocks = nn.ModuleList(zero_module(nn.Linear(h, h)) for _ in range(c.num_layers))

    def forward(  # type: ignore[override]
        self,
        sample: Tensor,
        timestep: Tensor | float,
        text_emb: Tensor,
        guidance_emb: Tensor | None = None,
        latent_mask: Tensor | None = None,
        condition: Tensor | None = None,
    ) -> list[Tensor]:
        """Residuals (one (N, B, H) tensor per encoder block) for `LatentDenoiser(control_residuals=...)`.

        Args:
            sample, timestep, text_emb, guidance_emb, latent_mask: as the student receives them.
            condition: (B, L, D) from `TrajectoryEncoder`.
        """
        if condition is None or condition.shape != sample.shape:
            got = None if condition is None else tuple(condition.shape)
            raise ValueError(f"condition: expected shape {tuple(sample.shape)}, got {got}")
        sample = sample + self.controlnet_cond_embedding(condition)
        seq, padding = self.tokens(sample, timestep, text_emb, guidance_emb, latent_mask)
        intermediates: list[Tensor] = []
        self.encoder(seq, key_padding_mask=padding, intermediates=intermediates)
        return [block(x) for block, x in zip(self.controlnet_down_mid_blocks, intermediates, strict=True)]


def controlnet_from_denoiser(denoiser: LatentDenoiser, cond_act: str | None = "silu") -> ControlNet:
    """A ControlNet initialised from `denoiser`'s weights (official: `load_state_dict(strict=False)`), its new
    parts zero, so that at step 0 the controlled student computes exactly what the student does."""
    net = ControlNet(denoiser.config, cond_act)
    state = {k: v for k, v in denoiser.state_dict().items() if not k.startswith("encoder.norm.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    new = [k for k in missing if not k.startswith(("controlnet_cond_embedding.", "controlnet_down_mid_blocks."))]
    if new or unexpected:
        raise ValueError(f"denoiser and ControlNet layouts differ: missing {new}, unexpected {unexpected}")
    return net.to(next(denoiser.parameters()).device)


def controlled_denoiser(denoiser: LatentDenoiser, controlnet: ControlNet, condition: Tensor) -> Callable[..., Tensor]:
    """The student steered by `condition` (B, L, D): the same call contract as the student itself, so every
    sampler (`lcm_sample`) runs it unchanged. Both networks get the same timestep, text and guidance."""

    def run(
        sample: Tensor,
        timestep: Tensor,
        text_emb: Tensor,
        guidance_emb: Tensor | None = None,
        latent_mask: Tensor | None = None,
    ) -> Tensor:
        residuals = controlnet(sample, timestep, text_emb, guidance_emb, latent_mask, condition=condition)
        return denoiser(sample, timestep, text_emb, guidance_emb, latent_mask, control_residuals=residuals)

    return run
