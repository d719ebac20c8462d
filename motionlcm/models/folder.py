"""Model folders: a self-describing directory with a VAE and/or a denoiser, their configs, the feature
normalisation and a reference to the text encoder. No pickle, no Lightning.

Layout::

    model.json              format "motionlcm-model" v1: kind, configs, text-encoder reference, meta
    vae.safetensors         MotionVAE state dict (official key names, no "vae." prefix)
    denoiser.safetensors    LatentDenoiser state dict (official key names, no "denoiser." prefix)
    Mean.npy, Std.npy       (nfeats,) feature normalisation, optional
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from motionlcm import presets
from motionlcm.io.atomic import write_folder_atomic
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig, build_vae

FORMAT_NAME = "motionlcm-model"
FORMAT_VERSION = 1
CONFIG_FILE = "model.json"
VAE_FILE = "vae.safetensors"
DENOISER_FILE = "denoiser.safetensors"
MEAN_FILE = "Mean.npy"
STD_FILE = "Std.npy"
KINDS = ("vae", "teacher", "student")


@dataclass
class ModelFolder:
    """A loaded model folder; modules are in eval mode on the requested device."""

    path: Path
    kind: str
    vae: MotionVAE | None
    denoiser: LatentDenoiser | None
    mean: np.ndarray | None
    std: np.ndarray | None
    text_encoder: dict[str, Any] | None
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------
# State-dict checks (shared with convert.py)


def model_kind(vae_config: VAEConfig | None, denoiser_config: DenoiserConfig | None) -> str:
    """The model kind: `vae` (VAE only), `teacher` (the MLD denoiser) or `student` (a denoiser with the LCM
    guidance projection, cond_proj)."""
    if denoiser_config is not None:
        return "student" if denoiser_config.is_lcm else "teacher"
    if vae_config is not None:
        return "vae"
    raise ValueError("model: needs a vae and/or a denoiser, got neither")


def expected_shapes(module_cls: type[nn.Module], config: Any) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape of a module built from `config`, without allocating weights."""
    with torch.device("meta"):
        module = module_cls(config)
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


