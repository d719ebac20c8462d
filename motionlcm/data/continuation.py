"""Continuing a motion from its first frames: temporal control, the "initial motions" of MotionLCM's ECCV
version (shared/docs/motionlcm-reference.md section 7.2) and the seam of every long motion.

A prefix arrives in any world frame (a mocap clip, the end of the previous segment). `PlanarFrame.of_pose`
finds the turn about y and the floor-plane shift that put its first frame where generated motions start
(pelvis over the origin, facing +z); the continuation is generated in that frame with the prefix as hints;
`splice_prefix` then makes the first frames exactly the prefix and hands over to the generated motion:

1. the generated motion is moved rigidly (a turn about y, a floor-plane shift) so that its pose at the last
   prefix frame stands where the prefix's does and faces the same way: the continuation walks on from
   where the prefix ended, not from where the model happened to put it;
2. what is left at the seam (each joint's position and velocity difference to the prefix's last frame) is
   an offset that decays to zero over `blend_frames` (inertialization: D. Bollo, "Inertialization:
   High-Performance Animation Transitions in Gears of War", GDC 2018), so the seam has neither a jump in
   position nor one in velocity. A large offset (the model missed the prefix's last pose by decimetres)
   gets a longer blend, so that no joint is pushed faster than `MAX_BLEND_STEP` by it.
3. the pelvis's floor-plane velocity difference is not taken back but carried on: the body coasts from the
   prefix's speed into the generated one (decaying within `blend_frames`, or longer so that the change stays
   under `MAX_ROOT_DECEL`) and every later frame moves by the distance covered. Inertializing it as in 2
   stopped a run that a standing action continues within three frames and then pulled the body back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motionlcm.data.skeleton import FACE_JOINTS, NUM_JOINTS, bone_lengths, conform_to_skeleton

BLEND_FRAMES = 10  # 0.5 s at 20 fps: how long the seam's offset takes to die out (at least)
MAX_BLEND_STEP = 0.02  # m per frame (0.4 m/s at 20 fps): the most the blend adds to a joint's own speed
PEAK_SLOPE = 1.875  # the steepest slope of `decay` (at s = 1/2), per unit of s
MAX_ROOT_DECEL = 0.015  # m per frame^2 (6 m/s^2 at 20 fps): the most the pelvis's carried speed changes a frame


def facing_yaw(pose: np.ndarray) -> float:
    """The angle (radians) about +y from +z to the direction a (22, 3) pose faces: forward = up x across, with
    across = (right hip - left hip) + (right shoulder - left shoulder), as HumanML3D defines the facing."""
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    across = (pose[r_hip] - pose[l_hip]) + (pose[r_sdr] - pose[l_sdr])
    forward_x, forward_z = across[2], -across[0]  # (0, 1, 0) x across, in the floor plane
    if math.hypot(forward_x, forward_z) < 1e-9:
        raise ValueError("pose: hips and shoulders coincide, its facing is undefined")
    return math.atan2(forward_x, forward_z)


def rotate_y(points: np.ndarray, yaw: float) -> np.ndarray:
    """Points (..., 3) turned by `yaw` radians about +y (+z goes to (sin yaw, 0, cos yaw))."""
    c, s = math.cos(yaw), math.sin(yaw)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


@dataclass(frozen=True)
class PlanarFrame:
    """A frame on the floor: `origin` (x, 0, z) and the `yaw` of its +z axis; world = R(yaw) local + origin."""

    origin: np.ndarray
    yaw: float

    @classmethod
    def of_pose(cls, pose: np.ndarray) -> PlanarFrame:
        """The frame of a (22, 3) pose: its pelvis on the floor, its facing as +z."""
        return cls(np.array([pose[0, 0], 0.0, pose[0, 2]]), facing_yaw(pose))

    def to_local(self, points: np.ndarray) -> np.ndarray:
        return rotate_y(np.asarray(points, dtype=np.float64) - self.origin, -self.yaw)

    def to_world(self, points: np.ndarray) -> np.ndarray:
        return rotate_y(np.asarray(points, dtype=np.float64), self.yaw) + self.origin


def check_prefix(prefix: np.ndarray, where: str = "prefix") -> np.ndarray:
    """A (K, 22, 3) finite float prefix of joints in metres; errors name `where` and the problem."""
    array = np.asarray(prefix)
    if array.dtype.kind != "f":
        raise ValueError(f"{where}: expected floating-point joints, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[1:] != (NUM_JOINTS, 3) or len(array) < 1:
        raise ValueError(f"{where}: expected joints of shape (K, {NUM_JOINTS}, 3), got {array.shape}")
    if not np.isfinite(array).all():
        frame = int(np.argwhere(~np.isfinite(array))[0, 0])
        raise ValueError(f"{where}: frame {frame}: NaN or infinite value (a prefix gives every joint)")
    return array.astype(np.float64)


def prefix_hints(prefix_local: np.ndarray, num_frames: int, joints: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Hint values and mask (num_frames, 22, 3) holding `joints` at the prefix's frames."""
    values = np.zeros((num_frames, NUM_JOINTS, 3), dtype=np.float32)
    mask = np.zeros(values.shape, dtype=bool)
    k, chosen = len(prefix_local), list(joints)
    values[:k, chosen] = prefix_local[:, chosen]
    mask[:k, chosen] = True
    return values, mask


