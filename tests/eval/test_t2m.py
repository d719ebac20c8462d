"""T2M evaluator: parity with the upstream modules (recorded fixture), official file layout, word inputs."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.data.collate import lengths_to_mask
from motionlcm.eval.t2m import (
    CHECKPOINT_KEYS,
    POS_INDEX,
    T2MEvaluator,
    WordVectorizer,
    load_checkpoint,
    official_paths,
    tokens_to_inputs,
)

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "t2m" / "reference_embeddings.npz"

# ---- synthetic weights and inputs (shared with tests/fixtures/t2m/make_reference.py) --------------------

WEIGHT_SEEDS = {"text_encoder": 1, "movement_encoder": 2, "motion_encoder": 3}
WEIGHT_STD = 0.05
TINY_VOCAB = (
    "sos eos unk a man the person walk forward slowly jump over something and then sit on chair someone "
    "left leg kick turn around circle"
).split()
TOKEN_CASES = (
    "a/DET man/NOUN walk/VERB forward/ADV slowly/ADV",  # VIP classes override the tags
    "the/DET person/NOUN jump/VERB over/ADP something/PRON and/CCONJ then/ADV sit/VERB on/ADP a/DET chair/NOUN",
    " ".join(["a/DET man/NOUN kick/VERB with/ADP left/ADJ leg/NOUN"] * 4),  # 24 tokens: cropped to 20
    "someone/PRON zigzag/VERB 2/NUM times/NOUN",  # unknown words: unk vector and OTHER
)
TEXT_LENGTHS = (9, 22, 3, 15)  # unsorted, as the official code could not take them
MOTION_FRAMES = 48
MOTION_LENGTHS = (32, 48, 42, 24)  # 42 is not a multiple of 4


def synthetic_state_dict(keys, shapes, seed: int) -> dict[str, torch.Tensor]:
    """N(0, 0.05^2) float32 weights drawn in the given key order from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return {
        str(k): torch.from_numpy(rng.normal(0.0, WEIGHT_STD, tuple(s)).astype(np.float32))
        for k, s in zip(keys, shapes, strict=True)
    }


def tiny_word_vectors() -> dict[str, np.ndarray]:
    vectors = np.random.default_rng(4).normal(size=(len(TINY_VOCAB), 300)).astype(np.float32)
    return dict(zip(TINY_VOCAB, vectors, strict=True))


def synthetic_text_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(5)
    words = rng.normal(size=(len(TEXT_LENGTHS), 22, 300)).astype(np.float32)
    pos = np.eye(15, dtype=np.float32)[rng.integers(0, 15, size=(len(TEXT_LENGTHS), 22))]
    return torch.from_numpy(words), torch.from_numpy(pos), torch.tensor(TEXT_LENGTHS)


def synthetic_motion_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator-normalised features (B, 48, 259), zero after each length, and the lengths in frames."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(len(MOTION_LENGTHS), MOTION_FRAMES, 259)).astype(np.float32)
    for b, n in enumerate(MOTION_LENGTHS):
        x[b, n:] = 0.0
    return torch.from_numpy(x), torch.tensor(MOTION_LENGTHS)


def parse_shapes(strings) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in s.split(",")) for s in strings]


# ---- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def state_dicts(reference) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: synthetic_state_dict(reference[f"{name}_keys"], parse_shapes(reference[f"{name}_shapes"]), seed)
        for name, seed in WEIGHT_SEEDS.items()
    }


@pytest.fixture(scope="module")
def eval_stats() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=263).astype(np.float32), rng.uniform(0.5, 1.5, size=263).astype(np.float32)


@pytest.fixture(scope="module")
def evaluator(state_dicts, eval_stats) -> T2MEvaluator:
    return T2MEvaluator.from_state_dicts(
        state_dicts["text_encoder"],
        state_dicts["movement_encoder"],
        state_dicts["motion_encoder"],
        *eval_stats,
        WordVectorizer.from_vectors(tiny_word_vectors()),
    )