def find_mismatches(
    expected: dict[str, tuple[int, ...]], state_dict: dict[str, torch.Tensor], prefix: str = ""
) -> tuple[list[str], list[str], list[str]]:
    """Missing keys, unexpected keys and "key expects (..), got (..)" shape errors, keys with `prefix`."""
    missing = [prefix + k for k in expected if k not in state_dict]
    unexpected = [prefix + k for k in state_dict if k not in expected]
    wrong = [
        f"{prefix}{k} expects {expected[k]}, got {tuple(v.shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    return missing, unexpected, wrong


def format_mismatches(missing: list[str], unexpected: list[str], wrong: list[str], limit: int = 10) -> str | None:
    """e.g. "2 missing [a, b]; 1 wrong shape [c expects (32, 256), got (2, 256)]", or None if all lists are
    empty; at most `limit` entries are named per list."""
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            shown = ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
            parts.append(f"{len(items)} {label} [{shown}]")
    return "; ".join(parts) or None


def describe_mismatch(
    expected: dict[str, tuple[int, ...]],
    state_dict: dict[str, torch.Tensor],
    prefix: str = "",
    limit: int = 10,
) -> str | None:
    """One-line description of how `state_dict` differs from `expected` (key -> shape), or None.

    Args:
        expected: key -> shape, e.g. from `expected_shapes`.
        state_dict: the tensors to check.
        prefix: prepended to key names in the message (e.g. "vae.").
        limit: at most this many keys are named per category.

    Returns:
        The description (see `format_mismatches`), or None when keys and shapes match exactly.
    """
    return format_mismatches(*find_mismatches(expected, state_dict, prefix), limit=limit)


def build_with_weights(module_cls: type[nn.Module], config: Any, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Build a module and give it `state_dict`'s weights (as contiguous float32 CPU copies).

    The module is created on the meta device and the tensors are assigned, so no time is spent on a
    random initialisation that would be overwritten. The keys and shapes must match exactly.
    """
    with torch.device("meta"):
        module = module_cls(config)
    weights = {k: v.to("cpu", torch.float32).contiguous() for k, v in state_dict.items()}
    module.load_state_dict(weights, strict=True, assign=True)
    return module


# ----------------------------------------------------------------------------------------------------
# Save


def _tensors_for_file(module: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in module.state_dict().items()
    }


def _check_stats(name: str, value: np.ndarray | torch.Tensor | None, nfeats: int | None) -> np.ndarray | None:
    if value is None:
        return None
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim != 1 or (nfeats is not None and array.shape[0] != nfeats):
        raise ValueError(f"{name}: expected shape ({nfeats or 'nfeats'},), got {array.shape}")
    return array.astype(np.float32)


def _check_latents_match(vae: MotionVAE | None, denoiser: LatentDenoiser | None) -> None:
    if vae is None or denoiser is None:
        return
    v, d = vae.config, denoiser.config
    if (v.latent_size, v.latent_dim) != (d.latent_size, d.latent_dim):
        raise ValueError(
            f"denoiser latents {d.latent_size}x{d.latent_dim} do not match the vae's {v.latent_size}x{v.latent_dim}"
        )


def _prepare_target(path: Path, overwrite: bool, config_file: str, what: str) -> None:
    if not path.exists():
        return
    if not overwrite:
        raise ValueError(f"{path}: already exists (use --force, or overwrite=True in Python, to replace it)")
    if not path.is_dir() or (any(path.iterdir()) and not (path / config_file).is_file()):
        raise ValueError(f"{path}: exists and is not {what}; refusing to replace it")


def write_folder_atomically(
    path: Path, overwrite: bool, config_file: str, write: Callable[[Path], None], what: str = "a model folder"
) -> Path:
    """Fill a temporary sibling folder with `write(tmp)`, then swap it into place at `path`.

    An existing `path` is replaced only with `overwrite` and only if it holds `config_file` (or is empty);
    on any error the temporary folder is removed and `path` is untouched.
    """
    _prepare_target(path, overwrite, config_file, what)
    return write_folder_atomic(path, write)


def save_model_folder(
    path: str | Path,
    *,
    vae: MotionVAE | None = None,
    denoiser: LatentDenoiser | None = None,
    mean: np.ndarray | torch.Tensor | None = None,
    std: np.ndarray | torch.Tensor | None = None,
    text_encoder: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Write a model folder atomically (a temporary sibling folder renamed into place).

    Args:
        path: the folder to create.
        vae: the motion VAE, or None.
        denoiser: the denoiser (teacher or LCM student), or None; its kind decides "teacher" vs "student".
        mean: (nfeats,) feature mean; must come with `std`.
        std: (nfeats,) feature std.
        text_encoder: JSON-serialisable reference to the text encoder (e.g. kind, path, dim).
        meta: JSON-serialisable free-form information (provenance, training step, notes).
        dtype: floating-point dtype of the stored weights (float32 or float16/bfloat16).
        overwrite: replace an existing model folder at `path`.

    Returns:
        The folder path.
    """
    path = Path(path)
    kind = model_kind(vae.config if vae else None, denoiser.config if denoiser else None)
    _check_latents_match(vae, denoiser)
    if (mean is None) != (std is None):
        raise ValueError("mean/std: give both or neither")
    nfeats = vae.config.nfeats if vae is not None else None
    mean, std = _check_stats("mean", mean, nfeats), _check_stats("std", std, nfeats)
    if not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating-point dtype, got {dtype}")
    files = {
        "vae": VAE_FILE if vae is not None else None,
        "denoiser": DENOISER_FILE if denoiser is not None else None,
        "mean": MEAN_FILE if mean is not None else None,
        "std": STD_FILE if std is not None else None,
    }
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "dtype": str(dtype).removeprefix("torch."),
        "vae": vae.config.to_dict() if vae is not None else None,
        "denoiser": denoiser.config.to_dict() if denoiser is not None else None,
        "text_encoder": text_encoder,
        "files": files,
        "meta": meta or {},
    }
    try:
        header_text = json.dumps(header, indent=2) + "\n"
    except TypeError as error:
        raise ValueError(f"text_encoder/meta: not JSON-serialisable ({error})") from None

    def write(tmp: Path) -> None:
        for module, name in ((vae, VAE_FILE), (denoiser, DENOISER_FILE)):
            if module is not None:
                save_file(_tensors_for_file(module, dtype), str(tmp / name), metadata={"format": "pt"})
        if mean is not None:
            np.save(tmp / MEAN_FILE, mean)
            np.save(tmp / STD_FILE, std)
        (tmp / CONFIG_FILE).write_text(header_text)

    return write_folder_atomically(path, overwrite, CONFIG_FILE, write)


# ----------------------------------------------------------------------------------------------------
# Load


def read_folder_header(
    path: Path, config_file: str, format_name: str, format_version: int, what: str
) -> dict[str, Any]:
    """The JSON header `<path>/<config_file>` of a folder format, checked for its format name and version; a
    missing, unreadable or foreign file is a ValueError naming it (shared by model and controller folders)."""
    config_path = path / config_file
    if not config_path.is_file():
        raise ValueError(f"{path}: not {what} (no {config_file})")
    try:
        header = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path}: invalid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != format_name:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise ValueError(f"{config_path}: unknown format {found!r}, expected {format_name!r}")
    if header.get("format_version") != format_version:
        raise ValueError(
            f"{config_path}: unsupported format_version {header.get('format_version')!r}, expected {format_version}"
        )
    return header


