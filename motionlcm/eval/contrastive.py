"""A text-motion evaluator for any dataset: two encoders trained contrastively on its training split.

FID and R-precision need a shared text/motion embedding space. HumanML3D has the official T2M evaluator
(`motionlcm.eval.t2m`); a studio's own BVH library has none, so `motionlcm train evaluator` trains this one.

Design (in the spirit of T2M's co-embedding and TMR's contrastive training, sized for CPU training):
- motion encoder: the normalised 263-d features, 4 frames per token -> linear -> a [CLS] token + sinusoidal
  positions ->
  pre-norm transformer encoder with a padding mask -> the [CLS] output -> linear -> D;
- text encoder: the caption's `word/POS` tokens (lemmas, as HumanML3D's texts store them; our own tagger
  makes them for free text) -> word embeddings learned from the training captions' vocabulary plus POS
  embeddings -> a bidirectional GRU -> both final states -> MLP -> D. It is trained from scratch and shares
  nothing with the generator's sentence encoder, and it keeps word order, so "left" and "right" differ
  (pooled MiniLM puts "waves with the left hand" and "... right hand" at cosine 0.99);
- both embeddings are L2-normalised; the loss is the symmetric InfoNCE of the cosine-similarity matrix
  divided by a temperature (TMR: 0.1), with in-batch pairs that share the exact same caption removed from
  the negatives.
Distances between embeddings are Euclidean on the unit sphere, so FID and MM-Dist are on a smaller scale
than the T2M evaluator's (whose embeddings are unnormalised).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from motionlcm.data.collate import lengths_to_mask
from motionlcm.data.features import FEATURE_DIM, FOOT_CONTACT, LOCAL_VEL, RIC
from motionlcm.data.normalizer import Normalizer
from motionlcm.data.tagger import pos_tag
from motionlcm.models.folder import write_folder_atomically

FORMAT_NAME = "motionlcm-evaluator"
FORMAT_VERSION = 1
CONFIG_FILE = "evaluator.json"
WEIGHTS_FILE = "evaluator.safetensors"
PAD, UNK = "<pad>", "<unk>"
MAX_TOKENS = 32  # longer captions are cut (T2M uses 20 words + sos/eos)


@dataclass
class EvaluatorConfig:
    """Sizes of the contrastive evaluator."""

    nfeats: int = FEATURE_DIM
    patch_frames: int = 4  # consecutive frames per token (T2M's movement encoder also downsamples x4)
    hidden_dim: int = 256
    num_layers: int = 4
    num_heads: int = 4
    ff_size: int = 1024
    dropout: float = 0.1
    word_dim: int = 128
    latent_dim: int = 256
    temperature: float = 0.1  # TMR (Petrovich et al. 2023)

    @classmethod
    def tiny(cls) -> EvaluatorConfig:
        """For tests: a few thousand parameters."""
        return cls(patch_frames=2, hidden_dim=32, num_layers=1, num_heads=2, ff_size=64, word_dim=16, latent_dim=16)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluatorConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"evaluator config: unknown fields {sorted(unknown)}")
        return cls(**data)


# ----------------------------------------------------------------------------------------------------
# Vocabulary: captions -> token ids


def caption_tokens(text: str, tokens: str | None = None) -> list[tuple[str, str]]:
    """(word, POS) pairs of a caption: the dataset's `word/POS` string when given, else our own tagger's."""
    tagged = tokens if tokens else pos_tag(text)
    pairs = []
    for item in tagged.split():
        word, _, pos = item.rpartition("/")
        pairs.append((word.lower() or pos.lower(), pos if word else "OTHER"))
    return pairs[:MAX_TOKENS]


@dataclass
class Vocabulary:
    """Word and POS vocabularies (index 0 = padding, 1 = unknown)."""

    words: list[str] = field(default_factory=lambda: [PAD, UNK])
    pos: list[str] = field(default_factory=lambda: [PAD, UNK])

    @classmethod
    def build(cls, captions: Iterable[list[tuple[str, str]]], min_count: int = 1) -> Vocabulary:
        word_counts, pos_counts = Counter(), Counter()
        for pairs in captions:
            word_counts.update(w for w, _ in pairs)
            pos_counts.update(p for _, p in pairs)
        words = sorted(w for w, c in word_counts.items() if c >= min_count)
        return cls([PAD, UNK, *words], [PAD, UNK, *sorted(pos_counts)])

    def __post_init__(self) -> None:
        self._word_index = {w: i for i, w in enumerate(self.words)}
        self._pos_index = {p: i for i, p in enumerate(self.pos)}

    def encode(self, batch: Sequence[list[tuple[str, str]]]) -> tuple[Tensor, Tensor, Tensor]:
        """Padded word ids (B, N), POS ids (B, N) and lengths (B,) (at least 1: an empty caption is <unk>)."""
        lengths = [max(1, len(pairs)) for pairs in batch]
        words = torch.zeros(len(batch), max(lengths), dtype=torch.long)
        pos = torch.zeros_like(words)
        for row, pairs in enumerate(batch):
            pairs = pairs or [(UNK, UNK)]
            words[row, : len(pairs)] = torch.tensor([self._word_index.get(w, 1) for w, _ in pairs])
            pos[row, : len(pairs)] = torch.tensor([self._pos_index.get(p, 1) for _, p in pairs])
        return words, pos, torch.tensor(lengths)

    def unknown_words(self, pairs: list[tuple[str, str]]) -> list[str]:
        return [w for w, _ in pairs if w not in self._word_index]


# ----------------------------------------------------------------------------------------------------
# Encoders


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """(length, dim) fixed sine/cosine positions (Vaswani et al. 2017)."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class MotionEncoder(nn.Module):
    """Normalised features (B, T, nfeats) + lengths -> (B, latent_dim) unit vectors."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.patch = config.patch_frames
        self.input = nn.Linear(config.nfeats * config.patch_frames, config.hidden_dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.hidden_dim))
        layer = nn.TransformerEncoderLayer(
            config.hidden_dim,
            config.num_heads,
            config.ff_size,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.hidden_dim)
        self.output = nn.Linear(config.hidden_dim, config.latent_dim)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        batch, frames, nfeats = features.shape
        tokens = -(-frames // self.patch)  # patches of `patch` frames; the last one zero-padded
        features = F.pad(features, (0, 0, 0, tokens * self.patch - frames)).reshape(batch, tokens, -1)
        x = torch.cat([self.cls.expand(batch, 1, -1), self.input(features)], dim=1)
        x = x + sinusoidal_positions(tokens + 1, x.shape[-1], x.device)
        patch_lengths = torch.div(lengths.to(x.device) + self.patch - 1, self.patch, rounding_mode="floor")
        valid = torch.cat(
            [torch.ones(batch, 1, dtype=torch.bool, device=x.device), lengths_to_mask(patch_lengths, tokens)], dim=1
        )
        x = self.transformer(x, src_key_padding_mask=~valid)
        return F.normalize(self.output(self.norm(x[:, 0])), dim=-1)


class CaptionEncoder(nn.Module):
    """Word and POS ids (B, N) + lengths -> (B, latent_dim) unit vectors."""

    def __init__(self, config: EvaluatorConfig, num_words: int, num_pos: int) -> None:
        super().__init__()
        self.words = nn.Embedding(num_words, config.word_dim, padding_idx=0)
        self.pos = nn.Embedding(num_pos, config.word_dim, padding_idx=0)
        self.gru = nn.GRU(config.word_dim, config.hidden_dim, batch_first=True, bidirectional=True)
        self.output = nn.Sequential(
            nn.Linear(2 * config.hidden_dim, config.hidden_dim),
            nn.LayerNorm(config.hidden_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.latent_dim),
        )

    def forward(self, words: Tensor, pos: Tensor, lengths: Tensor) -> Tensor:
        x = self.words(words) + self.pos(pos)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.gru(packed)  # (2, B, H): the forward and backward final states
        return F.normalize(self.output(torch.cat([hidden[0], hidden[1]], dim=-1)), dim=-1)


def contrastive_loss(
    text_emb: Tensor, motion_emb: Tensor, temperature: float, same_caption: Tensor | None = None
) -> Tensor:
    """Symmetric InfoNCE over the batch; `same_caption` (B, B) bool removes duplicate-caption negatives."""
    logits = text_emb @ motion_emb.T / temperature
    if same_caption is not None:
        off_diagonal = same_caption & ~torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(off_diagonal, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def contrastive_loss_with_negatives(
    text_emb: Tensor, motion_emb: Tensor, negative_emb: Tensor, temperature: float, same_caption: Tensor | None = None
) -> Tensor:
    """`contrastive_loss` where each caption must also rank its motion above `negative_emb` (B', D): extra
    columns of the text-to-motion softmax only (hard negatives, e.g. frozen versions of the batch's clips)."""
    logits = text_emb @ torch.cat([motion_emb, negative_emb]).T / temperature  # (B, B + B')
    batch = len(motion_emb)
    if same_caption is not None:
        off_diagonal = same_caption & ~torch.eye(batch, dtype=torch.bool, device=logits.device)
        logits[:, :batch] = logits[:, :batch].masked_fill(off_diagonal, float("-inf"))
    target = torch.arange(batch, device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :batch].T, target))


