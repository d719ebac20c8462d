"""Building blocks of the MLD / MotionLCM networks: learned positions, post-norm transformer layers,
skip-connection transformer stacks, and the timestep / guidance-scale embeddings.

Attribute names equal the official ones (Dai-Wenxun/MotionLCM `mld/models/operator/*.py`), so official
state dicts load without renaming. Tensors inside the transformers are sequence-first: (N, B, H).
See docs/models.md, and the official `mld/models/architectures/{mld_vae,mld_denoiser}.py` that use them.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from motionlcm.models.attention import attend

LAYER_NORM_EPS = 1e-5  # configs/modules/{motion_vae,denoiser}.yaml: norm_eps
MAX_PERIOD = 10000  # sinusoid base period, diffusers get_timestep_embedding / get_guidance_scale_embedding

_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


def build_activation(name: str | None) -> nn.Module:
    """An activation module by name; `None` gives `nn.Identity` (a parameter-free slot).

    Args:
        name: one of "gelu", "relu", "silu", or None.

    Returns:
        The activation module.
    """
    if name is None:
        return nn.Identity()
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation: unknown {name!r}, expected one of {sorted(_ACTIVATIONS)} or None")
    return _ACTIVATIONS[name]()


# ----------------------------------------------------------------------------------------------------
# Positional encoding


def sinusoidal_positions(num_positions: int, dim: int) -> torch.Tensor:
    """(N, dim) sine/cosine table of "Attention Is All You Need" (sec. 3.5): sin in even, cos in odd columns."""
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(MAX_PERIOD) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class LearnedPositionalEncoding(nn.Module):
    """Learned absolute positions added to the first N entries of a sequence-first tensor.

    The parameter `pe` has shape (max_len, 1, H). `init="uniform"` draws it uniform [0, 1) (official
    `PositionEmbeddingLearned1D`); `init="sinusoidal"` starts from the fixed sine table instead (same
    parameter, same state dict).
    """

    def __init__(self, dim: int, max_len: int = 500, init: str = "uniform") -> None:
        super().__init__()
        self.pe = nn.Parameter(torch.empty(max_len, 1, dim))
        if init == "uniform":
            nn.init.uniform_(self.pe)
        elif init == "sinusoidal":
            with torch.no_grad():
                self.pe.copy_(sinusoidal_positions(max_len, dim)[:, None, :])
        else:
            raise ValueError(f"init: unknown {init!r}, expected 'uniform' or 'sinusoidal'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add positions 0..N-1.

        Args:
            x: (N, B, H) sequence-first tokens, N <= max_len.

        Returns:
            (N, B, H) tokens plus positions.
        """
        if x.shape[0] > self.pe.shape[0]:
            raise ValueError(f"sequence length {x.shape[0]} exceeds the positional table size {self.pe.shape[0]}")
        return x + self.pe[: x.shape[0]]


# ----------------------------------------------------------------------------------------------------
# Post-norm transformer layers (DETR style, sequence-first nn.MultiheadAttention)


class TransformerEncoderLayer(nn.Module):
    """Self-attention -> add & norm -> feed-forward -> add & norm."""

    def __init__(self, dim: int, num_heads: int, ff_size: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ff_size)
        self.activation = build_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ff_size, dim)
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.attention_backend = "sdpa"  # or "torch": see models/attention.py

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the layer.

        Args:
            x: (N, B, H) tokens.
            key_padding_mask: (B, N) bool, True marks tokens that must not be attended to.

        Returns:
            (N, B, H) tokens.
        """
        attended = attend(self.self_attn, self.attention_backend, x, None, key_padding_mask, self.training)
        x = self.norm1(x + self.dropout1(attended))
        hidden = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.norm2(x + self.dropout2(hidden))


class TransformerDecoderLayer(nn.Module):
    """Self-attention -> add & norm -> cross-attention -> add & norm -> feed-forward -> add & norm."""

    def __init__(self, dim: int, num_heads: int, ff_size: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ff_size)
        self.activation = build_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ff_size, dim)
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm3 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.attention_backend = "sdpa"  # or "torch": see models/attention.py

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Apply the layer.

        Args:
            x: (N, B, H) query tokens.
            memory: (M, B, H) cross-attention memory (never masked).
            key_padding_mask: (B, N) bool for the self-attention, True marks padding.

        Returns:
            (N, B, H) tokens.
        """
        backend, training = self.attention_backend, self.training
        attended = attend(self.self_attn, backend, x, None, key_padding_mask, training)
        x = self.norm1(x + self.dropout1(attended))
        attended = attend(self.multihead_attn, backend, x, memory, None, training)
        x = self.norm2(x + self.dropout2(attended))
        hidden = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.norm3(x + self.dropout3(hidden))


