"""Multi-head attention over the weights of an `nn.MultiheadAttention`, two interchangeable backends.

* ``"sdpa"`` (default): the projections as plain `F.linear` calls (one packed q/k/v product for
  self-attention, one packed k/v product for cross-attention) and `F.scaled_dot_product_attention`, which
  picks a fused kernel (flash / memory-efficient on GPU, a fused C++ kernel on CPU). It skips the argument
  checks and layout shuffles of `nn.MultiheadAttention.forward`, which dominate at batch 1.
* ``"torch"``: `nn.MultiheadAttention.forward` itself, called as the official MLD / MotionLCM layers call it
  (attention weights requested, so the explicit softmax(QK^T) path runs); the reference the fast path is
  tested and benchmarked against.

Both read the same parameters (`in_proj_weight`, `in_proj_bias`, `out_proj`), so checkpoints do not change.
Tensors are sequence-first, (N, B, H), as everywhere in the MLD networks.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

BACKENDS = ("sdpa", "torch")


def multi_head_attention(
    attn: nn.MultiheadAttention,
    query: Tensor,
    memory: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    training: bool = False,
) -> Tensor:
    """softmax(Q K^T / sqrt(d)) V over `attn.num_heads` heads, then the output projection.

    Args:
        attn: the module whose weights are used (its `dropout` applies to the attention weights when
            `training`).
        query: (N, B, H) queries; also keys and values when `memory` is None (self-attention).
        memory: (M, B, H) keys and values (cross-attention), or None.
        key_padding_mask: (B, M) bool, True marks keys that must not be attended to.
        training: apply attention dropout.

    Returns:
        (N, B, H) attended values.
    """
    n, batch, width = query.shape
    heads = attn.num_heads
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    # slices, not `chunk`: ONNX export turns chunk into an opset-18 Split that opset 17 cannot hold
    if memory is None:
        qkv = F.linear(query, weight, bias)
        q, k, v = qkv[..., :width], qkv[..., width : 2 * width], qkv[..., 2 * width :]
    else:
        q = F.linear(query, weight[:width], bias[:width])
        kv = F.linear(memory, weight[width:], bias[width:])
        k, v = kv[..., :width], kv[..., width:]

    def split(x: Tensor) -> Tensor:  # (S, B, H) -> (B, heads, S, H / heads)
        return x.reshape(x.shape[0], batch, heads, width // heads).permute(1, 2, 0, 3)

    mask = None
    if key_padding_mask is not None:
        mask = ~key_padding_mask[:, None, None, :]  # SDPA: True = may attend
    out = F.scaled_dot_product_attention(
        split(q), split(k), split(v), attn_mask=mask, dropout_p=attn.dropout if training else 0.0
    )
    out = out.permute(2, 0, 1, 3).reshape(n, batch, width)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)


def attend(
    attn: nn.MultiheadAttention,
    backend: str,
    query: Tensor,
    memory: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    training: bool = False,
) -> Tensor:
    """Dispatch to `multi_head_attention` ("sdpa") or `nn.MultiheadAttention.forward` ("torch")."""
    if backend == "sdpa":
        return multi_head_attention(attn, query, memory, key_padding_mask, training)
    kv = query if memory is None else memory
    return attn(query, kv, kv, key_padding_mask=key_padding_mask)[0]  # as the official layers call it


def set_attention_backend(module: nn.Module, backend: str) -> nn.Module:
    """Switch every transformer layer inside `module` to `backend` ("sdpa" or "torch"); returns `module`."""
    if backend not in BACKENDS:
        raise ValueError(f"attention backend: unknown {backend!r}, expected one of {BACKENDS}")
    for child in module.modules():
        if hasattr(child, "attention_backend"):
            child.attention_backend = backend
    return module


def attention_backend(module: nn.Module) -> str | None:
    """The backend of the first transformer layer inside `module` (None if it has none)."""
    for child in module.modules():
        if hasattr(child, "attention_backend"):
            return child.attention_backend
    return None
