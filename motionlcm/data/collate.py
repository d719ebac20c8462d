"""Batching of variable-length motion items: zero padding, validity masks and the batch dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def lengths_to_mask(lengths: torch.Tensor | Sequence[int], max_len: int | None = None) -> torch.Tensor:
    """Boolean validity mask from sequence lengths.

    Args:
        lengths: (B,) integer lengths.
        max_len: mask width T; defaults to max(lengths) (0 for an empty batch).

    Returns:
        (B, T) bool tensor, True where frame t < lengths[b]; on the device of `lengths`.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if lengths.ndim != 1:
        raise ValueError(f"lengths: expected a 1-d tensor, got shape {tuple(lengths.shape)}")
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        max_len = longest
    elif max_len < longest:
        raise ValueError(f"max_len: {max_len} is shorter than the longest length {longest}")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def collate_motion(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack dataset items into one batch, zero-padding the features to the longest item.

    The batch keeps the input order (MLD's collate sorts by caption length, descending, for the T2M
    evaluator's packed GRU; an evaluator that needs this must sort itself). `None` items are dropped,
    as in MLD's `mld_collate`.

    Args:
        items: dicts with `features` (T_i, 263) float tensor, `length` int (== T_i), `text`, `tokens`
            and `name` strings (see `HumanML3DDataset.__getitem__`).

    Returns:
        dict with `features` (B, Tmax, 263) float32 zero-padded, `lengths` (B,) long, `mask` (B, Tmax)
        bool (True = valid frame), and lists of str `texts`, `tokens`, `names`.
    """
    items = [item for item in items if item is not None]
    if not items:
        raise ValueError("collate_motion: empty batch")
    lengths = torch.tensor([int(item["length"]) for item in items], dtype=torch.long)
    for item, length in zip(items, lengths.tolist(), strict=True):
        if item["features"].shape[0] != length:
            raise ValueError(f"item {item['name']!r}: length {length} != features rows {item['features'].shape[0]}")
    features = torch.nn.utils.rnn.pad_sequence(
        [torch.as_tensor(item["features"], dtype=torch.float32) for item in items], batch_first=True
    )
    return {
        "features": features,
        "lengths": lengths,
        "mask": lengths_to_mask(lengths, features.shape[1]),
        "texts": [item["text"] for item in items],
        "tokens": [item["tokens"] for item in items],
        "names": [item["name"] for item in items],
    }