# ----------------------------------------------------------------------------------------------------
# Skip-connection stacks (U-Net-like transformer, MLD)


class _SkipTransformer(nn.Module):
    """(n-1)/2 input blocks, a middle block, (n-1)/2 output blocks fed with LIFO skips, a final norm.

    Every output block first concatenates its input with the most recent unused input-block output and
    maps it back to H with its linear block. All parameters with more than one dimension are re-initialised
    Xavier-uniform after the layer is cloned (official `SkipTransformerEncoder._reset_parameters`).
    """

    def __init__(self, layer: nn.Module, num_layers: int, dim: int, norm: bool = True) -> None:
        super().__init__()
        if num_layers < 1 or num_layers % 2 == 0:
            raise ValueError(f"num_layers: must be a positive odd number, got {num_layers}")
        num_blocks = (num_layers - 1) // 2
        self.input_blocks = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_blocks))
        self.middle_block = copy.deepcopy(layer)
        self.output_blocks = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_blocks))
        linear = nn.Linear(2 * dim, dim)
        self.linear_blocks = nn.ModuleList(copy.deepcopy(linear) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS) if norm else None
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _run(
        self,
        x: torch.Tensor,
        residuals: list[torch.Tensor] | None = None,
        intermediates: list[torch.Tensor] | None = None,
        **layer_kwargs: torch.Tensor | None,
    ) -> torch.Tensor:
        """Run the stack. `residuals` (one per block, in block order: inputs, middle, outputs) are added right
        after their block, before its output feeds a skip (a ControlNet's injection, official
        `SkipTransformerEncoder.maybe_controlnet_moe`); `intermediates`, when a list, receives every block's
        output in the same order (what a ControlNet copy emits)."""
        if residuals is not None and len(residuals) != self.num_blocks:
            raise ValueError(f"residuals: expected {self.num_blocks} (one per block), got {len(residuals)}")
        outputs = iter(residuals or ())

        def after_block(y: torch.Tensor) -> torch.Tensor:
            if residuals is not None:
                y = y + next(outputs)
            if intermediates is not None:
                intermediates.append(y)
            return y

        skips = []
        for block in self.input_blocks:
            x = after_block(block(x, **layer_kwargs))
            skips.append(x)
        x = after_block(self.middle_block(x, **layer_kwargs))
        for block, linear in zip(self.output_blocks, self.linear_blocks, strict=True):
            x = linear(torch.cat([x, skips.pop()], dim=-1))
            x = after_block(block(x, **layer_kwargs))
        return self.norm(x) if self.norm is not None else x

    @property
    def num_blocks(self) -> int:
        """Transformer layers in the stack (= num_layers): input blocks, the middle block, output blocks."""
        return 2 * len(self.input_blocks) + 1