def frozen_normalized_features(features: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """A cheap "frozen" version of normalised features (B, T, 263) for hard negatives: the root channels
    (rotation and linear velocity, height) as given, the pose (joint positions and rotations) and the foot
    contacts of frame 0 in every frame, and every joint's velocity equal to the root's (a rigid pose
    carried along the root path)."""
    raw = features * std + mean
    frozen = raw.clone()
    frozen[..., RIC.start : FOOT_CONTACT.stop] = raw[:, :1, RIC.start : FOOT_CONTACT.stop]
    root_velocity = raw[..., LOCAL_VEL.start : LOCAL_VEL.start + 3]
    frozen[..., LOCAL_VEL] = root_velocity.repeat(1, 1, (LOCAL_VEL.stop - LOCAL_VEL.start) // 3)
    return (frozen - mean) / std


def same_caption_matrix(texts: Sequence[str]) -> Tensor:
    """(B, B) bool: caption i equals caption j (case and surrounding space ignored)."""
    keys = [t.strip().lower() for t in texts]
    ids = torch.tensor([keys.index(k) for k in keys])
    return ids[:, None] == ids[None, :]


# ----------------------------------------------------------------------------------------------------
# The evaluator


class ContrastiveEvaluator(nn.Module):
    """Text and motion encoders, the vocabulary and the feature statistics they were trained with.

    The shared evaluator interface (also `T2MEvaluator`): `embed_texts(texts, tokens)` and
    `embed_motions(features_raw, lengths)` return (B, D) embeddings.
    """

    def __init__(self, config: EvaluatorConfig, vocabulary: Vocabulary, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.config, self.vocabulary = config, vocabulary
        self.motion_encoder = MotionEncoder(config)
        self.caption_encoder = CaptionEncoder(config, len(vocabulary.words), len(vocabulary.pos))
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32))

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer(self.mean.cpu().numpy(), self.std.cpu().numpy())

    def encode_text_tokens(self, pairs: Sequence[list[tuple[str, str]]], word_dropout: float = 0.0) -> Tensor:
        words, pos, lengths = self.vocabulary.encode(pairs)
        if word_dropout > 0:  # teach the encoder what an unknown word looks like
            drop = (torch.rand(words.shape) < word_dropout) & (words > 0)
            words = words.masked_fill(drop, 1)
        device = self.mean.device
        return self.caption_encoder(words.to(device), pos.to(device), lengths)

    def encode_normalized_motion(self, features: Tensor, lengths: Tensor) -> Tensor:
        return self.motion_encoder(features.to(self.mean.device), lengths)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], tokens: Sequence[str | None] | None = None) -> Tensor:
        """(B, D) embeddings of captions (`tokens`: the dataset's `word/POS` strings, else tagged here)."""
        tokens = list(tokens) if tokens is not None else [None] * len(texts)
        return self.encode_text_tokens([caption_tokens(t, k) for t, k in zip(texts, tokens, strict=True)])

    @torch.no_grad()
    def embed_motions(self, features_raw: Tensor, lengths: Tensor) -> Tensor:
        """(B, D) embeddings of un-normalised 263-d features (B, T, 263) with valid `lengths` (B,)."""
        features = (features_raw.to(self.mean.device) - self.mean) / self.std
        mask = lengths_to_mask(lengths.to(self.mean.device), features.shape[1])[..., None]
        return self.motion_encoder(features * mask, lengths)


