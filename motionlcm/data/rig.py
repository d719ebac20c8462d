"""Rig files: how a BVH skeleton maps onto the 22 SMPL joints of HumanML3D, with units and axes.

A rig file is YAML (see docs/rig-files.md and datasets/bandai-namco/rig.yaml). Each SMPL joint is a source
joint, a source joint plus an offset in that joint's local frame, or a weighted blend of source joints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from motionlcm.data.skeleton import FPS, JOINT_NAMES
from motionlcm.io.text import read_text_file

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class JointSource:
    """One SMPL joint: sum of weight * world position of source joints, plus an offset in `frame_joint`."""

    weights: dict[str, float]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frame_joint: str | None = None


@dataclass
class Rig:
    """A source skeleton's mapping onto the SMPL joints, its units and its axes."""

    name: str
    joints: dict[str, JointSource]
    scale: float = 1.0  # metres per source unit
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))  # rows: source vectors of HumanML3D x, y, z
    fps: float | None = None  # overrides the BVH Frame Time when set
    licence: str | None = None
    path: Path | None = None
    reference: Path | None = None  # a BVH with the mapped skeleton (for export onto the rig), if the file names one

    @classmethod
    def load(cls, path: str | Path) -> Rig:
        """Read and validate a rig YAML file; errors name the file and the key."""
        path = Path(path)
        try:
            data = yaml.safe_load(read_text_file(path, "rig file"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: cannot read rig file: {exc}".splitlines()[0]) from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<rig>") -> Rig:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a rig file must be a mapping")
        unknown = set(data) - {
            "name",
            "description",
            "licence",
            "units",
            "scale",
            "up",
            "forward",
            "left",
            "fps",
            "joints",
            "reference",
        }
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
        joints = _parse_joints(data.get("joints"), source)
        fps = data.get("fps")
        if fps is not None and not (isinstance(fps, (int, float)) and fps > 0):
            raise ValueError(f"{source}: fps: must be a positive number, got {fps!r}")
        return cls(
            name=str(data.get("name", Path(source).stem)),
            joints=joints,
            scale=_parse_scale(data, source),
            axes=_parse_axes(data, source),
            fps=fps,
            licence=data.get("licence"),
            path=Path(source) if source != "<rig>" else None,
            reference=_parse_reference(data, source),
        )

    def source_joints(self) -> set[str]:
        """Every source joint name the mapping reads."""
        names = set()
        for src in self.joints.values():
            names.update(src.weights)
            if src.frame_joint:
                names.add(src.frame_joint)
        return names

    def map_positions(self, positions: np.ndarray, rotations: np.ndarray, names: list[str]) -> np.ndarray:
        """Source world positions/rotations -> SMPL joints in metres, HumanML3D axes.

        Args:
            positions: (F, J, 3) source world positions, source units.
            rotations: (F, J, 3, 3) source world rotations (used by offsets).
            names: the J source joint names.

        Returns:
            (F, 22, 3) joint positions in metres, y up, left = +x when facing +z.
        """
        index = {n: i for i, n in enumerate(names)}
        missing = sorted(self.source_joints() - set(index))
        if missing:
            raise ValueError(f"rig {self.name!r} needs joint(s) {', '.join(missing)} absent from the BVH")
        out = np.zeros((positions.shape[0], len(JOINT_NAMES), 3))
        for k, smpl in enumerate(JOINT_NAMES):
            src = self.joints[smpl]
            for name, w in src.weights.items():
                out[:, k] += w * positions[:, index[name]]
            if src.frame_joint is not None:
                out[:, k] += rotations[:, index[src.frame_joint]] @ np.asarray(src.offset)
        return (out * self.scale) @ self.axes.T


def _parse_reference(data: dict, source: str) -> Path | None:
    """The `reference` BVH, relative to the rig file's folder."""
    if "reference" not in data:
        return None
    value = data["reference"]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{source}: reference: must be the path of a BVH file, got {value!r}")
    path = Path(value)
    return path if path.is_absolute() or source == "<rig>" else Path(source).parent / path


def _parse_joints(spec: Any, source: str) -> dict[str, JointSource]:
    if not isinstance(spec, dict):
        raise ValueError(f"{source}: joints: must map each of the 22 SMPL joint names to a source")
    missing = [n for n in JOINT_NAMES if n not in spec]
    unknown = [n for n in spec if n not in JOINT_NAMES]
    if missing or unknown:
        what = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(map(str, unknown))}"
        raise ValueError(f"{source}: joints: {what} (expected the 22 SMPL joints: {', '.join(JOINT_NAMES)})")
    return {name: _parse_joint(spec[name], f"{source}: joints.{name}") for name in JOINT_NAMES}


