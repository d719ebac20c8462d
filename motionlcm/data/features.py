"""The HumanML3D 263-d motion representation, both directions (Guo et al., CVPR 2022).

joints (T, 22, 3) -> features (T-1, 263): uniform skeleton, floor, origin, initial facing, the smoothed
IK heading (with HumanML3D's two quirks), IK rotations, velocities and foot contacts.
features -> joints: the `ric` recovery used to write `new_joints`, or FK from the rotation block.
docs/representation.md explains every step and how it was checked against the released files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor

from motionlcm.data.quaternion import (
    cross,
    matrix_to_rotation_6d,
    qbetween,
    qinv,
    qmul,
    qrot,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    y_rotation_quaternion,
)
from motionlcm.data.skeleton import (
    FACE_JOINTS,
    FOOT_JOINTS,
    KINEMATIC_CHAINS,
    LEG_SCALE_JOINTS,
    MIRROR_PERM,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    TARGET_BONE_LENGTHS,
    TARGET_OFFSETS,
)

FEATURE_DIM = 263
# Column blocks of a feature row, in order (docs/representation.md, "The 263 columns").
ROOT_ROT_VEL = slice(0, 1)  # -d(heading)/2 per frame
ROOT_LIN_VEL = slice(1, 3)  # root xz velocity in the heading frame
ROOT_Y = slice(3, 4)  # pelvis height
RIC = slice(4, 67)  # joints 1..21 relative to the root, heading frame, y absolute
ROT6D = slice(67, 193)  # joints 1..21 IK rotations, 6D
LOCAL_VEL = slice(193, 259)  # joints 0..21 velocities, heading frame
FOOT_CONTACT = slice(259, 263)  # left ankle, left foot, right ankle, right foot
FEATURE_BLOCKS: dict[str, slice] = {
    "root_rot_vel": ROOT_ROT_VEL,
    "root_lin_vel": ROOT_LIN_VEL,
    "root_y": ROOT_Y,
    "ric": RIC,
    "rot6d": ROT6D,
    "local_vel": LOCAL_VEL,
    "foot_contact": FOOT_CONTACT,
}

FOOT_CONTACT_THRESHOLD = 0.002  # squared metres per frame (HumanML3D `foot_detect`, thres 0.002)
HEADING_SMOOTH_SIGMA = 20.0  # frames (HumanML3D `inverse_kinematics_np`, smooth_forward)
_UP = (0.0, 1.0, 0.0)
_FORWARD = (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- numpy / torch plumbing


def _to_tensor(x: Any) -> tuple[Tensor, Any]:
    """Return (tensor, restore) where restore turns a result back into the caller's array type."""
    if isinstance(x, Tensor):
        return x, lambda y: y
    arr = np.asarray(x)
    dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    return torch.from_numpy(arr.astype(np.float64)), lambda y: y.detach().numpy().astype(dtype)


def _const(values: Any, like: Tensor) -> Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device)


def _check_last_dims(x: Tensor, dims: tuple[int, ...], what: str) -> None:
    if x.ndim < len(dims) + 1 or tuple(x.shape[-len(dims) :]) != dims:
        shape = "(..., T, " + ", ".join(map(str, dims)) + ")"
        raise ValueError(f"{what} must have shape {shape}, got {tuple(x.shape)}")


# --------------------------------------------------------------------------- features -> joints


def heading_from_features(features: Tensor) -> Tensor:
    """Heading quaternions r[t] (..., T, 4) from the root rotation velocity (recover_root_rot_pos)."""
    rot_vel = features[..., 0]
    half_angle = torch.cumsum(rot_vel, dim=-1) - rot_vel  # theta[0] = 0, theta[t] = sum_{k<t}
    return y_rotation_quaternion(half_angle)