def decay(s: np.ndarray) -> np.ndarray:
    """1 at s = 0 falling to 0 at s = 1 with zero slope and curvature at both ends (1 - smootherstep)."""
    s = np.clip(s, 0.0, 1.0)
    return 1.0 - s**3 * (s * (6 * s - 15) + 10)


def splice_prefix(
    prefix: np.ndarray, generated: np.ndarray, blend_frames: int = BLEND_FRAMES, rigid: bool = True
) -> np.ndarray:
    """(T, 22, 3) joints: the (K, 22, 3) `prefix` exactly, then `generated` (same frame of reference, its first
    K frames the model's attempt at the prefix) handed over as the module docstring describes: the blend
    lasts `blend_frames` or longer for a large offset, at most to the motion's end. The blend moves each joint
    by its own offset, which stretches bones; `rigid` (default) then places the frames after the prefix on the
    prefix's skeleton (`conform_to_skeleton` with the bone lengths of its last frame), so the whole motion is
    one body, the prefix's."""
    k, total = len(prefix), len(generated)
    if not 1 <= k < total:
        raise ValueError(f"prefix of {k} frames: the motion ({total} frames) must be longer")
    last = k - 1
    # 1. rigid alignment of the generated motion at the last prefix frame
    turn = facing_yaw(prefix[last]) - facing_yaw(generated[last])
    floor = np.array([1.0, 0.0, 1.0])
    aligned = rotate_y(generated - generated[last, 0] * floor, turn) + prefix[last, 0] * floor
    # 2. inertialization of the remaining per-joint offset d and velocity difference v, t frames after `last`
    offset = prefix[last] - aligned[last]
    velocity = (prefix[last] - prefix[last - 1]) - (aligned[last] - aligned[last - 1]) if k > 1 else 0.0 * offset
    frames = max(blend_frames, math.ceil(PEAK_SLOPE * np.linalg.norm(offset, axis=-1).max() / MAX_BLEND_STEP))
    t = np.arange(total - last, dtype=np.float64)[:, None, None]
    # 3. the pelvis's floor-plane velocity difference is carried on: the whole body coasts from the prefix's
    # speed into the generated one and keeps the distance covered
    carry = (velocity[0] * floor)[None, None, :]
    velocity = velocity - carry
    coast = max(blend_frames, math.ceil(PEAK_SLOPE * float(np.linalg.norm(carry)) / MAX_ROOT_DECEL))
    coasted = np.cumsum(decay(t / coast), axis=0) - 1.0  # sum of the carried share over frames 1..t
    # the velocity difference dies out within `blend_frames`, the position offset over the (longer) `frames`
    blend = offset * decay(t / min(frames, total - last)) + velocity * t * decay(t / max(blend_frames, 1))
    out = np.empty_like(aligned)
    out[:k] = prefix
    out[k:] = aligned[k:] + blend[1:] + carry * coasted[1:]
    if rigid:
        lengths = np.concatenate([[0.0], bone_lengths(prefix[last])])  # indexed by joint, as TARGET_BONE_LENGTHS
        out[k:] = conform_to_skeleton(out[k:], lengths)
    return out