def write_glove(folder: Path, word2vec: dict[str, np.ndarray]) -> None:
    """The official three-file layout: vectors (V, 300), word list, word -> row dict."""
    folder.mkdir(parents=True, exist_ok=True)
    words = list(word2vec)
    np.save(folder / "our_vab_data.npy", np.stack([word2vec[w] for w in words]))
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(words))
    (folder / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(words)}))


@pytest.fixture(scope="module")
def deps_dir(tmp_path_factory, state_dicts, eval_stats) -> Path:
    """A fake MLD `deps/` folder: t2m/t2m/text_mot_match/model/finest.tar, Comp_v6_KLD01/meta, glove/."""
    deps = tmp_path_factory.mktemp("deps")
    paths = official_paths(deps)
    paths["checkpoint"].parent.mkdir(parents=True)
    torch.save({**state_dicts, "epoch": 3, "iter": 1000}, paths["checkpoint"])
    paths["mean"].parent.mkdir(parents=True)
    np.save(paths["mean"], eval_stats[0])
    np.save(paths["std"], eval_stats[1])
    write_glove(paths["glove"], tiny_word_vectors())
    return deps


# ---- parity with the upstream modules -------------------------------------------------------------------


def test_state_dict_keys_and_shapes_match_upstream(reference, evaluator):
    for name in WEIGHT_SEEDS:
        ours = {k: tuple(v.shape) for k, v in getattr(evaluator, name).state_dict().items()}
        upstream = dict(zip(reference[f"{name}_keys"], parse_shapes(reference[f"{name}_shapes"]), strict=True))
        assert ours == upstream, name


def test_text_embeddings_match_upstream(reference, evaluator):
    emb = evaluator.encode_text(*synthetic_text_batch())
    assert emb.shape == (4, 512)
    np.testing.assert_allclose(emb.numpy(), reference["text_emb"], atol=1e-5, rtol=0)


def test_token_inputs_and_embeddings_match_upstream(reference, evaluator):
    words, pos, sent_lens = tokens_to_inputs(TOKEN_CASES, evaluator.vectorizer)
    vocab = np.stack(list(tiny_word_vectors().values()))
    np.testing.assert_array_equal(words.numpy(), vocab[reference["token_word_rows"]])
    np.testing.assert_array_equal(pos.argmax(-1).numpy(), reference["token_pos_index"])
    assert (pos.sum(-1) == 1).all()
    np.testing.assert_array_equal(sent_lens.numpy(), reference["token_sent_lens"])
    emb = evaluator.encode_text(words, pos, sent_lens)
    np.testing.assert_allclose(emb.numpy(), reference["token_text_emb"], atol=1e-5, rtol=0)


def test_motion_embeddings_match_upstream(reference, evaluator):
    emb = evaluator.encode_motion(*synthetic_motion_batch())
    assert emb.shape == (4, 512)
    np.testing.assert_allclose(emb.numpy(), reference["motion_emb"], atol=1e-5, rtol=0)


# ---- official files ---------------------------------------------------------------------------------------


def test_from_official_equals_direct_path(deps_dir, evaluator, eval_stats):
    loaded = T2MEvaluator.from_official(deps_dir)
    texts = ["a man walks forward slowly."] * 2
    tokens = [TOKEN_CASES[0], TOKEN_CASES[3]]
    torch.testing.assert_close(loaded.embed_texts(texts, tokens), evaluator.embed_texts(texts, tokens), rtol=0, atol=0)
    direct = evaluator.encode_text(*tokens_to_inputs(tokens, evaluator.vectorizer))
    torch.testing.assert_close(loaded.embed_texts(texts, tokens), direct, rtol=0, atol=0)

    mean, std = (torch.from_numpy(a) for a in eval_stats)
    normed, lengths = synthetic_motion_batch()
    contacts = torch.zeros(*normed.shape[:2], 4)
    raw = torch.cat([normed, contacts], -1) * std + mean
    raw[~lengths_to_mask(lengths, MOTION_FRAMES)] = 123.0  # garbage padding: embed_motions must zero it
    raw_emb = loaded.embed_motions(raw, lengths)
    torch.testing.assert_close(raw_emb, evaluator.encode_motion(normed, lengths), rtol=0, atol=1e-5)
    assert raw_emb.shape == (4, 512) and not raw_emb.requires_grad


