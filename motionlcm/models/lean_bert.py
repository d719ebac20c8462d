"""An inference-only forward pass of a BERT encoder (all-MiniLM-L6-v2, the default text encoder) over the
weights of a transformers `BertModel`.

BERT (Devlin et al. 2019): token + absolute position + segment-0 embeddings, LayerNorm, then per layer
self-attention -> dense -> add & LayerNorm -> dense -> GELU (erf) -> dense -> add & LayerNorm. Written as
plain `F.linear` / `F.scaled_dot_product_attention` / `F.layer_norm` calls it returns the same
`last_hidden_state` as `BertModel.forward` (to float rounding; tested) while skipping the mask
construction, output containers and per-module dispatch that make up most of a batch-1 call on CPU.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def supports(backbone: nn.Module) -> bool:
    """Whether `backbone` is a plain BERT encoder this forward reproduces exactly."""
    config = getattr(backbone, "config", None)
    return (
        getattr(config, "model_type", None) == "bert"
        and getattr(config, "hidden_act", None) == "gelu"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
        and hasattr(backbone, "embeddings")
        and hasattr(backbone, "encoder")
    )


def _attention(layer: nn.Module, x: Tensor, mask: Tensor | None, heads: int) -> Tensor:
    """Multi-head self-attention of one BertLayer; x (B, T, H), mask (B, 1, 1, T) bool or None."""
    attn = layer.attention.self
    batch, length, width = x.shape

    def split(linear: nn.Linear) -> Tensor:  # (B, T, H) -> (B, heads, T, H / heads)
        return F.linear(x, linear.weight, linear.bias).view(batch, length, heads, -1).transpose(1, 2)

    context = F.scaled_dot_product_attention(split(attn.query), split(attn.key), split(attn.value), attn_mask=mask)
    return context.transpose(1, 2).reshape(batch, length, width)


def bert_last_hidden_state(backbone: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """`BertModel(input_ids, attention_mask).last_hidden_state`, in eval mode (no dropout).

    Args:
        backbone: a transformers BertModel (see `supports`).
        input_ids: (B, T) token ids.
        attention_mask: (B, T), 1 for real tokens and 0 for padding.

    Returns:
        (B, T, H) token states.
    """
    config, emb = backbone.config, backbone.embeddings
    eps, heads = config.layer_norm_eps, config.num_attention_heads
    length = input_ids.shape[1]
    x = emb.word_embeddings(input_ids) + emb.position_embeddings.weight[:length] + emb.token_type_embeddings.weight[0]
    x = F.layer_norm(x, (x.shape[-1],), emb.LayerNorm.weight, emb.LayerNorm.bias, eps)
    mask = None if bool(attention_mask.all()) else attention_mask.bool()[:, None, None, :]
    for layer in backbone.encoder.layer:
        out = layer.attention.output
        attended = F.linear(_attention(layer, x, mask, heads), out.dense.weight, out.dense.bias)
        x = F.layer_norm(x + attended, (x.shape[-1],), out.LayerNorm.weight, out.LayerNorm.bias, eps)
        hidden = F.gelu(F.linear(x, layer.intermediate.dense.weight, layer.intermediate.dense.bias))
        ff = layer.output
        hidden = F.linear(hidden, ff.dense.weight, ff.dense.bias)
        x = F.layer_norm(x + hidden, (x.shape[-1],), ff.LayerNorm.weight, ff.LayerNorm.bias, eps)
    return x