def root_position_from_features(features: Tensor, heading: Tensor) -> Tensor:
    """Root trajectory (..., T, 3): integrated xz velocity, y from the root-height column."""
    vel = features[..., :-1, ROOT_LIN_VEL]
    zero = features.new_zeros((*features.shape[:-2], 1, 1))  # the first frame does not move (T = 1 too)
    step_x = torch.cat((zero, vel[..., :1]), dim=-2)
    step_z = torch.cat((zero, vel[..., 1:]), dim=-2)
    step = torch.cat((step_x, torch.zeros_like(step_x), step_z), dim=-1)
    root = torch.cumsum(qrot(qinv(heading), step), dim=-2)
    return torch.cat((root[..., :1], features[..., ROOT_Y], root[..., 2:]), dim=-1)


def features_to_joints(features: Any, with_last_frame: bool = False) -> Any:
    """Joint positions from the `ric` block, as HumanML3D writes `new_joints` (recover_from_ric).

    Args:
        features: (..., T, 263) numpy array or torch tensor; torch inputs stay differentiable.
        with_last_frame: also rebuild frame T (dropped by the features) from the last row's joint
            velocities, giving T+1 frames from which `joints_to_features` recomputes all T rows.

    Returns:
        Joint positions (..., T, 22, 3) in metres, y up (T+1 frames with `with_last_frame`).
    """
    f, restore = _to_tensor(features)
    _check_last_dims(f, (FEATURE_DIM,), "features")
    heading = heading_from_features(f)
    root = root_position_from_features(f, heading)
    inv = qinv(heading)[..., None, :]
    ric = qrot(inv, f[..., RIC].unflatten(-1, (NUM_JOINTS - 1, 3)))
    ric = ric + (root * _const([1.0, 0.0, 1.0], f))[..., None, :]
    joints = torch.cat((root[..., None, :], ric), dim=-2)
    if with_last_frame:
        last_vel = f[..., -1:, LOCAL_VEL].unflatten(-1, (NUM_JOINTS, 3))
        last = joints[..., -1:, :, :] + qrot(inv[..., -1:, :, :], last_vel)
        joints = torch.cat((joints, last), dim=-3)
    return restore(joints)


# --------------------------------------------------------------------------- rotations path


@dataclass
class MotionRotations:
    """Root trajectory and per-joint rotations of a motion, in HumanML3D's IK convention.

    local_rotations[..., t, 0] is the heading rotation r[t] (world -> facing +z). For every other joint c
    with chain predecessor p, local_rotations[..., t, c] rotates the rest direction RAW_OFFSETS[c] so that,
    composed along its kinematic chain starting from r[t], it points along bone p -> c. Chains restart from
    r[t] (also the arm chains at spine3), so collars are relative to the heading, not to spine3.
    """

    root_positions: Any  # (..., T, 3)
    local_rotations: Any  # (..., T, 22, 3, 3)


def features_to_rotations(features: Any) -> MotionRotations:
    """Root trajectory and joint rotations from the rot6d block (recover_from_rot, first half).

    Args:
        features: (..., T, 263) numpy array or torch tensor.

    Returns:
        MotionRotations with arrays of the input's type.
    """
    f, restore = _to_tensor(features)
    _check_last_dims(f, (FEATURE_DIM,), "features")
    heading = heading_from_features(f)
    root = root_position_from_features(f, heading)
    joint_rot = rotation_6d_to_matrix(f[..., ROT6D].unflatten(-1, (NUM_JOINTS - 1, 6)))
    local = torch.cat((quaternion_to_matrix(heading)[..., None, :, :], joint_rot), dim=-3)
    return MotionRotations(root_positions=restore(root), local_rotations=restore(local))


def global_rotations(local_rotations: Any) -> Any:
    """Compose (..., T, 22, 3, 3) local rotations along the HumanML3D chains into bone rotations.

    Returns (..., T, 22, 3, 3): entry c maps RAW_OFFSETS[c] onto the world direction of bone parent -> c;
    entry 0 is the root (heading) rotation itself.
    """
    local, restore = _to_tensor(local_rotations)
    out: list[Tensor | None] = [None] * NUM_JOINTS
    out[0] = local[..., 0, :, :]
    for chain in KINEMATIC_CHAINS:
        rot = local[..., 0, :, :]
        for joint in chain[1:]:
            rot = rot @ local[..., joint, :, :]
            out[joint] = rot
    return restore(torch.stack(out, dim=-3))  # type: ignore[arg-type]