class SkipTransformerEncoder(_SkipTransformer):
    """Skip-connection stack of `TransformerEncoderLayer`s."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ff_size: int,
        dropout: float,
        activation: str,
        num_layers: int,
        norm: bool = True,
    ) -> None:
        layer = TransformerEncoderLayer(dim, num_heads, ff_size, dropout, activation)
        super().__init__(layer, num_layers, dim, norm)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        residuals: list[torch.Tensor] | None = None,
        intermediates: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Encode a sequence.

        Args:
            x: (N, B, H) tokens.
            key_padding_mask: (B, N) bool, True marks padding.
            residuals: (N, B, H) per block, added after it (ControlNet injection), or None.
            intermediates: a list to receive each block's (N, B, H) output, or None.

        Returns:
            (N, B, H) tokens after the final norm (if the stack has one).
        """
        return self._run(x, residuals, intermediates, key_padding_mask=key_padding_mask)


class SkipTransformerDecoder(_SkipTransformer):
    """Skip-connection stack of `TransformerDecoderLayer`s."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ff_size: int,
        dropout: float,
        activation: str,
        num_layers: int,
        norm: bool = True,
    ) -> None:
        layer = TransformerDecoderLayer(dim, num_heads, ff_size, dropout, activation)
        super().__init__(layer, num_layers, dim, norm)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decode queries against a memory.

        Args:
            x: (N, B, H) query tokens.
            memory: (M, B, H) memory tokens.
            key_padding_mask: (B, N) bool for the queries' self-attention, True marks padding.

        Returns:
            (N, B, H) tokens after the final norm.
        """
        return self._run(x, memory=memory, key_padding_mask=key_padding_mask)


# ----------------------------------------------------------------------------------------------------
# Timestep and guidance-scale embeddings


def timestep_embedding(
    timesteps: torch.Tensor,
    dim: int,
    flip_sin_to_cos: bool = False,
    freq_shift: float = 1.0,
    max_period: int = MAX_PERIOD,
) -> torch.Tensor:
    """Sinusoidal timestep features, as diffusers' `get_timestep_embedding`.

    Frequencies are exp(-ln(max_period) * i / (half - freq_shift)), i = 0..half-1; the features are
    [sin, cos] of t * freq, or [cos, sin] with `flip_sin_to_cos`; an odd `dim` gets one zero column.

    Args:
        timesteps: (B,) timesteps (any real dtype).
        dim: number of output features.
        flip_sin_to_cos: put the cosines first (MotionLCM: True).
        freq_shift: subtracted from `half` in the frequency denominator (MotionLCM: 0).
        max_period: the longest period.

    Returns:
        (B, dim) float32 features.
    """
    if timesteps.ndim != 1:
        raise ValueError(f"timesteps: expected a 1-d tensor, got shape {tuple(timesteps.shape)}")
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(exponent / (half - freq_shift))
    args = timesteps[:, None].float() * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = nn.functional.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """MLP from timestep features to one token: [+ cond_proj(guidance)] -> linear_1 -> act -> linear_2.

    `cond_proj` (LCM students only) maps the guidance-scale embedding into the timestep-feature space; it
    has no bias and is zero-initialised, so a student starts as an exact copy of its teacher.
    """

    def __init__(self, in_dim: int, out_dim: int, act: str = "silu", cond_proj_dim: int | None = None) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        if cond_proj_dim is not None:
            self.cond_proj = nn.Linear(cond_proj_dim, in_dim, bias=False)
            nn.init.zeros_(self.cond_proj.weight)
        else:
            self.cond_proj = None
        self.act = build_activation(act)
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, t_emb: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Embed.

        Args:
            t_emb: (B, in_dim) timestep features.
            cond: (B, cond_proj_dim) guidance embedding, or None.

        Returns:
            (B, out_dim) embedding.
        """
        if cond is not None:
            if self.cond_proj is None:
                raise ValueError(
                    "guidance embedding given, but this network has no cond_proj (time_cond_proj_dim=None)"
                )
            t_emb = t_emb + self.cond_proj(cond.to(t_emb.dtype))
        return self.linear_2(self.act(self.linear_1(t_emb)))
