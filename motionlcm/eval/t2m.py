"""The T2M text-motion matching evaluator (Guo et al., CVPR 2022) used by T2M, MLD and MotionLCM.

Three frozen encoders map a caption (GloVe word vectors + POS one-hots) and a motion (evaluator-normalised
HumanML3D features without foot contacts) into a shared 512-d space; R-precision, FID, MM-Dist, diversity
and multimodality are computed on these embeddings. The modules load the official `finest.tar` strictly.
Sources: text-to-motion `networks/modules.py`, `utils/word_vectorizer.py`, `data/dataset.py`; MotionLCM
`mld/models/architectures/t2m_{motionenc,textenc}.py`, `mld/models/modeltype/{base,mld}.py` (docs/evaluation-t2m.md).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from motionlcm.data.collate import lengths_to_mask

# text-to-motion utils/word_vectorizer.py: POS class order of the one-hot (15 classes).
POS_CLASSES = (
    "VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
    "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER",
)  # fmt: skip
POS_INDEX = {name: i for i, name in enumerate(POS_CLASSES)}

# Same file: in-vocabulary words that get a "VIP" class instead of their tagged POS (disjoint lists).
VIP_WORDS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back",
                "backward", "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee",
                 "shoulder", "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball",
                "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance",
                "jump", "turn", "stumble", "stop", "sit", "lift", "lower", "raise", "wash", "stand",
                "kneel", "stroll", "rub", "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate",
                "spin", "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad",
                 "happily", "angrily", "sadly"),
}  # fmt: skip
VIP_CLASS = {word: pos for pos, words in VIP_WORDS.items() for word in words}

# Dimensions from the `t2m_*` blocks of the MLD/MotionLCM configs.
WORD_DIM = 300  # GloVe
POS_DIM = len(POS_CLASSES)
TEXT_HIDDEN = 512
MOVEMENT_HIDDEN = 512
MOVEMENT_LATENT = 512
MOTION_HIDDEN = 1024
EMBED_DIM = 512
FOOT_CONTACT_DIMS = 4  # the last 4 feature dims are dropped before the movement encoder
UNIT_LENGTH = 4  # the movement encoder downsamples time by 4 (two stride-2 convs)
MAX_TEXT_LEN = 20  # MLD SAMPLER.MAX_TEXT_LEN: captions are cropped to 20 tokens, plus sos/eos

# Official files: MLD/MotionLCM `deps/t2m/<dataset>/...` (configs' t2m_path); the mean/std of the
# evaluator's normalisation live with the T2M generator that was trained next to it.
META_DIRS = {"t2m": "Comp_v6_KLD01", "kit": "Comp_v6_KLD005"}
CHECKPOINT = Path("text_mot_match", "model", "finest.tar")
CHECKPOINT_KEYS = ("text_encoder", "movement_encoder", "motion_encoder")


# ---- modules (state-dict keys and shapes as in finest.tar) --------------------------------------------


def _output_head(hidden_size: int, output_size: int) -> nn.Sequential:
    """Linear(2H, H) -> LayerNorm -> LeakyReLU(0.2) -> Linear(H, out), applied to the two final GRU states."""
    return nn.Sequential(
        nn.Linear(2 * hidden_size, hidden_size),
        nn.LayerNorm(hidden_size),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden_size, output_size),
    )


def _bigru_final_states(gru: nn.GRU, hidden: Tensor, x: Tensor, lengths: Tensor) -> Tensor:
    """Concatenated final forward/backward states of a BiGRU run over the first lengths[b] steps: (B, 2H).

    Packing with enforce_sorted=False sorts internally and returns the states in input order, which equals
    the official code's pre-sorted call row by row.
    """
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, last = gru(packed, hidden.expand(-1, x.shape[0], -1).contiguous())
    return torch.cat([last[0], last[1]], dim=-1)


class MovementConvEncoder(nn.Module):
    """Two stride-2 Conv1d(k=4) + LeakyReLU(0.2), then a per-step Linear: (B, T, 259) -> (B, T // 4, 512)."""

    def __init__(
        self, input_size: int = 259, hidden_size: int = MOVEMENT_HIDDEN, output_size: int = MOVEMENT_LATENT
    ) -> None:
        super().__init__()
        # Dropout layers (no-ops in eval) are kept so the Sequential indices match the official keys.
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_net(self.main(x.transpose(1, 2)).transpose(1, 2))


class MotionEncoderBiGRUCo(nn.Module):
    """Movement codes (B, T', 512) and valid steps (B,) -> motion embedding (B, 512)."""

    def __init__(
        self, input_size: int = MOVEMENT_LATENT, hidden_size: int = MOTION_HIDDEN, output_size: int = EMBED_DIM
    ) -> None:
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _output_head(hidden_size, output_size)
        self.hidden = nn.Parameter(torch.zeros(2, 1, hidden_size))  # learned initial state

    def forward(self, movements: Tensor, lengths: Tensor) -> Tensor:
        states = _bigru_final_states(self.gru, self.hidden, self.input_emb(movements), lengths)
        return self.output_net(states)


class TextEncoderBiGRUCo(nn.Module):
    """Word vectors (B, L, 300), POS one-hots (B, L, 15) and lengths (B,) -> text embedding (B, 512)."""

    def __init__(
        self,
        word_size: int = WORD_DIM,
        pos_size: int = POS_DIM,
        hidden_size: int = TEXT_HIDDEN,
        output_size: int = EMBED_DIM,
    ) -> None:
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _output_head(hidden_size, output_size)
        self.hidden = nn.Parameter(torch.zeros(2, 1, hidden_size))  # learned initial state

    def forward(self, word_embs: Tensor, pos_ohot: Tensor, lengths: Tensor) -> Tensor:
        x = self.input_emb(word_embs + self.pos_emb(pos_ohot))
        return self.output_net(_bigru_final_states(self.gru, self.hidden, x, lengths))


# ---- words -----------------------------------------------------------------------------------------


# Globals a vocabulary pickle may name: plain containers and numpy arrays / scalars (numpy 1 and 2 module
# paths; protocol 2 writes bytes via _codecs.encode, protocol 5 arrays via _frombuffer). Nothing that runs code.
VOCAB_PICKLE_GLOBALS = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # the latter for latin-1 only (_latin1_encode)
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for bytes: latin-1 only (no codec lookup by name)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _VocabUnpickler(pickle.Unpickler):
    """Unpickles only data: any global outside VOCAB_PICKLE_GLOBALS is refused, naming the file."""

    def __init__(self, handle, path: Path) -> None:
        super().__init__(handle)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in VOCAB_PICKLE_GLOBALS:
            raise ValueError(
                f"{self.path}: refused to unpickle {module}.{name} (a vocabulary file holds "
                "only words, indices and arrays)"
            )
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        return super().find_class(module, name)


def load_vocab_pickle(path: str | Path):
    """A GloVe vocabulary pickle (`our_vab_words.pkl`, `our_vab_idx.pkl`) without running code from it."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return _VocabUnpickler(handle, path).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, MemoryError) as err:
        raise ValueError(f"{path}: not a readable vocabulary pickle ({type(err).__name__}: {err})") from None


def split_token(token: str) -> tuple[str, str]:
    """`word/POS` -> (word, POS). A token without '/' gets POS OTHER (the official code would raise)."""
    word, sep, pos = token.rpartition("/")
    return (word, pos) if sep else (token, "OTHER")


class WordVectorizer:
    """GloVe lookup of `word/POS` tokens as in T2M `WordVectorizer` (the 'our_vab' 300-d vocabulary).

    A known word gets its vector and the one-hot of its VIP class if it has one, else of its tagged POS
    (OTHER if the tag is not one of the 15 classes). An unknown word gets the 'unk' vector and OTHER,
    whatever its tag; VIP words are only recognised when they are in the vocabulary.

    Args:
        glove_dir: folder with `<prefix>_data.npy` (V, 300), `<prefix>_words.pkl` (list of V words) and
            `<prefix>_idx.pkl` (dict word -> row).
        prefix: file prefix ("our_vab" for the official files).
    """

    def __init__(self, glove_dir: str | Path, prefix: str = "our_vab") -> None:
        paths = [Path(glove_dir) / f"{prefix}_{name}" for name in ("data.npy", "words.pkl", "idx.pkl")]
        _require_files(paths, "GloVe vocabulary")
        vectors = np.load(paths[0])
        words, word2idx = load_vocab_pickle(paths[1]), load_vocab_pickle(paths[2])
        if not isinstance(words, list) or not isinstance(word2idx, dict):
            raise ValueError(
                f"{paths[1].parent}: expected a word list in {paths[1].name} and a word -> row dict "
                f"in {paths[2].name}, got {type(words).__name__} and {type(word2idx).__name__}"
            )
        try:
            self._init({w: vectors[word2idx[w]] for w in words})
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"{paths[2]}: does not index {paths[0].name} for every word ({err!r})") from None

    @classmethod
    def from_vectors(cls, word2vec: dict[str, np.ndarray]) -> WordVectorizer:
        """Build from an in-memory {word: (300,) vector} dict (must contain 'unk')."""
        self = cls.__new__(cls)
        self._init(word2vec)
        return self

    def _init(self, word2vec: dict[str, np.ndarray]) -> None:
        if "unk" not in word2vec:
            raise ValueError("word vectors: the vocabulary has no 'unk' entry (needed for unknown words)")
        self.word2vec = {w: np.asarray(v, dtype=np.float32) for w, v in word2vec.items()}

    def __len__(self) -> int:
        return len(self.word2vec)

    def __getitem__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """`word/POS` -> (word vector (300,) float32, POS one-hot (15,) float32)."""
        word, pos = split_token(token)
        if word in self.word2vec:
            vector, pos = self.word2vec[word], VIP_CLASS.get(word, pos)
        else:
            vector, pos = self.word2vec["unk"], "OTHER"
        one_hot = np.zeros(POS_DIM, dtype=np.float32)
        one_hot[POS_INDEX.get(pos, POS_INDEX["OTHER"])] = 1.0
        return vector, one_hot


def pad_tokens(tokens: Sequence[str], max_text_len: int = MAX_TEXT_LEN) -> tuple[list[str], int]:
    """Crop to max_text_len tokens, add sos/eos and pad with unk to max_text_len + 2 (official
    `mld/data/humanml/dataset.py`, `Text2MotionDataset.__getitem__`).

    Returns:
        (the max_text_len + 2 tokens, sent_len = number of tokens before the padding).
    """
    tokens = ["sos/OTHER", *tokens[:max_text_len], "eos/OTHER"]
    sent_len = len(tokens)
    return tokens + ["unk/OTHER"] * (max_text_len + 2 - sent_len), sent_len


def tokens_to_inputs(
    token_strings: Sequence[str], vectorizer: WordVectorizer, max_text_len: int = MAX_TEXT_LEN
) -> tuple[Tensor, Tensor, Tensor]:
    """Text-encoder inputs from space-separated `word/POS` strings (HumanML3D `texts/*.txt` field 2).

    Returns:
        word_embs (B, max_text_len + 2, 300) float32, pos_ohot (B, max_text_len + 2, 15) float32,
        sent_lens (B,) int64 (sos + tokens + eos, at most max_text_len + 2).
    """
    words, poses, sent_lens = [], [], []
    for string in token_strings:
        padded, sent_len = pad_tokens(string.split(), max_text_len)
        vectors, one_hots = zip(*(vectorizer[token] for token in padded), strict=True)
        words.append(np.stack(vectors))
        poses.append(np.stack(one_hots))
        sent_lens.append(sent_len)
    if not sent_lens:
        raise ValueError("tokens_to_inputs: empty batch")
    return torch.from_numpy(np.stack(words)), torch.from_numpy(np.stack(poses)), torch.tensor(sent_lens)


# ---- the evaluator ---------------------------------------------------------------------------------


def _require_files(paths: Sequence[Path], what: str) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{what}: missing file(s) (see docs/evaluation-t2m.md):\n  " + "\n  ".join(missing))


def official_paths(deps_dir: str | Path, dataset: str = "t2m", glove_dir: str | Path | None = None) -> dict[str, Path]:
    """Where the official evaluator files are expected (keys: checkpoint, mean, std, glove).

    Accepts the MLD/MotionLCM layout `deps_dir/t2m/<dataset>/...` and, if that folder does not exist,
    the T2M repo layout `deps_dir/<dataset>/...` (deps_dir = T2M's `checkpoints/`). GloVe defaults to
    `deps_dir/glove` (MLD/MotionLCM `deps/glove`; pass glove_dir for T2M's top-level `glove/`).
    """
    if dataset not in META_DIRS:
        raise ValueError(f"dataset: expected one of {sorted(META_DIRS)}, got {dataset!r}")
    deps_dir = Path(deps_dir)
    root = deps_dir / "t2m" / dataset
    if not root.is_dir() and (deps_dir / dataset).is_dir():
        root = deps_dir / dataset
    meta = root / META_DIRS[dataset] / "meta"
    return {
        "checkpoint": root / CHECKPOINT,
        "mean": meta / "mean.npy",
        "std": meta / "std.npy",
        "glove": Path(glove_dir) if glove_dir is not None else deps_dir / "glove",
    }


def load_checkpoint(path: Path, weights_only: bool = True) -> dict[str, dict[str, Tensor]]:
    """The three encoder state dicts of a `finest.tar` (other entries, e.g. optimiser states, are ignored)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: refused by torch.load(weights_only=True) ({err}); if you trust this "
            "file, load it with weights_only=False"
        ) from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from err
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"{path}: missing entries {missing}; expected {list(CHECKPOINT_KEYS)}")
    return {key: checkpoint[key] for key in CHECKPOINT_KEYS}


class T2MEvaluator(nn.Module):
    """Frozen T2M text and motion encoders with the evaluator's own normalisation and word vectors.

    Always in eval mode (`train()` is a no-op) with gradients off. Embeddings are 512-d.

    Args:
        mean, std: the evaluator's feature normalisation, shape (263,) (`Comp_v6_KLD01/meta`); per T2M
            `data/dataset.py` the HumanML3D Mean/Std with the root and foot-contact std divided by 5.
        vectorizer: GloVe lookup for the text side.
    """

    def __init__(self, mean: np.ndarray | Tensor, std: np.ndarray | Tensor, vectorizer: WordVectorizer) -> None:
        super().__init__()
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(f"mean/std: expected two (D,) vectors, got {tuple(mean.shape)}, {tuple(std.shape)}")
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.vectorizer = vectorizer
        self.text_encoder = TextEncoderBiGRUCo()
        self.movement_encoder = MovementConvEncoder(mean.shape[0] - FOOT_CONTACT_DIMS)
        self.motion_encoder = MotionEncoderBiGRUCo()
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> T2MEvaluator:
        """Stays in eval mode: the evaluator is frozen (its movement encoder has dropout)."""
        return super().train(False)

    @classmethod
    def from_state_dicts(
        cls,
        text_sd: dict[str, Tensor],
        movement_sd: dict[str, Tensor],
        motion_sd: dict[str, Tensor],
        mean: np.ndarray | Tensor,
        std: np.ndarray | Tensor,
        vectorizer: WordVectorizer,
    ) -> T2MEvaluator:
        """Build from the three encoder state dicts (strict load: keys and shapes must match exactly)."""
        evaluator = cls(mean, std, vectorizer)
        evaluator.text_encoder.load_state_dict(text_sd, strict=True)
        evaluator.movement_encoder.load_state_dict(movement_sd, strict=True)
        evaluator.motion_encoder.load_state_dict(motion_sd, strict=True)
        return evaluator

    @classmethod
    def from_official(
        cls,
        deps_dir: str | Path,
        dataset: str = "t2m",
        device: str | torch.device = "cpu",
        glove_dir: str | Path | None = None,
        weights_only: bool = True,
    ) -> T2MEvaluator:
        """Load the official files (see `official_paths` for the accepted layouts).

        Raises:
            ValueError: listing every missing file, or naming an unreadable / incomplete checkpoint.
        """
        paths = official_paths(deps_dir, dataset, glove_dir)
        glove = [paths["glove"] / f"our_vab_{name}" for name in ("data.npy", "words.pkl", "idx.pkl")]
        _require_files([paths["checkpoint"], paths["mean"], paths["std"], *glove], "T2M evaluator")
        sds = load_checkpoint(paths["checkpoint"], weights_only)
        mean, std = np.load(paths["mean"]), np.load(paths["std"])
        evaluator = cls.from_state_dicts(
            sds["text_encoder"],
            sds["movement_encoder"],
            sds["motion_encoder"],
            mean,
            std,
            WordVectorizer(paths["glove"]),
        )
        return evaluator.to(device)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    # ---- encoders on prepared inputs ----

    @torch.no_grad()
    def encode_text(self, word_embs: Tensor, pos_ohot: Tensor, sent_lens: Tensor) -> Tensor:
        """(B, L, 300), (B, L, 15), (B,) valid tokens incl. sos/eos -> (B, 512). Any order of lengths."""
        return self.text_encoder(
            word_embs.to(self.device, torch.float32),
            pos_ohot.to(self.device, torch.float32),
            torch.as_tensor(sent_lens),
        )

    @torch.no_grad()
    def encode_motion(self, features: Tensor, lengths: Tensor | Sequence[int]) -> Tensor:
        """Motion embedding (B, 512) of evaluator-normalised features without foot contacts.

        Args:
            features: (B, T, 259), normalised by `renorm`; padding frames should be 0 (the official
                padding; the 3 frames after a sequence's end reach its last movement step).
            lengths: (B,) frames, >= 4 and <= T, any order; the GRU runs over lengths // 4 steps.
        """
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        if lengths.ndim != 1 or lengths.shape[0] != features.shape[0]:
            raise ValueError(f"lengths: expected shape ({features.shape[0]},), got {tuple(lengths.shape)}")
        if lengths.min() < UNIT_LENGTH or lengths.max() > features.shape[1]:
            raise ValueError(f"lengths: must lie in [{UNIT_LENGTH}, {features.shape[1]}], got {lengths.tolist()}")
        movements = self.movement_encoder(features.to(self.device, torch.float32))
        return self.motion_encoder(movements, lengths // UNIT_LENGTH)

    def renorm(self, features_raw: Tensor) -> Tensor:
        """Raw (un-normalised) features (..., 263) -> the evaluator's normalisation (MLD `renorm4t2m`)."""
        return (features_raw.to(self.device, torch.float32) - self.mean) / self.std

    # ---- the interface shared by all evaluators ----

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], tokens: Sequence[str]) -> Tensor:
        """(B, 512) text embeddings. T2M reads only the `word/POS` token strings; texts are checked for length."""
        if len(texts) != len(tokens):
            raise ValueError(f"texts and tokens: lengths differ ({len(texts)} vs {len(tokens)})")
        return self.encode_text(*tokens_to_inputs(tokens, self.vectorizer))

    @torch.no_grad()
    def embed_motions(self, features_raw: Tensor, lengths: Tensor | Sequence[int]) -> Tensor:
        """(B, 512) motion embeddings of raw features (B, T, 263) with valid lengths (B,) in frames.

        Frames past each length are zeroed after `renorm`. In MLD the padding is zero in dataset
        normalisation, i.e. (Mean - mean_eval) / std_eval = 0 after renorm4t2m, as the evaluator's mean is
        the HumanML3D Mean. Pad to the batch's longest motion as the official loop does: the last step of a
        sequence that ends exactly at T sees the conv's zero padding instead of padded frames.
        """
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        x = self.renorm(features_raw)
        x = x * lengths_to_mask(lengths.to(x.device), x.shape[1])[..., None]
        return self.encode_motion(x[..., :-FOOT_CONTACT_DIMS], lengths)
