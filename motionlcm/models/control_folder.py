"""Controller folders: a trained ControlNet + trajectory encoder for one student, no pickle.

A model folder keeps its controllers in `control/<name>/` (e.g. `checkpoints/bandai-namco/control/pelvis`), where
`MotionLCM.from_pretrained` finds them. Layout::

    control.json                 format "motionlcm-control" v1: what it controls (spatial `joints`; `temporal`
                                 with the `prefix_joints` a prefix may hold), configs, hint statistics, the
                                 fingerprint of the student it was trained on, meta
    controlnet.safetensors       ControlNet state dict (official `controlnet.*` names without the prefix)
    trajectory_encoder.safetensors  TrajectoryEncoder state dict (official `traj_encoder.*` names)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from motionlcm.data.hints import HintNormalizer
from motionlcm.models.controlnet import ControlNet, TrajectoryEncoder, TrajectoryEncoderConfig
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.folder import _load_module, _tensors_for_file, read_folder_header, write_folder_atomically

FORMAT_NAME = "motionlcm-control"
FORMAT_VERSION = 1
CONFIG_FILE = "control.json"
CONTROLNET_FILE = "controlnet.safetensors"
ENCODER_FILE = "trajectory_encoder.safetensors"
SUBFOLDER = "control"  # <model folder>/control/<name>


@dataclass
class ControlFolder:
    """A loaded controller (modules in eval mode)."""

    path: Path
    joints: tuple[int, ...]
    temporal: bool
    controlnet: ControlNet
    trajectory_encoder: TrajectoryEncoder
    hint_normalizer: HintNormalizer
    base_fingerprint: str
    meta: dict[str, Any] = field(default_factory=dict)
    spatial: bool = True  # controls `joints` at any frames
    prefix_joints: tuple[int, ...] = ()  # with `temporal`: the joints a prefix (the first frames) may hold

    def covers(self, joints: set[int], temporal: bool) -> bool:
        """Whether this controller was trained for hints on `joints`: a prefix (`temporal`) or any frames."""
        if temporal:
            return self.temporal and joints <= set(self.prefix_joints)
        return self.spatial and joints <= set(self.joints)

    @property
    def name(self) -> str:
        return self.path.name


def denoiser_fingerprint(denoiser: LatentDenoiser) -> str:
    """sha256 of the denoiser's weights rounded to float16 (a shipped half-precision copy matches its run)."""
    digest = hashlib.sha256()
    for key, value in sorted(denoiser.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_control_folder(
    path: str | Path,
    *,
    controlnet: ControlNet,
    trajectory_encoder: TrajectoryEncoder,
    hint_normalizer: HintNormalizer,
    joints: tuple[int, ...],
    temporal: bool,
    base: LatentDenoiser,
    spatial: bool | None = None,
    prefix_joints: tuple[int, ...] | list[int] | None = None,
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Write a controller folder atomically (see the module docstring). `spatial` defaults to `not temporal`
    (the official models do one or the other), `prefix_joints` to `joints` when temporal."""
    spatial = (not temporal) if spatial is None else spatial
    prefix_joints = (joints if temporal else ()) if prefix_joints is None else prefix_joints
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "joints": [int(j) for j in joints],
        "temporal": bool(temporal),
        "spatial": bool(spatial),
        "prefix_joints": [int(j) for j in prefix_joints],
        "dtype": str(dtype).removeprefix("torch."),
        "controlnet": {**controlnet.config.to_dict(), "cond_act": controlnet.cond_act},
        "trajectory_encoder": trajectory_encoder.config.to_dict(),
        "hint_normalizer": hint_normalizer.to_dict(),
        "base_fingerprint": denoiser_fingerprint(base),
        "meta": meta or {},
    }
    text = json.dumps(header, indent=2) + "\n"

    def write(tmp: Path) -> None:
        save_file(_tensors_for_file(controlnet, dtype), str(tmp / CONTROLNET_FILE), metadata={"format": "pt"})
        save_file(_tensors_for_file(trajectory_encoder, dtype), str(tmp / ENCODER_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(text)

    return write_folder_atomically(Path(path), overwrite, CONFIG_FILE, write, what="a controller folder")


def _controlnet_builder(cond_act: str | None):
    return lambda config: ControlNet(config, cond_act)


def load_control_folder(path: str | Path, device: str | torch.device = "cpu") -> ControlFolder:
    """Load a folder written by `save_control_folder`; every problem is a ValueError naming the file."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    header = read_folder_header(path, CONFIG_FILE, FORMAT_NAME, FORMAT_VERSION, "a controller folder")
    try:
        net_dict = dict(header["controlnet"])
        cond_act = net_dict.pop("cond_act", "silu")
        net_config = DenoiserConfig.from_dict(net_dict)
        encoder_config = TrajectoryEncoderConfig.from_dict(header["trajectory_encoder"])
        normalizer = HintNormalizer.from_dict(header["hint_normalizer"])
        joints = tuple(int(j) for j in header["joints"])
        temporal, fingerprint = bool(header["temporal"]), str(header["base_fingerprint"])
        spatial = bool(header.get("spatial", not temporal))
        prefix_joints = tuple(int(j) for j in header.get("prefix_joints", joints if temporal else ()))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{config_path}: bad field ({error})") from None
    if (encoder_config.latent_size, encoder_config.latent_dim) != (net_config.latent_size, net_config.latent_dim):
        raise ValueError(f"{config_path}: trajectory encoder and ControlNet latent shapes differ")
    controlnet = _load_module(path, CONTROLNET_FILE, _controlnet_builder(cond_act), net_config, device)
    encoder = _load_module(path, ENCODER_FILE, TrajectoryEncoder, encoder_config, device)
    return ControlFolder(
        path,
        joints,
        temporal,
        controlnet,
        encoder,
        normalizer,
        fingerprint,
        header.get("meta") or {},
        spatial,
        prefix_joints,
    )


def find_controllers(model_dir: str | Path) -> list[Path]:
    """The controller folders of a model folder (`<model_dir>/control/*/control.json`), sorted by name."""
    root = Path(model_dir) / SUBFOLDER
    return sorted(p.parent for p in root.glob(f"*/{CONFIG_FILE}")) if root.is_dir() else []


def install_controller(source: str | Path, model_dir: str | Path, name: str, overwrite: bool = False) -> Path:
    """Write the controller folder `source` into `<model_dir>/control/<name>` (atomically), in the model folder's
    precision (a half-precision model gets a half-precision controller), after checking that it was trained on
    that folder's denoiser."""
    from motionlcm.models.folder import CONFIG_FILE as MODEL_CONFIG
    from motionlcm.models.folder import load_model_folder

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"controller name {name!r}: expected a plain folder name such as 'pelvis'")
    controller = load_control_folder(source)
    model = load_model_folder(model_dir)
    if model.denoiser is None or denoiser_fingerprint(model.denoiser) != controller.base_fingerprint:
        raise ValueError(f"{source}: trained on another denoiser than {model_dir}'s; not installed")
    dtype = getattr(torch, json.loads((Path(model_dir) / MODEL_CONFIG).read_text()).get("dtype", "float32"))
    target = Path(model_dir) / SUBFOLDER / name
    target.parent.mkdir(exist_ok=True)
    return save_control_folder(
        target,
        controlnet=controller.controlnet,
        trajectory_encoder=controller.trajectory_encoder,
        hint_normalizer=controller.hint_normalizer,
        joints=controller.joints,
        temporal=controller.temporal,
        spatial=controller.spatial,
        prefix_joints=controller.prefix_joints,
        base=model.denoiser,
        meta={**controller.meta, "installed_from": str(source)},
        dtype=dtype,
        overwrite=overwrite,
    )