def test_official_layouts(tmp_path):
    assert official_paths(tmp_path)["checkpoint"] == tmp_path / "t2m/t2m/text_mot_match/model/finest.tar"
    assert official_paths(tmp_path, "kit")["mean"] == tmp_path / "t2m/kit/Comp_v6_KLD005/meta/mean.npy"
    (tmp_path / "t2m").mkdir()  # T2M repo: checkpoints/t2m/..., glove/ next to checkpoints/
    paths = official_paths(tmp_path, glove_dir=tmp_path / "glove")
    assert paths["std"] == tmp_path / "t2m/Comp_v6_KLD01/meta/std.npy"
    assert paths["glove"] == tmp_path / "glove"
    with pytest.raises(ValueError, match="dataset"):
        official_paths(tmp_path, "humanml3d")


def test_missing_files_are_all_named(tmp_path):
    with pytest.raises(ValueError) as err:
        T2MEvaluator.from_official(tmp_path)
    root = tmp_path / "t2m" / "t2m"
    for path in (
        root / "text_mot_match/model/finest.tar",
        root / "Comp_v6_KLD01/meta/mean.npy",
        root / "Comp_v6_KLD01/meta/std.npy",
        tmp_path / "glove/our_vab_data.npy",
        tmp_path / "glove/our_vab_words.pkl",
        tmp_path / "glove/our_vab_idx.pkl",
    ):
        assert str(path) in str(err.value)
    write_glove(tmp_path / "glove", tiny_word_vectors())
    (tmp_path / "glove" / "our_vab_idx.pkl").unlink()
    with pytest.raises(ValueError, match="our_vab_idx.pkl") as err:
        WordVectorizer(tmp_path / "glove")
    assert "our_vab_data.npy" not in str(err.value)


@dataclass
class NotATensor:
    value: int = 0


