"""Convert official MotionLCM / MLD checkpoints (`torch.save({"state_dict": ...})`) into model folders.

The file is read with `torch.load(weights_only=True)`: tensors and plain containers only, never arbitrary
pickled objects. Kind detection follows the official test.py / demo.py (docs/models.md).

Official motion-control checkpoints (`motionlcm_humanml_s_pelvis.ckpt`, `_s_all.ckpt`, `_t.ckpt`) carry the
student plus `controlnet.*` and `traj_encoder.*`; with the hint statistics they were trained with (official
`datasets/humanml_spatial_norm/Mean_raw.npy`, `Std_raw.npy`) the controller is written into the model folder's
`control/<name>` (models/control_folder.py), where generation finds it.
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
from motionlcm.data.hints import HintNormalizer, joint_set
from motionlcm.models.control_folder import SUBFOLDER, save_control_folder
from motionlcm.models.controlnet import ControlNet, TrajectoryEncoder, TrajectoryEncoderConfig
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
CONTROLNET_PREFIX, TRAJ_PREFIX = "controlnet.", "traj_encoder."  # motion control (MotionLCM sec. 3.3)
UNSUPPORTED_PREFIXES = (CONTROLNET_PREFIX, TRAJ_PREFIX)  # not part of the model folder itself
# official control checkpoints -> (joint set of hints.CONTROL_JOINTS, temporal); reference section 7.2:
# s_pelvis TRAIN_JOINTS [0], s_all [0, 10, 11, 15, 20, 21], t the same six on the first 25 % of the frames
CONTROL_KINDS = {"pelvis": ("pelvis", False), "all": ("all", False), "temporal": ("all", True)}
HINT_STATS = ("Mean_raw.npy", "Std_raw.npy")
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


def _conversion_meta(
    path: Path,
    version: str,
    kind: str,
    state_dict: dict[str, torch.Tensor],
    has_stats: bool,
    control_converted: bool = False,
) -> dict:
    notes = []
    if not has_stats:
        notes.append(STATS_NOTE)
    unsupported = _count(state_dict, UNSUPPORTED_PREFIXES)
    if unsupported and not control_converted:
        notes.append(
            f"{unsupported} motion-control keys (controlnet.*, traj_encoder.*) were not converted: give the hint "
            "statistics (--hint-stats, official datasets/humanml_spatial_norm) to install the controller"
        )
    text_keys = _count(state_dict, (TEXT_ENCODER_PREFIX,))
    if text_keys:
        notes.append(f"{text_keys} text_encoder.* keys were dropped; the text encoder is referenced, not stored")
    return {
        "source": {"file": path.name, "sha256": _sha256(path), "version": version, "kind": kind},
        "evaluator_keys_ignored": _count(state_dict, EVALUATOR_PREFIXES),
        "unsupported_keys_ignored": 0 if control_converted else unsupported,
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


def control_kind_from_name(path: Path) -> str | None:
    """ "pelvis", "all" or "temporal" from an official control checkpoint's file name, else None."""
    stem = path.stem
    if stem.endswith("_s_pelvis") or "_s_pelvis_" in stem:
        return "pelvis"
    if stem.endswith("_s_all") or "_s_all_" in stem:
        return "all"
    if re.search(r"_t(_v\d+)?$", stem):
        return "temporal"
    return None


def read_hint_stats(folder: str | Path) -> HintNormalizer:
    """Official `Mean_raw.npy` / `Std_raw.npy` ((66,) or (22, 3) joint-position statistics) of a folder."""
    folder = Path(folder)
    arrays = []
    for name in HINT_STATS:
        file = folder / name
        if not file.is_file():
            raise ValueError(f"{file}: missing (the hint statistics folder must hold {' and '.join(HINT_STATS)})")
        array = np.load(file, allow_pickle=False)
        if array.size != 66:
            raise ValueError(f"{file}: expected 66 values (22 joints x 3), got shape {array.shape}")
        arrays.append(array.reshape(22, 3).astype(np.float32))
    try:
        return HintNormalizer(*arrays)
    except ValueError as error:
        raise ValueError(f"{folder}: {error}") from None


