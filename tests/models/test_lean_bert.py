"""The lean BERT forward (models/lean_bert.py) against transformers' BertModel, on the real MiniLM weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from motionlcm.models import lean_bert
from motionlcm.models.text_encoder import TextEncoder

PROMPTS = [
    "a person walks forward.",
    "",
    "someone slowly raises the left hand, waves twice and lowers it again while turning to the right",
    "RUN!",
]


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_lean_forward_equals_bert_model(encoder):
    backbone = encoder.model["backbone"]
    assert lean_bert.supports(backbone)
    batch = encoder.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        got = lean_bert.bert_last_hidden_state(backbone, batch["input_ids"], batch["attention_mask"])
    valid = batch["attention_mask"].bool()
    assert torch.allclose(got[valid], expected[valid], atol=1e-5)
    # a single unpadded prompt takes the mask-free path
    one = encoder.tokenizer(PROMPTS[:1], return_tensors="pt")
    with torch.no_grad():
        ref = backbone(**one).last_hidden_state
        assert torch.allclose(
            lean_bert.bert_last_hidden_state(backbone, one["input_ids"], one["attention_mask"]), ref, atol=1e-5
        )


def encode_lean_and_plain(encoder, texts):
    """The encoder's outputs through the lean BERT path and through `BertModel.forward` (cache cleared)."""
    assert encoder.uses_lean_backbone
    encoder.clear_cache()
    lean = encoder(texts)
    encoder.lean = False
    try:
        encoder.clear_cache()
        assert not encoder.uses_lean_backbone
        plain = encoder(texts)
    finally:
        encoder.lean = True
        encoder.clear_cache()
    return lean, plain


def test_text_encoder_gives_the_same_embeddings_either_way(encoder):
    lean, plain = encode_lean_and_plain(encoder, PROMPTS)
    assert torch.allclose(lean, plain, atol=1e-6)
    assert float((lean[0] - lean[2]).abs().max()) > 1e-2


def test_other_backbones_are_not_claimed():
    assert not lean_bert.supports(nn.Linear(2, 2))