def test_checkpoint_errors(tmp_path):
    path = tmp_path / "finest.tar"
    torch.save({"text_encoder": {}, "movement_encoder": {}}, path)
    with pytest.raises(ValueError, match="motion_encoder"):
        load_checkpoint(path)
    torch.save({key: {} for key in CHECKPOINT_KEYS} | {"opt": NotATensor()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(path)
    assert set(load_checkpoint(path, weights_only=False)) == set(CHECKPOINT_KEYS)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=str(path)):
        load_checkpoint(path)


def test_legacy_checkpoint_format_loads(tmp_path):
    """finest.tar dates from 2021 torch; the pre-1.6 (non-zip) format must load with weights_only too."""
    path = tmp_path / "finest.tar"
    sds = {key: {"w": torch.arange(3.0)} for key in CHECKPOINT_KEYS}
    torch.save(sds | {"epoch": 1}, path, _use_new_zipfile_serialization=False)
    torch.testing.assert_close(load_checkpoint(path)["motion_encoder"]["w"], torch.arange(3.0))


def test_evaluator_stays_frozen(evaluator):
    evaluator.train()
    assert not evaluator.training and not any(m.training for m in evaluator.modules())
    assert not any(p.requires_grad for p in evaluator.parameters())
    assert not evaluator.encode_motion(*synthetic_motion_batch()).requires_grad


def test_encode_motion_rejects_bad_lengths(evaluator):
    x, _ = synthetic_motion_batch()
    with pytest.raises(ValueError, match="lengths"):
        evaluator.encode_motion(x, torch.tensor([48, 48, 3, 48]))
    with pytest.raises(ValueError, match="lengths"):
        evaluator.encode_motion(x, torch.tensor([48, 48, 52, 48]))
    with pytest.raises(ValueError, match="texts and tokens"):
        evaluator.embed_texts(["a"], [])


# ---- word inputs --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vectorizer() -> WordVectorizer:
    return WordVectorizer.from_vectors(tiny_word_vectors())


def pos_names(pos_ohot: torch.Tensor) -> list[str]:
    names = {i: name for name, i in POS_INDEX.items()}
    return [names[i] for i in pos_ohot.argmax(-1).tolist()]


def test_tokens_padding_sos_eos(vectorizer):
    words, pos, sent_lens = tokens_to_inputs(["a/DET man/NOUN sit/VERB"], vectorizer)
    assert words.shape == (1, 22, 300) and pos.shape == (1, 22, 15) and words.dtype == torch.float32
    assert sent_lens.tolist() == [5]
    vec = vectorizer.word2vec
    expected = ["sos", "a", "man", "sit", "eos"] + ["unk"] * 17
    np.testing.assert_array_equal(words[0].numpy(), np.stack([vec[w] for w in expected]))
    assert pos_names(pos[0]) == ["OTHER", "DET", "NOUN", "Act_VIP", "OTHER"] + ["OTHER"] * 17


@pytest.mark.parametrize(("count", "sent_len"), [(0, 2), (19, 21), (20, 22), (25, 22)])
def test_tokens_crop_at_twenty(vectorizer, count, sent_len):
    tokens = (["man", "chair", "leg"] * 9)[:count]
    words, pos, sent_lens = tokens_to_inputs([" ".join(f"{w}/NOUN" for w in tokens)], vectorizer)
    assert words.shape == (1, 22, 300) and sent_lens.tolist() == [sent_len]
    np.testing.assert_array_equal(words[0, sent_len - 1].numpy(), vectorizer.word2vec["eos"])
    if count >= 20:  # tokens 21+ are dropped: token 20 sits right before eos
        np.testing.assert_array_equal(words[0, 20].numpy(), vectorizer.word2vec[tokens[19]])


def test_tokens_oov_vip_and_tags(vectorizer):
    string = "left/ADJ leg/NOUN chair/NOUN slowly/ADV run/VERB someone/PRON and/CCONJ man/XYZ odd"
    words, pos, _ = tokens_to_inputs([string], vectorizer)
    names = pos_names(pos[0])[1:10]
    # 'run' is a VIP word but not in the tiny vocabulary: unk vector and OTHER, as upstream.
    assert names == ["Loc_VIP", "Body_VIP", "Obj_VIP", "Desc_VIP", "OTHER", "PRON", "OTHER", "OTHER", "OTHER"]
    np.testing.assert_array_equal(words[0, 5].numpy(), vectorizer.word2vec["unk"])
    np.testing.assert_array_equal(words[0, 8].numpy(), vectorizer.word2vec["man"])
    np.testing.assert_array_equal(words[0, 9].numpy(), vectorizer.word2vec["unk"])  # 'odd' has no tag


def test_vectorizer_needs_unk():
    with pytest.raises(ValueError, match="unk"):
        WordVectorizer.from_vectors({"a": np.zeros(300)})


def test_tokens_of_real_humanml3d_captions(humanml3d_sample_dir, vectorizer):
    strings = [
        line.split("#")[1]
        for path in sorted((humanml3d_sample_dir / "texts").glob("*.txt"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    words, pos, sent_lens = tokens_to_inputs(strings, vectorizer)
    assert words.shape == (len(strings), 22, 300) and pos.shape == (len(strings), 22, 15)
    assert sent_lens.tolist() == [min(len(s.split()), 20) + 2 for s in strings]
    assert (pos.sum(-1) == 1).all()