def official_controller(
    state_dict: dict[str, torch.Tensor], version: str, denoiser_config: DenoiserConfig, source: str
) -> tuple[ControlNet, TrajectoryEncoder]:
    """The ControlNet and trajectory encoder of an official control checkpoint (V1: 1 x 256 latents and a
    cond embedding without activations; V2: 16 x 32, SiLU), checked key by key and shape by shape."""
    cond_act = None if version == "v1" else "silu"
    encoder_config = getattr(TrajectoryEncoderConfig, version)()
    with torch.device("meta"):
        expected_net = {k: tuple(v.shape) for k, v in ControlNet(denoiser_config, cond_act).state_dict().items()}
    problems = [
        find_mismatches(expected_net, _strip(state_dict, CONTROLNET_PREFIX), CONTROLNET_PREFIX),
        find_mismatches(
            expected_shapes(TrajectoryEncoder, encoder_config), _strip(state_dict, TRAJ_PREFIX), TRAJ_PREFIX
        ),
    ]
    problem = format_mismatches(*(a + b for a, b in zip(*problems, strict=True)))
    if problem:
        raise ValueError(f"{source}: motion-control keys do not match the official {version} layout: {problem}")
    net = build_with_weights(
        lambda config: ControlNet(config, cond_act), denoiser_config, _strip(state_dict, CONTROLNET_PREFIX)
    )
    encoder = build_with_weights(TrajectoryEncoder, encoder_config, _strip(state_dict, TRAJ_PREFIX))
    return net.eval(), encoder.eval()


def convert_official_checkpoint(
    ckpt_path: str | Path,
    version: str,
    out_dir: str | Path,
    text_encoder: dict[str, Any] | None = None,
    mean_std_dir: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
    hint_stats_dir: str | Path | None = None,
    control: str | None = None,
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
        hint_stats_dir: folder with the official `Mean_raw.npy` / `Std_raw.npy`: converts a control
            checkpoint's ControlNet and trajectory encoder into `<out_dir>/control/<control>`.
        control: what the controller was trained for, "pelvis", "all" or "temporal" (official
            `_s_pelvis`, `_s_all`, `_t`); default from the file name.

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
    controller = None
    if hint_stats_dir is not None:
        controller = _official_control(path, state_dict, version, den_config, kind, hint_stats_dir, control)
    meta = _conversion_meta(path, version, kind, state_dict, mean is not None, controller is not None)
    folder = save_model_folder(
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
    if controller is not None:
        name, (joints, temporal), net, encoder, normalizer = controller
        (Path(folder) / SUBFOLDER).mkdir(exist_ok=True)
        save_control_folder(
            Path(folder) / SUBFOLDER / name,
            controlnet=net,
            trajectory_encoder=encoder,
            hint_normalizer=normalizer,
            joints=joint_set(joints),
            temporal=temporal,
            base=denoiser,
            meta={"source": meta["source"], "hint_stats": str(hint_stats_dir)},
            dtype=dtype,
            overwrite=True,
        )
    return folder


def _official_control(
    path: Path,
    state_dict: dict[str, torch.Tensor],
    version: str,
    den_config: DenoiserConfig | None,
    kind: str,
    hint_stats_dir: str | Path,
    control: str | None,
) -> tuple:
    """(name, CONTROL_KINDS entry, ControlNet, trajectory encoder, hint statistics), checked before anything
    is written."""
    if kind != "student" or not _count(state_dict, UNSUPPORTED_PREFIXES):
        raise ValueError(f"{path}: --hint-stats is for motion-control checkpoints (a student with controlnet.* keys)")
    name = control or control_kind_from_name(path)
    if name not in CONTROL_KINDS:
        raise ValueError(
            f"{path}: give --control {' | '.join(CONTROL_KINDS)} (what the controller was trained for; "
            "the file name does not say)"
        )
    net, encoder = official_controller(state_dict, version, den_config, f"{path} ({version})")
    return name, CONTROL_KINDS[name], net, encoder, read_hint_stats(hint_stats_dir)
