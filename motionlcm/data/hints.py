"""Control hints: where joints must be, at which frames (MotionLCM sec. 3.3; OmniControl's joint set).

A hint array is float (T, 22, 3) in metres, y up, in the generated motion's own frame (first frame's pelvis
at the origin on the floor, facing +z), NaN where a joint (or one axis of it, e.g. a free height) is free at
a frame. Internally it is split into `values` (NaN -> 0) and a bool `mask` of the same shape.

Training masks follow the official sampler (`mld/data/humanml/dataset.py::random_mask_train`,
shared/docs/motionlcm-reference.md section 7.2): spatial control picks one joint of the trained set and a
random number 1..T-1 of random frames; temporal control ("initial motions") holds the trained joints on the
first 25 % of the frames. Test masks: all joints of the set, at a density of 100 or 25 % of the frames or
at 1, 2 or 5 frames.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motionlcm.data.skeleton import JOINT_NAMES, NUM_JOINTS, joint_index

# OmniControl / MotionLCM's controllable joints (official CONTROL_ARGS TRAIN_JOINTS [0, 10, 11, 15, 20, 21])
CONTROL_JOINTS: dict[str, tuple[int, ...]] = {
    "pelvis": (0,),
    "all": (0, 10, 11, 15, 20, 21),  # pelvis, left foot, right foot, head, left wrist, right wrist
    "body": tuple(range(NUM_JOINTS)),  # every joint: a whole pose (the prefix of `continue_motion`)
}
TEMPORAL_FRACTION = 0.25  # official: the first floor(T * 25 / 100) frames (TRAIN/TEST_DENSITY 25)
KEYFRAME_DENSITIES = (1, 2, 5)  # official: these densities are frame counts, others are percentages
MAX_PELVIS_SPEED = 12.0  # m/s; faster hints are accepted with a warning (the plausibility bound)
MAX_REACH = 3.0  # metres from the pelvis; further hints get a warning


def joint_set(name: str) -> tuple[int, ...]:
    """Joint indices of a named set ("pelvis", "all") or of one joint name ("right_wrist")."""
    if name in CONTROL_JOINTS:
        return CONTROL_JOINTS[name]
    return (joint_index(name),)


# ------------------------------------------------------------------------------------------- masks


def training_masks(
    lengths: Tensor,
    num_frames: int,
    joints: tuple[int, ...],
    temporal: bool,
    generator: torch.Generator | None = None,
    free_height: float = 0.0,
    temporal_share: float = 0.0,
    prefix_joints: tuple[tuple[int, ...], ...] | None = None,
    random_prefix: bool = False,
    joint_subsets: bool = False,
) -> Tensor:
    """(B, T, 22, 3) bool control masks for a training batch (the official sampler, see the module docstring).

    `free_height`: the probability that a spatial sample controlling the pelvis leaves its height free (a path
    on the floor plane, what `--trajectory` gives); 0 in the official sampler.
    `temporal_share`: with `temporal` False, the share of samples that get a prefix mask all the same (one
    controller for both kinds); `prefix_joints`: the joint sets a prefix holds, one drawn per sample (default:
    `joints`); `random_prefix`: a prefix of 1..25 % of the frames instead of exactly 25 % (the official);
    `joint_subsets`: a spatial sample controls a random non-empty subset of `joints` at its frames instead of
    one joint (the official test controls all of them at once)."""
    batch = len(lengths)
    mask = torch.zeros(batch, num_frames, NUM_JOINTS, 3, dtype=torch.bool)
    prefix_sets = prefix_joints or (joints,)
    for i, n in enumerate(lengths.tolist()):
        if temporal or (temporal_share > 0 and float(torch.rand((), generator=generator)) < temporal_share):
            count = max(1, int(n * TEMPORAL_FRACTION))
            if random_prefix:
                count = int(torch.randint(1, count + 1, (1,), generator=generator))
            pick = int(torch.randint(len(prefix_sets), (1,), generator=generator)) if len(prefix_sets) > 1 else 0
            chosen = prefix_sets[pick]
            mask[i, :count, list(chosen)] = True
            continue
        if joint_subsets:
            size = int(torch.randint(1, len(joints) + 1, (1,), generator=generator))
            chosen = [joints[int(j)] for j in torch.randperm(len(joints), generator=generator)[:size]]
        else:
            chosen = [joints[int(torch.randint(len(joints), (1,), generator=generator))]]
        count = int(torch.randint(1, max(n - 1, 1) + 1, (1,), generator=generator))  # 1..T-1 frames
        frames = torch.randperm(n, generator=generator)[:count]
        mask[i, frames[:, None], torch.tensor(chosen)[None, :]] = True
        if 0 in chosen and float(torch.rand((), generator=generator)) < free_height:
            mask[i, :, 0, 1] = False
    return mask.to(lengths.device)


def evaluation_mask(
    length: int, joints: tuple[int, ...], density: int, rng: np.random.Generator, temporal: bool = False
):
    """(T, 22, 3) bool mask: `joints` at `density` (100 or 25 = percent of frames; 1, 2, 5 = frames);
    `temporal`: the first 25 % of the frames whatever `density` says (official temporal TEST_DENSITY 25)."""
    if temporal:
        density = int(TEMPORAL_FRACTION * 100)
    count = density if density in KEYFRAME_DENSITIES else int(length * density / 100)
    count = min(max(count, 1), length)
    frames = np.arange(count) if temporal else np.sort(rng.choice(length, count, replace=False))
    mask = np.zeros((length, NUM_JOINTS, 3), dtype=bool)
    mask[np.ix_(frames, list(joints))] = True
    return mask


# ------------------------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class HintNormalizer:
    """Per-joint, per-axis mean and std of joint positions over a training set (official Mean_raw / Std_raw,
    `datasets/humanml_spatial_norm`); the trajectory encoder sees (hint - mean) / std."""

    mean: np.ndarray  # (22, 3)
    std: np.ndarray  # (22, 3)

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != (NUM_JOINTS, 3) or not np.isfinite(value).all():
                raise ValueError(f"hint {name}: expected ({NUM_JOINTS}, 3) finite values, got shape {value.shape}")
            object.__setattr__(self, name, value)
        if not (self.std > 0).all():
            raise ValueError("hint std: must be positive")

    @classmethod
    def fit(cls, joints: list[np.ndarray]) -> HintNormalizer:
        """Statistics of a list of (T, 22, 3) joint arrays."""
        stacked = np.concatenate([np.asarray(j, dtype=np.float64).reshape(-1, NUM_JOINTS, 3) for j in joints])
        return cls(stacked.mean(0), np.maximum(stacked.std(0), 1e-3))

    def normalize(self, hints: Tensor) -> Tensor:
        return (hints - torch.as_tensor(self.mean, device=hints.device)) / torch.as_tensor(
            self.std, device=hints.device
        )

    def denormalize(self, hints: Tensor) -> Tensor:
        return hints * torch.as_tensor(self.std, device=hints.device) + torch.as_tensor(self.mean, device=hints.device)

    def to_dict(self) -> dict[str, list]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> HintNormalizer:
        return cls(np.asarray(data["mean"]), np.asarray(data["std"]))


# ------------------------------------------------------------------------------------------- errors


def point_errors(joints: np.ndarray, hints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """L2 errors (m) of the controlled points of one motion: joints, hints (T, 22, 3), mask (T, 22, 3) bool.

    A point counts when any of its axes is controlled; only those axes enter its distance."""
    if joints.shape != hints.shape or mask.shape != hints.shape:
        raise ValueError(f"joints {joints.shape}, hints {hints.shape} and mask {mask.shape} must have one shape")
    diff = np.where(mask, joints - hints, 0.0)
    return np.linalg.norm(diff, axis=-1)[mask.any(-1)]


# ------------------------------------------------------------------------------------------- user input


@dataclass
class Hints:
    """Validated user hints: `values` (T, 22, 3) float32 metres (0 where free) and `mask` (T, 22, 3) bool."""

    values: np.ndarray
    mask: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.values.shape[0]

    @property
    def joints(self) -> tuple[int, ...]:
        """The joints controlled at some frame."""
        return tuple(int(j) for j in np.flatnonzero(self.mask.any((0, 2))))

    def to_array(self) -> np.ndarray:
        """The (T, 22, 3) form with NaN where free."""
        out = self.values.astype(np.float32).copy()
        out[~self.mask] = np.nan
        return out

    def warnings(self, fps: float) -> list[str]:
        """Physically implausible hints (accepted, but worth a word): which frames."""
        found = []
        pelvis = self.mask[:, 0].all(-1) | (self.mask[:, 0, 0] & self.mask[:, 0, 2])  # x and z known
        frames = np.flatnonzero(pelvis)
        if len(frames) > 1:
            step = np.diff(frames)
            moved = np.diff(self.values[frames, 0], axis=0) * self.mask[frames[1:], 0] * self.mask[frames[:-1], 0]
            speed = np.linalg.norm(moved, axis=-1) * fps / step
            fast = frames[1:][speed > MAX_PELVIS_SPEED]
            if len(fast):
                found.append(f"the pelvis moves faster than {MAX_PELVIS_SPEED:g} m/s at frames {_frames(fast)}")
        full = self.mask.all(-1)
        reach = np.linalg.norm(self.values - self.values[:, :1], axis=-1)
        far = np.flatnonzero((full & full[:, :1] & (reach > MAX_REACH)).any(1))
        if len(far):
            found.append(f"a joint is more than {MAX_REACH:g} m from the pelvis at frames {_frames(far)}")
        return found


def _frames(frames: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(f)) for f in frames[:limit])
    return shown + (f" and {len(frames) - limit} more" if len(frames) > limit else "")


def hints_from_array(array: np.ndarray | Tensor, where: str = "hints") -> Hints:
    """Validate a (T, 22, 3) float array with NaN for free joints; errors name `where` and the problem."""
    if isinstance(array, Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.dtype.kind != "f":
        raise ValueError(f"{where}: expected a floating-point array, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[1:] != (NUM_JOINTS, 3) or array.shape[0] < 1:
        raise ValueError(f"{where}: expected shape (T, {NUM_JOINTS}, 3), got {array.shape}")
    if np.isinf(array).any():
        t, j, _ = np.argwhere(np.isinf(array))[0]
        raise ValueError(f"{where}: frame {t}, joint {JOINT_NAMES[j]}: infinite value")
    mask = ~np.isnan(array)
    if not mask.any():
        raise ValueError(f"{where}: every value is NaN (no joint is controlled)")
    return Hints(np.where(mask, array, 0.0).astype(np.float32), mask)


def read_hints_file(path: str | Path) -> Hints:
    """A .npy hints file (no pickles), validated."""
    from motionlcm.io.npy import read_npy_header

    path = Path(path)
    header = read_npy_header(path)  # refuses object arrays before loading
    if header.dtype.kind != "f":
        raise ValueError(f"{path}: expected a floating-point array, got dtype {header.dtype}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None
    return hints_from_array(array, str(path))


def trajectory_hints(path: str | Path, num_frames: int, fps: float) -> Hints:
    """Pelvis hints on the floor plane from a CSV of `time_s,x,z` rows (a header row is allowed), linearly
    interpolated between rows at every frame from the first row's time to the last's; the height stays free."""
    return hints_from_trajectory(_read_trajectory_rows(Path(path)), num_frames, fps, str(path))


def hints_from_trajectory(rows: list[tuple[float, float, float]], num_frames: int, fps: float, where: str) -> Hints:
    """`trajectory_hints` from checked (time_s, x, z) rows (`check_trajectory_row`); `where` names them in errors."""
    times = np.array([r[0] for r in rows])
    if times[0] * fps > num_frames - 1 + 1e-6 or times[-1] * fps > num_frames - 1 + 1e-6:
        raise ValueError(f"{where}: time {times[-1]:g} s is beyond the motion's end ({(num_frames - 1) / fps:g} s)")
    frames = np.arange(math.ceil(times[0] * fps - 1e-6), math.floor(times[-1] * fps + 1e-6) + 1)
    xs = np.interp(frames / fps, times, [r[1] for r in rows])
    zs = np.interp(frames / fps, times, [r[2] for r in rows])
    values = np.zeros((num_frames, NUM_JOINTS, 3), dtype=np.float32)
    values[frames, 0, 0], values[frames, 0, 2] = xs, zs
    mask = np.zeros((num_frames, NUM_JOINTS, 3), dtype=bool)
    mask[frames, 0, 0] = mask[frames, 0, 2] = True
    return Hints(values, mask)


def check_trajectory_row(values: tuple[float, ...], previous: tuple[float, ...] | None, where: str) -> None:
    """One (time_s, x, z) row: three finite numbers, time not negative and after the previous row's."""
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}: expected three finite numbers time_s,x,z")
    if values[0] < 0:
        raise ValueError(f"{where}: negative time {values[0]:g}")
    if previous is not None and values[0] <= previous[0]:
        raise ValueError(f"{where}: times must increase ({values[0]:g} after {previous[0]:g})")