def rotations_to_joints(rotations: MotionRotations, offsets: Any = TARGET_OFFSETS) -> Any:
    """Forward kinematics of MotionRotations with skeleton offsets (22, 3) (recover_from_rot, second half).

    Returns joint positions (..., T, 22, 3) of the same array type as the rotations.
    """
    root, restore = _to_tensor(rotations.root_positions)
    rot = global_rotations(_to_tensor(rotations.local_rotations)[0])
    offs = _const(np.asarray(offsets), root)
    joints: list[Tensor | None] = [None] * NUM_JOINTS
    joints[0] = root
    for chain in KINEMATIC_CHAINS:
        for parent, joint in zip(chain[:-1], chain[1:], strict=False):
            joints[joint] = joints[parent] + (rot[..., joint, :, :] @ offs[joint, :, None])[..., 0]
    return restore(torch.stack(joints, dim=-2))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- joints -> features: canonical form


def retarget_to_skeleton(joints: Tensor, bone_lengths: Any = TARGET_BONE_LENGTHS) -> Tensor:
    """Uniform skeleton (HumanML3D `uniform_skeleton`): keep bone directions, impose the target lengths.

    The root trajectory is scaled by target / source length of right thigh + shin at frame 0. This equals
    HumanML3D's IK-then-FK route exactly (docs/representation.md, "joints → features", step 1).
    """
    lengths = _const(np.asarray(bone_lengths), joints)
    leg = LEG_SCALE_JOINTS
    src_leg = sum(torch.linalg.vector_norm(joints[..., 0, j, :] - joints[..., 0, PARENTS[j], :], dim=-1) for j in leg)
    scale = (lengths[leg[0]] + lengths[leg[1]]) / src_leg
    out: list[Tensor | None] = [None] * NUM_JOINTS
    out[0] = joints[..., 0, :] * scale[..., None, None]
    for joint in range(1, NUM_JOINTS):
        parent = PARENTS[joint]
        bone = joints[..., joint, :] - joints[..., parent, :]
        direction = bone / torch.linalg.vector_norm(bone, dim=-1, keepdim=True)
        out[joint] = out[parent] + lengths[joint] * direction
    return torch.stack(out, dim=-2)  # type: ignore[arg-type]


def put_on_floor(joints: Tensor) -> Tensor:
    """Shift y so that the lowest joint over the whole clip touches y = 0."""
    floor = joints[..., 1].amin(dim=(-1, -2))
    return joints - torch.stack((torch.zeros_like(floor), floor, torch.zeros_like(floor)), dim=-1)[..., None, None, :]


def _across_to_forward(across: Tensor) -> Tensor:
    """forward = up x normalize(across), not renormalised."""
    across = across / torch.linalg.vector_norm(across, dim=-1, keepdim=True)
    return cross(_const(_UP, across), across)


def face_forward_at_start(joints: Tensor) -> Tensor:
    """Move frame 0's root to xz = 0 and turn the clip about y so that frame 0 faces +z."""
    origin = joints[..., :1, :1, :] * _const([1.0, 0.0, 1.0], joints)
    joints = joints - origin
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    start = joints[..., 0, :, :]
    across = (start[..., r_hip, :] - start[..., l_hip, :]) + (start[..., r_sdr, :] - start[..., l_sdr, :])
    forward = _across_to_forward(across)
    forward = forward / torch.linalg.vector_norm(forward, dim=-1, keepdim=True)
    rot = qbetween(forward, _const(_FORWARD, forward))
    return qrot(rot[..., None, None, :], joints)