# ----------------------------------------------------------------------------------------------------
# Folder: evaluator.json + evaluator.safetensors + Mean.npy/Std.npy


def save_evaluator(
    evaluator: ContrastiveEvaluator, path: str | Path, meta: dict[str, Any] | None = None, overwrite: bool = False
) -> Path:
    """Write an evaluator folder atomically (temporary sibling folder swapped into place)."""
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "contrastive",
        "config": asdict(evaluator.config),
        "vocabulary": {"words": evaluator.vocabulary.words, "pos": evaluator.vocabulary.pos},
        "meta": meta or {},
    }

    def write(tmp: Path) -> None:
        weights = {
            k: v.detach().cpu().contiguous() for k, v in evaluator.state_dict().items() if k not in ("mean", "std")
        }
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        evaluator.normalizer.save(tmp)
        (tmp / CONFIG_FILE).write_text(json.dumps(header, indent=2) + "\n")

    return write_folder_atomically(Path(path), overwrite, CONFIG_FILE, write, what="an evaluator folder")


def is_evaluator_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def load_evaluator_folder(path: str | Path, device: str | torch.device = "cpu") -> ContrastiveEvaluator:
    """Load a folder written by `save_evaluator` (eval mode, frozen)."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{path}: not an evaluator folder (no {CONFIG_FILE})")
    try:
        header = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path}: invalid JSON ({error})") from None
    if header.get("format") != FORMAT_NAME or header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{config_path}: expected format {FORMAT_NAME!r} v{FORMAT_VERSION}, found "
            f"{header.get('format')!r} v{header.get('format_version')!r}"
        )
    config = EvaluatorConfig.from_dict(header["config"])
    vocabulary = Vocabulary(header["vocabulary"]["words"], header["vocabulary"]["pos"])
    normalizer = Normalizer.from_dir(path)
    evaluator = ContrastiveEvaluator(config, vocabulary, normalizer.mean, normalizer.std)
    try:
        weights = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError, FileNotFoundError) as error:
        raise ValueError(f"{path / WEIGHTS_FILE}: unreadable ({error})") from None
    missing, unexpected = evaluator.load_state_dict(weights, strict=False)
    missing = [k for k in missing if k not in ("mean", "std")]
    if missing or unexpected:
        raise ValueError(
            f"{path / WEIGHTS_FILE}: weights do not match {CONFIG_FILE}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    evaluator.meta = header.get("meta") or {}
    return evaluator.to(device).eval().requires_grad_(False)