def _read_trajectory_rows(path: Path) -> list[tuple[float, float, float]]:
    try:
        lines = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line or all(not cell.strip() for cell in line):
            continue
        try:
            values = tuple(float(cell) for cell in line)
        except ValueError:
            if number == 1:  # a header
                continue
            raise ValueError(f"{path}: row {number}: expected numbers time_s,x,z, got {','.join(line)!r}") from None
        check_trajectory_row(values, rows[-1] if rows else None, f"{path}: row {number}")
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no time_s,x,z rows")
    return rows


def parse_keyframe(spec: str, num_frames: int, fps: float) -> tuple[int, int, np.ndarray]:
    """`"TIME_S:JOINT:X,Y,Z"` -> (frame, joint index, xyz); errors name the spec."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise ValueError(f"--keyframe {spec!r}: expected TIME_S:JOINT:X,Y,Z (e.g. 2.0:right_wrist:0.3,1.5,0.4)")
    try:
        seconds = float(parts[0])
        xyz = np.array([float(v) for v in parts[2].split(",")], dtype=np.float32)
    except ValueError:
        raise ValueError(f"--keyframe {spec!r}: time and coordinates must be numbers") from None
    if xyz.shape != (3,) or not np.isfinite(xyz).all() or not math.isfinite(seconds):
        raise ValueError(f"--keyframe {spec!r}: expected three finite coordinates X,Y,Z")
    frame = int(round(seconds * fps))
    if not 0 <= frame < num_frames:
        raise ValueError(
            f"--keyframe {spec!r}: {seconds:g} s is outside the motion (0 to {(num_frames - 1) / fps:g} s)"
        )
    try:
        joint = joint_index(parts[1])
    except ValueError as error:
        raise ValueError(f"--keyframe {spec!r}: {error}") from None
    return frame, joint, xyz


def keyframe_hints(specs: list[str], num_frames: int, fps: float, base: Hints | None = None) -> Hints:
    """Hints from `--keyframe` specs, added to `base` (e.g. a trajectory) when given."""
    values = base.values.copy() if base is not None else np.zeros((num_frames, NUM_JOINTS, 3), np.float32)
    mask = base.mask.copy() if base is not None else np.zeros((num_frames, NUM_JOINTS, 3), bool)
    for spec in specs:
        frame, joint, xyz = parse_keyframe(spec, num_frames, fps)
        values[frame, joint], mask[frame, joint] = xyz, True
    return Hints(values, mask)


def control_record(joints: np.ndarray, hints: Hints, controller: str | None) -> dict[str, Any]:
    """What a generated motion's .json says about its control: the controller, the hints' sha256 (of the
    (T, 22, 3) float32 array with NaN where free) and the error at the controlled points (m)."""
    errors = point_errors(joints, hints.values, hints.mask)
    return {
        "controller": controller,
        "hints_sha256": hashlib.sha256(np.ascontiguousarray(hints.to_array()).tobytes()).hexdigest(),
        "controlled_points": int(len(errors)),
        "avg_err_m": float(errors.mean()),
        "max_err_m": float(errors.max()),
    }