def _parse_joint(value: Any, where: str) -> JointSource:
    if isinstance(value, str):
        return JointSource(weights={value: 1.0})
    if not isinstance(value, dict) or not ({"joint", "blend"} & set(value)):
        raise ValueError(f"{where}: must be a joint name, {{joint: NAME, offset: [x, y, z]}} or {{blend: {{NAME: w}}}}")
    if set(value) - {"joint", "offset", "blend"}:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(set(value) - {'joint', 'offset', 'blend'}))}")
    if "blend" in value:
        if "joint" in value:
            raise ValueError(f"{where}: give either joint or blend, not both")
        blend = value["blend"]
        if not isinstance(blend, dict) or not blend or not all(isinstance(w, (int, float)) for w in blend.values()):
            raise ValueError(f"{where}.blend: must map source joint names to numeric weights")
        if abs(sum(blend.values()) - 1.0) > 1e-6:
            raise ValueError(f"{where}.blend: weights must sum to 1, got {sum(blend.values()):g}")
        weights = {str(k): float(w) for k, w in blend.items()}
        frame_joint = None
    else:
        weights, frame_joint = {str(value["joint"]): 1.0}, str(value["joint"])
    offset = value.get("offset", (0.0, 0.0, 0.0))
    if not (
        isinstance(offset, (list, tuple)) and len(offset) == 3 and all(isinstance(v, (int, float)) for v in offset)
    ):
        raise ValueError(f"{where}.offset: must be three numbers, got {offset!r}")
    if "offset" in value and frame_joint is None:
        raise ValueError(f"{where}.offset: only allowed with joint (the offset is in that joint's frame)")
    return JointSource(weights=weights, offset=tuple(float(v) for v in offset), frame_joint=frame_joint)


_UNITS = {"m": 1.0, "meters": 1.0, "metres": 1.0, "cm": 0.01, "centimeters": 0.01, "centimetres": 0.01,
          "mm": 0.001, "millimeters": 0.001, "millimetres": 0.001, "inches": 0.0254, "in": 0.0254}  # fmt: skip


def _parse_scale(data: dict, source: str) -> float:
    if "scale" in data and "units" in data:
        raise ValueError(f"{source}: give either units or scale, not both")
    if "scale" in data:
        scale = data["scale"]
        if not isinstance(scale, (int, float)) or scale <= 0:
            raise ValueError(f"{source}: scale: must be a positive number (metres per unit), got {scale!r}")
        return float(scale)
    units = str(data.get("units", "m")).lower()
    if units not in _UNITS:
        raise ValueError(f"{source}: units: {units!r} is not one of {', '.join(_UNITS)}")
    return _UNITS[units]


def _axis_vector(value: Any, key: str, source: str) -> np.ndarray:
    text = str(value).strip().lower()
    sign = -1.0 if text.startswith("-") else 1.0
    axis = text.lstrip("+-")
    if axis not in _AXES:
        raise ValueError(f"{source}: {key}: must be one of +x, -x, +y, -y, +z, -z, got {value!r}")
    vec = np.zeros(3)
    vec[_AXES[axis]] = sign
    return vec


def _parse_axes(data: dict, source: str) -> np.ndarray:
    """Rows are the source-space directions of HumanML3D's x (left), y (up) and z (forward)."""
    up = _axis_vector(data.get("up", "+y"), "up", source)
    forward = _axis_vector(data.get("forward", "+z"), "forward", source)
    if abs(up @ forward) > 0:
        raise ValueError(f"{source}: up and forward must be different axes")
    left = np.cross(up, forward)  # right-handed source: left = up x forward, as in HumanML3D (y x z = x)
    if "left" in data:
        left = _axis_vector(data["left"], "left", source)
        if abs(left @ up) > 0 or abs(left @ forward) > 0:
            raise ValueError(f"{source}: left must differ from up and forward")
    return np.stack((left, up, forward))


def nominal_fps(frame_time: float) -> float:
    """Frame rate from a BVH Frame Time, snapped to an integer when the file rounded it (0.0333333 -> 30)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if abs(fps - round(fps)) < 1e-3 else fps


def resample_positions(positions: np.ndarray, src_fps: float, dst_fps: float = FPS) -> np.ndarray:
    """Linear interpolation of (F, J, 3) positions from src_fps to dst_fps at times k / dst_fps.

    Gives floor((F - 1) * dst_fps / src_fps) + 1 frames (every src/dst frame-time grid point that fits); the
    uniform-skeleton step re-imposes bone lengths afterwards, so interpolating positions is enough.
    """
    if positions.shape[0] == 0:
        return positions
    count = int(np.floor((positions.shape[0] - 1) * dst_fps / src_fps + 1e-9)) + 1
    src = np.arange(count) * (src_fps / dst_fps)
    lo = np.minimum(np.floor(src + 1e-9).astype(int), positions.shape[0] - 1)
    hi = np.minimum(lo + 1, positions.shape[0] - 1)
    frac = np.clip(src - lo, 0.0, 1.0)[:, None, None]
    return positions[lo] * (1.0 - frac) + positions[hi] * frac