def canonicalize_joints(
    joints: Any, retarget: bool = True, bone_lengths: Any = TARGET_BONE_LENGTHS, floor: bool = True
) -> Any:
    """HumanML3D canonical form: uniform skeleton, floor, origin, initial facing +z (docs/representation.md,
    "joints → features", steps 1-2).

    Args:
        joints: (..., T, 22, 3) world positions in metres, y up, SMPL joint order.
        retarget: impose `bone_lengths` (HumanML3D's target skeleton by default).
        floor: put the clip's lowest joint on y = 0 (HumanML3D); False keeps the heights as given, for
            joints already standing on their floor (a generated motion, whose feet may dip below y = 0 in a
            frame: lifting the whole clip by that dip would make its planted feet hover).

    Returns:
        The canonical "global positions" (..., T, 22, 3), same array type as the input.
    """
    j, restore = _to_tensor(joints)
    _check_last_dims(j, (NUM_JOINTS, 3), "joints")
    if retarget:
        j = retarget_to_skeleton(j, bone_lengths)
    return restore(face_forward_at_start(put_on_floor(j) if floor else j))


# --------------------------------------------------------------------------- joints -> features: the blocks


def foot_contacts(joints: Tensor, threshold: float = FOOT_CONTACT_THRESHOLD) -> Tensor:
    """(..., T, 22, 3) -> (..., T-1, 4): 1 where a foot joint moves less than sqrt(threshold) m per frame."""
    feet = joints[..., list(FOOT_JOINTS), :]
    step = ((feet[..., 1:, :, :] - feet[..., :-1, :, :]) ** 2).sum(-1)
    return (step < threshold).to(joints.dtype)


def ik_heading(joints: Tensor, sigma: float = HEADING_SMOOTH_SIGMA) -> Tensor:
    """The heading r[t] (..., T, 4) used by the features (HumanML3D `inverse_kinematics_np`).

    Two quirks are kept on purpose: the hip term of the across vector has the opposite sign of the
    initial-facing formula (face_joint_indx unpacked as l_hip, r_hip, sdr_r, sdr_l), and r[0] is identity.
    The forward vectors are Gaussian-smoothed over time (sigma frames, edges replicated).
    """
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    across = (joints[..., l_hip, :] - joints[..., r_hip, :]) + (joints[..., r_sdr, :] - joints[..., l_sdr, :])
    forward = _across_to_forward(across).detach().cpu().numpy()
    forward = gaussian_filter1d(forward, sigma, axis=-2, mode="nearest")
    forward = torch.as_tensor(forward, dtype=joints.dtype, device=joints.device)
    forward = forward / torch.linalg.vector_norm(forward, dim=-1, keepdim=True)
    heading = qbetween(forward, _const(_FORWARD, forward))
    identity = _const([1.0, 0.0, 0.0, 0.0], heading).expand_as(heading[..., :1, :])
    return torch.cat((identity, heading[..., 1:, :]), dim=-2)


def ik_rotations(joints: Tensor, heading: Tensor) -> Tensor:
    """Per-joint IK quaternions (..., T, 22, 4): minimal arcs from RAW_OFFSETS onto the bones.

    Along each chain the running rotation starts at the heading; entry 0 is the heading itself.
    """
    raw = _const(RAW_OFFSETS, joints)
    out: list[Tensor | None] = [None] * NUM_JOINTS
    out[0] = heading
    for chain in KINEMATIC_CHAINS:
        rot = heading
        for parent, joint in zip(chain[:-1], chain[1:], strict=False):
            bone = joints[..., joint, :] - joints[..., parent, :]
            bone = bone / torch.linalg.vector_norm(bone, dim=-1, keepdim=True)
            swing = qbetween(raw[joint].expand_as(bone), bone)
            out[joint] = qmul(qinv(rot), swing)
            rot = qmul(rot, out[joint])
    return torch.stack(out, dim=-2)  # type: ignore[arg-type]


