"""Convert official MotionLCM / MLD checkpoints (`torch.save({"state_dict": ...})`) into model folders.

The file is read with `torch.load(weights_only=True)`: tensors and plain containers only, never arbitrary
pickled objects. Kind detection follows the official test.py / demo.py (docs/models.md).
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionlcm import presets
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.folder import (
    MEAN_FILE,
    STD_FILE,
    build_with_weights,
    expected_shapes,
    find_mismatches,
    format_mismatches,
    save_model_folder,
)
from motionlcm.models.vae import MotionVAE, VAEConfig

VERSIONS = presets.VERSIONS
VAE_PREFIX = "vae."
DENOISER_PREFIX = "denoiser."
EVALUATOR_PREFIXES = ("t2m_textencoder.", "t2m_moveencoder.", "t2m_motionencoder.")  # frozen T2M evaluator
UNSUPPORTED_PREFIXES = ("controlnet.", "traj_encoder.")  # motion control (MotionLCM §3.3), not converted
TEXT_ENCODER_PREFIX = "text_encoder."  # frozen sentence-t5, normally stripped from checkpoints
VAE_KEY = "vae.skel_embedding.weight"  # test.py / demo.py type detection
MLD_KEY = "denoiser.time_embedding.linear_1.weight"
LCM_KEY = "denoiser.time_embedding.cond_proj.weight"
DEFAULT_TEXT_ENCODER = {
    "kind": "sentence-t5",
    "path": None,
    "dim": 768,
    "note": "official checkpoints need sentence-t5-large: give its local path",
}
STATS_NOTE = "HumanML3D Mean.npy/Std.npy are not in official checkpoints and must be supplied"


def detect_kind(state_dict: dict[str, torch.Tensor]) -> str:
    """The checkpoint kind, `vae`, `teacher` (MLD) or `student` (MotionLCM), from the official key names (test.py / demo.py)."""
    if LCM_KEY in state_dict:
        return "student"
    if MLD_KEY in state_dict:
        return "teacher"
    if VAE_KEY in state_dict:
        return "vae"
    raise ValueError(f"not a MotionLCM/MLD checkpoint: none of {VAE_KEY}, {MLD_KEY}, {LCM_KEY} is present")


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"version: unknown {version!r}, expected one of {VERSIONS}")


def official_configs(version: str, state_dict: dict[str, torch.Tensor]) -> tuple[VAEConfig, DenoiserConfig | None]:
    """Configs of the official V1 or V2 modules for an official (prefixed) state dict.

    Architecture hyper-parameters come from the version's preset (configs_v1/ or configs/); the feature
    size (263 HumanML3D, 251 KIT) is read from `vae.skel_embedding.weight` and `time_cond_proj_dim` from
    `denoiser.time_embedding.cond_proj.weight`.

    Args:
        version: "v1" or "v2".
        state_dict: the official `state_dict` (keys `vae.*`, `denoiser.*`, ...).

    Returns:
        (VAEConfig, DenoiserConfig or None for a VAE-only checkpoint).
    """
    _check_version(version)
    kind = detect_kind(state_dict)
    if VAE_KEY not in state_dict:
        raise ValueError(f"no {VAE_KEY}: every official checkpoint carries its VAE")
    nfeats = int(state_dict[VAE_KEY].shape[-1])
    vae_config = getattr(VAEConfig, version)(nfeats=nfeats)
    if kind == "vae":
        return vae_config, None
    if kind == "student" and state_dict[LCM_KEY].ndim != 2:
        raise ValueError(
            f"{LCM_KEY}: expected a 2-D weight (out, guidance-embedding size), "
            f"got shape {tuple(state_dict[LCM_KEY].shape)}"
        )
    if state_dict[VAE_KEY].ndim != 2:
        raise ValueError(f"{VAE_KEY}: expected a 2-D weight, got shape {tuple(state_dict[VAE_KEY].shape)}")
    cond_dim = int(state_dict[LCM_KEY].shape[1]) if kind == "student" else None
    return vae_config, getattr(DenoiserConfig, version)(time_cond_proj_dim=cond_dim)


def _strip(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}


def _ignored_prefix(key: str) -> bool:
    return key.startswith(EVALUATOR_PREFIXES + UNSUPPORTED_PREFIXES + (TEXT_ENCODER_PREFIX,))


def _mismatch(version: str, state_dict: dict[str, torch.Tensor]) -> str | None:
    vae_config, den_config = official_configs(version, state_dict)
    missing, unexpected, wrong = find_mismatches(
        expected_shapes(MotionVAE, vae_config), _strip(state_dict, VAE_PREFIX), VAE_PREFIX
    )
    den_expected = expected_shapes(LatentDenoiser, den_config) if den_config is not None else {}
    for found, extra in zip(
        (missing, unexpected, wrong),
        find_mismatches(den_expected, _strip(state_dict, DENOISER_PREFIX), DENOISER_PREFIX),
        strict=True,
    ):
        found.extend(extra)
    unexpected.extend(
        k for k in state_dict if not k.startswith((VAE_PREFIX, DENOISER_PREFIX)) and not _ignored_prefix(k)
    )
    return format_mismatches(missing, unexpected, wrong)


def split_official_state_dict(
    state_dict: dict[str, torch.Tensor], version: str, source: str = "state dict"
) -> tuple[dict[str, torch.Tensor] | None, dict[str, torch.Tensor] | None, str]:
    """Validate an official state dict against our V1/V2 modules and split it by module.

    Evaluator (`t2m_*`), text-encoder and motion-control (`controlnet.*`, `traj_encoder.*`) keys are
    ignored. Any missing, unexpected or wrongly shaped `vae.*` / `denoiser.*` key raises one ValueError
    that lists them, with a hint when the other version fits.

    Args:
        state_dict: the official `state_dict`.
        version: "v1" or "v2".
        source: name of the file, for error messages.

    Returns:
        (vae state dict, denoiser state dict or None, kind), keys without their prefixes.
    """
    _check_version(version)
    try:
        problem = _mismatch(version, state_dict)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    if problem:
        other = VERSIONS[1 - VERSIONS.index(version)]
        hint = ""
        try:
            if _mismatch(other, state_dict) is None:
                hint = f": is this a {other.upper()} checkpoint? use --version {other}"
        except ValueError:
            pass
        raise ValueError(f"{source}: does not match the official {version} layout: {problem}{hint}")
    kind = detect_kind(state_dict)
    denoiser_sd = _strip(state_dict, DENOISER_PREFIX) if kind != "vae" else None
    return _strip(state_dict, VAE_PREFIX), denoiser_sd, kind


def load_official_state_dict(ckpt_path: str | Path) -> dict[str, torch.Tensor]:
    """Read the `state_dict` of an official checkpoint without unpickling arbitrary objects.

    Args:
        ckpt_path: a `.ckpt` file written by the official training scripts.

    Returns:
        The state dict (tensors on the CPU).
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found is None:
            raise ValueError(f"{path}: not a readable torch checkpoint (weights-only unpickling failed)") from None
        raise ValueError(
            f"{path}: holds pickled objects other than tensors, e.g. {found.group(1)}; "
            "refused (torch.load weights_only=True)"
        ) from None
    except (RuntimeError, KeyError, EOFError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise ValueError(f"{path}: expected a dict with a 'state_dict' entry (official checkpoint format)")  # noqa: TRY004
    state_dict = payload["state_dict"]
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: state_dict has non-tensor entries {bad[:10]}")
    return state_dict


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> int:
    return sum(k.startswith(prefixes) for k in state_dict)


def _conversion_meta(path: Path, version: str, kind: str, state_dict: dict[str, torch.Tensor], has_stats: bool) -> dict:
    notes = []
    if not has_stats:
        notes.append(STATS_NOTE)
    unsupported = _count(state_dict, UNSUPPORTED_PREFIXES)
    if unsupported:
        notes.append(
            f"{unsupported} motion-control keys (controlnet.*, traj_encoder.*) are not supported and were dropped"
        )
    text_keys = _count(state_dict, (TEXT_ENCODER_PREFIX,))
    if text_keys:
        notes.append(f"{text_keys} text_encoder.* keys were dropped; the text encoder is referenced, not stored")
    return {
        "source": {"file": path.name, "sha256": _sha256(path), "version": version, "kind": kind},
        "evaluator_keys_ignored": _count(state_dict, EVALUATOR_PREFIXES),
        "unsupported_keys_ignored": unsupported,
        "text_encoder_keys_ignored": text_keys,
        "sampling": {"scheduler": version},  # V1 students use diffusers' spacing, V2 the timestep map
        "notes": notes,
    }


def _read_stats(mean_std_dir: str | Path | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    if mean_std_dir is None:
        return None, None
    folder = Path(mean_std_dir)
    arrays = []
    for name in (MEAN_FILE, STD_FILE):
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name}: missing (mean_std_dir must hold {MEAN_FILE} and {STD_FILE})")
        arrays.append(np.load(folder / name, allow_pickle=False))
    return arrays[0], arrays[1]


def convert_official_checkpoint(
    ckpt_path: str | Path,
    version: str,
    out_dir: str | Path,
    text_encoder: dict[str, Any] | None = None,
    mean_std_dir: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Convert an official V1/V2 VAE, MLD or MotionLCM checkpoint into a model folder.

    Args:
        ckpt_path: the official `.ckpt` file.
        version: "v1" (configs_v1/) or "v2" (configs/); not auto-detected, as in the official code.
        out_dir: the model folder to write.
        text_encoder: text-encoder reference stored in model.json (default: sentence-t5-large, no path).
        mean_std_dir: folder with HumanML3D `Mean.npy` / `Std.npy` to copy into the model folder.
        dtype: stored weight dtype.
        overwrite: replace an existing model folder.

    Returns:
        The model folder path.
    """
    path = Path(ckpt_path)
    _check_version(version)
    state_dict = load_official_state_dict(path)
    vae_sd, denoiser_sd, kind = split_official_state_dict(state_dict, version, source=f"{path} ({version})")
    vae_config, den_config = official_configs(version, state_dict)
    vae = build_with_weights(MotionVAE, vae_config, vae_sd)
    denoiser = build_with_weights(LatentDenoiser, den_config, denoiser_sd) if den_config is not None else None
    mean, std = _read_stats(mean_std_dir)
    meta = _conversion_meta(path, version, kind, state_dict, mean is not None)
    return save_model_folder(
        out_dir,
        vae=vae,
        denoiser=denoiser,
        mean=mean,
        std=std,
        text_encoder=dict(DEFAULT_TEXT_ENCODER) if text_encoder is None else text_encoder,
        meta=meta,
        dtype=dtype,
        overwrite=overwrite,
    )