def _read_header(path: Path) -> dict[str, Any]:
    return read_folder_header(path, CONFIG_FILE, FORMAT_NAME, FORMAT_VERSION, "a model folder")


def _load_module(path: Path, name: str, module_cls: type[nn.Module], config: Any, device: str) -> nn.Module:
    file = path / name
    if not file.is_file():
        raise ValueError(f"{file}: missing (listed in {CONFIG_FILE})")
    try:
        state_dict = load_file(str(file), device="cpu")
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{file}: unreadable safetensors file ({error})") from None
    problem = describe_mismatch(expected_shapes(module_cls, config), state_dict)
    if problem:
        raise ValueError(f"{file}: weights do not match the config in {CONFIG_FILE}: {problem}")
    broken = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        more = f" and {len(broken) - 1} more" if len(broken) > 1 else ""
        raise ValueError(f"{file}: tensor {broken[0]}{more} holds NaN or infinite values")
    return build_with_weights(module_cls, config, state_dict).to(device).eval()


def _load_stats(path: Path, name: str, nfeats: int | None) -> np.ndarray:
    """Mean.npy / Std.npy: one finite float per feature (and a positive Std), checked before use."""
    from motionlcm.io.npy import read_npy_header

    file = path / name
    if not file.is_file():
        raise ValueError(f"{file}: missing (listed in {CONFIG_FILE})")
    header = read_npy_header(file)
    if len(header.shape) != 1 or (nfeats is not None and header.shape[0] != nfeats):
        raise ValueError(f"{file}: expected shape ({nfeats or 'nfeats'},), got {header.shape}")
    if header.dtype.kind != "f":
        raise ValueError(f"{file}: expected floating-point values, got dtype {header.dtype}")
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{file}: unreadable ({error})") from None
    if not np.isfinite(array).all() or (name == STD_FILE and not (array > 0).all()):
        raise ValueError(f"{file}: holds NaN, infinite{' or non-positive' if name == STD_FILE else ''} values")
    return array


def load_model_folder(path: str | Path, device: str | torch.device = "cpu") -> ModelFolder:
    """Load a folder written by `save_model_folder` (weights as float32, modules in eval mode).

    Args:
        path: the model folder.
        device: where to put the modules.

    Returns:
        The `ModelFolder`.
    """
    path = Path(path)
    header = _read_header(path)
    try:
        vae_config = VAEConfig.from_dict(header["vae"]) if header.get("vae") else None
        den_config = DenoiserConfig.from_dict(header["denoiser"]) if header.get("denoiser") else None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path / CONFIG_FILE}: bad config ({error})") from None
    kind = model_kind(vae_config, den_config)
    if presets.ROLE_ALIASES.get(header.get("kind"), header.get("kind")) != kind:
        raise ValueError(f"{path / CONFIG_FILE}: kind {header.get('kind')!r} does not match its configs ({kind!r})")
    vae = _load_module(path, VAE_FILE, build_vae, vae_config, device) if vae_config else None
    denoiser = _load_module(path, DENOISER_FILE, LatentDenoiser, den_config, device) if den_config else None
    files = header.get("files") or {}
    if not isinstance(files, dict):
        raise ValueError(f"{path / CONFIG_FILE}: files: expected an object, got {type(files).__name__}")
    nfeats = vae_config.nfeats if vae_config else None
    mean = _load_stats(path, MEAN_FILE, nfeats) if files.get("mean") else None
    std = _load_stats(path, STD_FILE, nfeats) if files.get("std") else None
    return ModelFolder(path, kind, vae, denoiser, mean, std, header.get("text_encoder"), header.get("meta") or {})
