"""The contrastive text-motion evaluator: vocabulary, encoders, loss, folder round trip and training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.config import load_config
from motionlcm.data.collate import collate_motion
from motionlcm.data.humanml3d import HumanML3DDataset
from motionlcm.eval.contrastive import (
    ContrastiveEvaluator,
    EvaluatorConfig,
    Vocabulary,
    caption_tokens,
    contrastive_loss,
    load_evaluator_folder,
    same_caption_matrix,
    save_evaluator,
)
from motionlcm.train.run import train

REPO = Path(__file__).resolve().parents[2]


def _evaluator(seed: int = 0) -> ContrastiveEvaluator:
    torch.manual_seed(seed)
    vocab = Vocabulary.build(
        [caption_tokens("a person walks forward."), caption_tokens("someone waves the left hand.")]
    )
    return ContrastiveEvaluator(EvaluatorConfig.tiny(), vocab, np.zeros(263), np.ones(263)).eval()


def test_caption_tokens_use_the_dataset_tokens_or_our_tagger():
    assert caption_tokens("ignored", "a/DET man/NOUN walk/VERB") == [("a", "DET"), ("man", "NOUN"), ("walk", "VERB")]
    assert caption_tokens("A person walks.") == [("a", "DET"), ("person", "NOUN"), ("walk", "VERB")]


def test_vocabulary_maps_unknown_words_to_unk_and_pads():
    vocab = Vocabulary.build([[("walk", "VERB"), ("forward", "ADV")]])
    words, pos, lengths = vocab.encode([[("walk", "VERB")], [("run", "VERB"), ("forward", "ADV")], []])
    assert lengths.tolist() == [1, 2, 1]
    assert words.tolist() == [[vocab.words.index("walk"), 0], [1, vocab.words.index("forward")], [1, 0]]
    assert pos[0, 1] == 0 and pos[1, 0] == vocab.pos.index("VERB")


def test_motion_embedding_ignores_padding_and_is_unit_length():
    evaluator = _evaluator()
    motion = torch.randn(1, 40, 263)
    padded = torch.cat([motion, 100 * torch.randn(1, 24, 263)], dim=1)
    a = evaluator.embed_motions(motion, torch.tensor([40]))
    b = evaluator.embed_motions(padded, torch.tensor([40]))
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a.norm(dim=-1), torch.ones(1), atol=1e-5)


def test_text_embedding_is_batch_independent_and_order_sensitive():
    evaluator = _evaluator()
    texts = ["someone waves the left hand.", "a person walks forward.", "a person walks."]
    together = evaluator.embed_texts(texts)
    alone = torch.cat([evaluator.embed_texts([t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)
    swapped = evaluator.embed_texts(["forward walks person a."])
    assert not torch.allclose(swapped, together[1:2], atol=1e-3)


def test_contrastive_loss_is_low_for_matched_pairs_and_masks_duplicate_captions():
    emb = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1)
    matched = contrastive_loss(emb, emb, 0.05)
    shuffled = contrastive_loss(emb, emb[torch.randperm(6)], 0.05)
    assert matched < 0.1 < shuffled
    texts = ["a", "b", "a", "c", "d", "e"]
    same = same_caption_matrix(texts)
    assert same[0, 2] and same[2, 0] and not same[0, 1]
    text, motion = torch.randn(6, 16), torch.randn(6, 16)
    # Masking removes columns 2 / 0 from rows 0 / 2: the same as dropping those logits by hand.
    logits = text @ motion.T / 0.1
    keep = ~(same & ~torch.eye(6, dtype=torch.bool))
    row_loss = torch.stack([-(logits[i, i] - torch.logsumexp(logits[i][keep[i]], 0)) for i in range(6)]).mean()
    col_loss = torch.stack([-(logits[i, i] - torch.logsumexp(logits[:, i][keep[:, i]], 0)) for i in range(6)]).mean()
    assert torch.allclose(contrastive_loss(text, motion, 0.1, same), 0.5 * (row_loss + col_loss), atol=1e-5)


def test_folder_round_trip_gives_identical_embeddings(tmp_path):
    evaluator = _evaluator(3)
    path = save_evaluator(evaluator, tmp_path / "ev", meta={"note": "test"})
    loaded = load_evaluator_folder(path)
    motion = torch.randn(2, 30, 263)
    assert torch.equal(
        evaluator.embed_motions(motion, torch.tensor([30, 20])), loaded.embed_motions(motion, torch.tensor([30, 20]))
    )
    assert torch.equal(
        evaluator.embed_texts(["a person walks forward."]), loaded.embed_texts(["a person walks forward."])
    )
    assert loaded.meta == {"note": "test"}
    with pytest.raises(ValueError, match="already exists"):
        save_evaluator(evaluator, path)
    (path / "evaluator.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="evaluator.safetensors"):
        load_evaluator_folder(path)
    with pytest.raises(ValueError, match="not an evaluator folder"):
        load_evaluator_folder(tmp_path)


def test_training_the_evaluator_lowers_the_loss_and_separates_pairs(bn_dataset_dir, tmp_path):
    overrides = [
        f"data.root={bn_dataset_dir}",
        f"output_dir={tmp_path / 'ev'}",
        "trainer.max_steps=40",
        "checkpoint.every_n_steps=20",
        "data.batch_size=12",
        "data.val_split=train",
    ]
    model_dir = train("evaluator", load_config(REPO / "configs" / "tiny" / "evaluator.yaml", overrides), progress=False)
    evaluator = load_evaluator_folder(model_dir)
    assert evaluator.meta["validation"]["val/loss"] < np.log(12)  # chance level of a 12-way InfoNCE
    dataset = HumanML3DDataset(
        bn_dataset_dir, "train", normalizer=evaluator.normalizer, min_length=20, random_crop=False, seed=0
    )
    batch = collate_motion([dataset[i] for i in range(len(dataset))])
    text = evaluator.embed_texts(batch["texts"], batch["tokens"])
    motion = evaluator.embed_motions(evaluator.normalizer.denormalize(batch["features"]), batch["lengths"])
    sims = text @ motion.T
    # matched pairs are closer than unmatched ones on average (the untrained model is at chance)
    assert sims.diagonal().mean() > sims.mean() + 0.1


def test_frozen_hard_negatives_change_only_what_they_should():
    from motionlcm.eval.contrastive import (
        contrastive_loss,
        contrastive_loss_with_negatives,
        frozen_normalized_features,
    )

    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1)
    motion = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1)
    assert torch.allclose(
        contrastive_loss_with_negatives(text, motion, motion[:0], 0.1), contrastive_loss(text, motion, 0.1)
    )
    # a negative equal to each positive doubles the text-to-motion softmax mass of the positive's logit
    copies = contrastive_loss_with_negatives(text * 1e3, text, text, 1.0)
    assert abs(float(copies) - 0.5 * np.log(2.0)) < 1e-3
    mean, std = torch.randn(263), torch.rand(263) + 0.5
    x = torch.randn(2, 10, 263)
    frozen = frozen_normalized_features(x, mean, std) * std + mean
    raw = x * std + mean
    assert torch.allclose(frozen[..., :4], raw[..., :4], atol=1e-5)  # the root path is kept
    assert torch.allclose(frozen[:, :, 4:193], raw[:, :1, 4:193].expand(-1, 10, -1), atol=1e-5)  # one pose
    assert torch.allclose(
        frozen[..., 193:259].unflatten(-1, (22, 3)), raw[..., None, 193:196].expand(-1, -1, 22, -1), atol=1e-5
    )