def canonical_joints_to_features(joints: Any, sigma: float = HEADING_SMOOTH_SIGMA) -> Any:
    """Features (..., T-1, 263) from canonical global positions (..., T, 22, 3) (docs/representation.md,
    "joints → features", steps 3-6)."""
    j, restore = _to_tensor(joints)
    _check_last_dims(j, (NUM_JOINTS, 3), "joints")
    if j.shape[-3] < 2:
        raise ValueError(f"joints need at least 2 frames to give a feature row, got {j.shape[-3]}")
    heading = ik_heading(j, sigma)
    rot6d = matrix_to_rotation_6d(quaternion_to_matrix(ik_rotations(j, heading)[..., 1:, :]))
    rot_vel = torch.asin(qmul(heading[..., 1:, :], qinv(heading[..., :-1, :]))[..., 2:3])
    lin_vel = qrot(heading[..., 1:, :], j[..., 1:, 0, :] - j[..., :-1, 0, :])[..., [0, 2]]
    relative = j - j[..., :1, :] * _const([1.0, 0.0, 1.0], j)
    ric = qrot(heading[..., None, :], relative)
    local_vel = qrot(heading[..., :-1, None, :], j[..., 1:, :, :] - j[..., :-1, :, :])
    rows = (
        rot_vel,
        lin_vel,
        j[..., :-1, 0, 1:2],
        ric[..., :-1, 1:, :].flatten(-2),
        rot6d[..., :-1, :, :].flatten(-2),
        local_vel.flatten(-2),
        foot_contacts(j),
    )
    return restore(torch.cat(rows, dim=-1))


def joints_to_features(
    joints: Any,
    retarget: bool = True,
    bone_lengths: Any = TARGET_BONE_LENGTHS,
    sigma: float = HEADING_SMOOTH_SIGMA,
    floor: bool = True,
) -> Any:
    """The full HumanML3D pipeline: world joints (..., T, 22, 3) -> features (..., T-1, 263).

    Args:
        joints: world positions in metres, y up, SMPL joint order, 20 fps; numpy or torch (not
            differentiable: the heading smoothing runs in scipy).
        retarget: impose the uniform target skeleton first (HumanML3D always does).
        bone_lengths: (22,) target bone lengths, parent -> joint.
        sigma: heading smoothing width in frames.
        floor: put the lowest joint on y = 0 first (`canonicalize_joints`).
    """
    return canonical_joints_to_features(canonicalize_joints(joints, retarget, bone_lengths, floor), sigma)


# --------------------------------------------------------------------------- mirroring


def mirror_joints(joints: Any) -> Any:
    """Left/right mirror of joint positions (..., 22, 3): negate x and swap left and right joints."""
    j, restore = _to_tensor(joints)
    return restore(j[..., list(MIRROR_PERM), :] * _const([-1.0, 1.0, 1.0], j))


def mirror_features(features: Any) -> Any:
    """Left/right mirror in feature space, consistent with `mirror_joints` (HumanML3D's 'M' files).

    Equals the features of mirrored joints when the skeleton is symmetric; HumanML3D's own target skeleton
    is slightly asymmetric, so mirror joints and re-run the pipeline to rebuild 'M' files exactly.
    """
    f, restore = _to_tensor(features)
    _check_last_dims(f, (FEATURE_DIM,), "features")
    perm21 = list(MIRROR_PERM[1:] - 1)
    flip_x = _const([-1.0, 1.0, 1.0], f)
    rot_sign = _const([1.0, -1.0, -1.0, -1.0, 1.0, 1.0], f)
    ric = f[..., RIC].unflatten(-1, (NUM_JOINTS - 1, 3))[..., perm21, :] * flip_x
    rot = f[..., ROT6D].unflatten(-1, (NUM_JOINTS - 1, 6))[..., perm21, :] * rot_sign
    vel = f[..., LOCAL_VEL].unflatten(-1, (NUM_JOINTS, 3))[..., list(MIRROR_PERM), :] * flip_x
    contacts = f[..., FOOT_CONTACT][..., [2, 3, 0, 1]]
    blocks = (-f[..., :2], f[..., 2:4], ric.flatten(-2), rot.flatten(-2), vel.flatten(-2), contacts)
    return restore(torch.cat(blocks, dim=-1))
