"""Export 22-joint SMPL motions (HumanML3D layout) as animated BVH clips for animation tools.

Rotations are solved from the joint positions (inverse kinematics), not taken from HumanML3D's rot6d
feature block: docs/bvh-export.md gives the skeleton, channel order, units and the measured errors.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from motionlcm.data.cleanup import clean_joints
from motionlcm.data.features import features_to_joints
from motionlcm.data.quaternion import qbetween, quaternion_to_matrix
from motionlcm.data.skeleton import FPS, JOINT_NAMES, NUM_JOINTS, PARENTS, branch_frame, kabsch
from motionlcm.io.bvh import BVH, matrix_to_euler, nearest_euler, resampled_frame_count

__all__ = [
    "BVH_JOINTS",
    "BVH_NAMES",
    "END_SITES",
    "REST_DIRECTIONS",
    "JOINT_ORDERS",
    "UNITS",
    "bvh_to_joints",
    "check_fps",
    "check_output_frames",
    "features_to_bvh",
    "fit_skeleton",
    "joints_to_bvh",
    "rest_offsets",
    "solve_rotations",
]

UNITS = {"cm": 100.0, "m": 1.0}  # file units per metre
MIN_FPS, MAX_FPS = 1.0, 1000.0  # frame rates a clip is read at or written at (export, generate --fps)
MAX_FRAMES = 100_000  # frames of one written clip: 83 min at 20 fps, 100 s at 1000 fps

CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS)
)


def _depth_first(joint: int = 0) -> tuple[int, ...]:
    return (joint,) + tuple(j for c in CHILDREN[joint] for j in _depth_first(c))


# SMPL joint indices in BVH file (depth-first) order; BVH joint k is SMPL joint BVH_JOINTS[k].
BVH_JOINTS: tuple[int, ...] = _depth_first()
BVH_NAMES: tuple[str, ...] = tuple(JOINT_NAMES[j] for j in BVH_JOINTS)

# Rest (zero-rotation) T-pose: unit direction of bone parent -> joint in the parent's frame, x = the
# character's left, y = up, z = forward (HumanML3D axes). The children of pelvis and spine3 (both hips and
# spine1; neck and both collars) stay zero here: their rest offsets are measured on the motion.
_REST_GROUPS = (
    ((6, 9, 15), (0, 1, 0)),  # spine2, spine3, head: straight up (SMPL's head sits above the neck)
    ((4, 5, 7, 8), (0, -1, 0)),  # knees, ankles: legs straight down
    ((10, 11), (0, 0, 1)),  # feet: forward, as HumanML3D's t2m_raw_offsets
    ((16, 18, 20), (1, 0, 0)),  # left arm out to the left (SMPL's T-pose)
    ((17, 19, 21), (-1, 0, 0)),  # right arm out to the right
)
REST_DIRECTIONS = np.zeros((NUM_JOINTS, 3))
for _group, _direction in _REST_GROUPS:
    REST_DIRECTIONS[list(_group)] = _direction

# Multi-child joints: (left child, right child, upper child) spanning the frame used for their rest offsets.
_FRAME_CHILDREN = {0: (1, 2, 3), 9: (13, 14, 12)}

# Rotation channel order per SMPL joint (R = R_A @ R_B @ R_C for order "ABC", column vectors). The middle
# axis, where Euler angles lock at +-90 degrees, is the rest axis of the bone the joint turns: our swings
# never twist about it, so they lock only at 180-degree swings. Pelvis (any heading) and spine3 (torso twist)
# put y first and the rarely large side bend (z) in the middle.
_MIDDLE_AXIS_ORDER = {0: "ZXY", 1: "ZYX", 2: "YZX"}
JOINT_ORDERS: tuple[str, ...] = tuple(
    "YZX"
    if len(CHILDREN[j]) > 1
    else _MIDDLE_AXIS_ORDER[int(np.argmax(np.abs(REST_DIRECTIONS[CHILDREN[j][0] if CHILDREN[j] else j])))]
    for j in range(NUM_JOINTS)
)

FIT_TOLERANCE = 0.01  # metres: joints_to_bvh warns when the fixed-skeleton fit is off by more

# The least-squares polish of fit_skeleton runs when the greedy fit is off by more than this (metres).
REFINE_ABOVE = 1e-3
REFINE_ITERATIONS = 50  # L-BFGS iterations (25 already gives the max error to 0.01 cm)

# End Sites of the leaf joints (metres, along the incoming bone): cosmetic tails for display only, rough
# adult proportions (toe tip past the SMPL foot joint, top of the head, middle of the hand).
END_SITES = {10: 0.05, 11: 0.05, 15: 0.10, 20: 0.08, 21: 0.08}


# --------------------------------------------------------------------------- input checks


def _check_joints(joints: Any) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3) or len(arr) < 1:
        raise ValueError(f"joints must have shape (T, {NUM_JOINTS}, 3) with T >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=(1, 2)))
        raise ValueError(f"joints contain NaN or inf in {len(bad)} frame(s), first at frame {bad[0]}")
    lengths = np.linalg.norm(arr[:, 1:] - arr[:, list(PARENTS[1:])], axis=-1)
    if lengths.min() < 1e-6:
        t, k = np.unravel_index(lengths.argmin(), lengths.shape)
        raise ValueError(
            f"joints have a zero-length bone {JOINT_NAMES[PARENTS[k + 1]]} -> {JOINT_NAMES[k + 1]} at frame {t}"
        )
    return arr


def _check_offsets(offsets: Any) -> np.ndarray:
    arr = np.asarray(offsets, dtype=np.float64)
    if arr.shape != (NUM_JOINTS, 3) or not np.isfinite(arr).all():
        raise ValueError(f"offsets must be a finite ({NUM_JOINTS}, 3) array, got shape {arr.shape}")
    return arr


def check_fps(value: Any, name: str) -> float:
    """A frame rate in MIN_FPS..MAX_FPS; anything else is a ValueError naming `name`."""
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"{name} must be in {MIN_FPS:g}..{MAX_FPS:g} frames per second, got {fps:g}")
    return fps


def output_frames(frames: int, fps: float, target_fps: float | None) -> int:
    """Frames of the clip made from `frames` frames at `fps` and resampled to `target_fps` (as
    `BVH.resampled` counts them)."""
    if target_fps is None or target_fps == fps or frames < 1:
        return frames
    return resampled_frame_count(frames, 1.0 / fps, target_fps)


def check_output_frames(frames: int, fps: float, target_fps: float | None, where: str = "joints") -> int:
    """`output_frames`, refused (ValueError naming `where`) above MAX_FRAMES, before anything is allocated."""
    count = output_frames(frames, fps, target_fps)
    if count > MAX_FRAMES:
        rate = f" resampled from {fps:g} to {target_fps:g} fps" if target_fps not in (None, fps) else ""
        raise ValueError(f"{where}: {frames} frames{rate} make a clip of {count:,} frames; at most {MAX_FRAMES:,}")
    return count


# --------------------------------------------------------------------------- rest skeleton


def rest_offsets(joints: Any) -> np.ndarray:
    """Rest offsets (22, 3) in metres, SMPL order, fitted to one motion.

    Bone lengths are the per-motion medians. Single-child bones point along REST_DIRECTIONS; the
    children of pelvis and spine3 keep their measured layout: the mean over frames of their offsets
    seen in a frame spanned by the left/right children (x) and the upper child (y). The root's offset
    (overridden by its position channels) puts the rest pose on the floor: (0, pelvis height, 0).
    """
    j = _check_joints(joints)
    bones = j - j[:, list(PARENTS)]
    bones[:, 0] = 0.0
    offsets = REST_DIRECTIONS * np.median(np.linalg.norm(bones, axis=-1), axis=0)[:, None]
    for joint, (left, right, up) in _FRAME_CHILDREN.items():
        kids = list(CHILDREN[joint])
        frame = branch_frame(bones[:, left], bones[:, right], bones[:, up])
        local = np.einsum("tij,tki->tkj", frame, bones[:, kids])
        offsets[kids] = local.mean(axis=0)
    rest = np.zeros((NUM_JOINTS, 3))
    for joint in BVH_JOINTS[1:]:
        rest[joint] = rest[PARENTS[joint]] + offsets[joint]
    offsets[0, 1] = -rest[:, 1].min()
    return offsets


# --------------------------------------------------------------------------- inverse kinematics


def _swing(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Minimal-arc rotations (T, 3, 3) taking direction rest (3,) onto target (T, 3) (qbetween).

    Opposite directions (undefined arc) get a half turn about an axis perpendicular to rest.
    """
    target = target / np.linalg.norm(target, axis=-1, keepdims=True)
    rest = rest / np.linalg.norm(rest)
    quat = qbetween(torch.from_numpy(np.broadcast_to(rest, target.shape).copy()), torch.from_numpy(target))
    out = quaternion_to_matrix(quat).numpy()
    opposite = ~np.isfinite(out).all(axis=(1, 2)) | (target @ rest < -1 + 1e-12)
    if opposite.any():
        axis = np.cross(rest, np.eye(3)[np.argmin(np.abs(rest))])
        axis /= np.linalg.norm(axis)
        out[opposite] = 2.0 * np.outer(axis, axis) - np.eye(3)
    return out


def solve_rotations(joints: Any, offsets: np.ndarray, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """World rotations of the BVH joints and the positions their forward kinematics gives.

    Walking down the tree, each joint is turned so that its children, placed from the joint's
    *reconstructed* position with the fixed rest offsets, aim at their observed positions: a single
    child by the minimal arc from the parent's frame (twist inherited from the parent), several
    children (pelvis, spine3) by a least-squares fit (Kabsch). Leaves keep their parent's rotation.

    Args:
        joints: (T, 22, 3) positions, SMPL order.
        offsets: (22, 3) rest offsets in the same units, SMPL order.
        exact: aim from the *observed* joint positions and return them unchanged (for per-joint
            translation channels, where bone lengths follow the input).

    Returns:
        world rotations (T, 22, 3, 3) and reconstructed positions (T, 22, 3), SMPL order.
    """
    j = _check_joints(joints)
    T = len(j)
    world = np.broadcast_to(np.eye(3), (T, NUM_JOINTS, 3, 3)).copy()
    pos = j.copy()
    for joint in BVH_JOINTS:
        kids = list(CHILDREN[joint])
        parent = world[:, PARENTS[joint]] if joint else np.broadcast_to(np.eye(3), (T, 3, 3))
        if len(kids) > 1:
            target = j[:, kids] - pos[:, joint, None]
            world[:, joint] = kabsch(np.broadcast_to(offsets[kids], target.shape), target)
        elif kids:
            aim = np.einsum("tji,tj->ti", parent, j[:, kids[0]] - pos[:, joint])  # in the parent frame
            world[:, joint] = parent @ _swing(offsets[kids[0]], aim)
        else:
            world[:, joint] = parent
        if not exact:
            pos[:, kids] = pos[:, joint, None] + np.einsum("tij,kj->tki", world[:, joint], offsets[kids])
    return world, pos


def skeleton_positions(world: torch.Tensor, root: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Positions (T, 22, 3) from world rotations (T, 22, 3, 3), the root trajectory and offsets (22, 3)."""
    pos: list[Any] = [root] + [None] * (NUM_JOINTS - 1)
    for joint in BVH_JOINTS:
        for kid in CHILDREN[joint]:
            pos[kid] = pos[joint] + world[:, joint] @ offsets[kid]
    return torch.stack(pos, dim=1)


def _refine(
    joints: np.ndarray, offsets: np.ndarray, world: np.ndarray, lengths: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares polish of a greedy fit: rotations (and bone lengths if `lengths`) minimising the
    L8 norm of the joint errors, a smooth stand-in for the max error. Returns (offsets, world, positions)."""
    target, base = torch.from_numpy(joints), torch.from_numpy(world)
    quat = torch.zeros(len(joints), NUM_JOINTS, 4, dtype=torch.float64)
    quat[..., 0] = 1.0
    log_len = torch.zeros(NUM_JOINTS, 1, dtype=torch.float64)
    params = [quat.requires_grad_(), log_len.requires_grad_(lengths)]
    opt = torch.optim.LBFGS(
        [p for p in params if p.requires_grad], max_iter=REFINE_ITERATIONS, line_search_fn="strong_wolfe"
    )

    def fitted() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rot = quaternion_to_matrix(quat / torch.linalg.vector_norm(quat, dim=-1, keepdim=True)) @ base
        offs = torch.from_numpy(offsets) * log_len.exp()
        return offs, rot, skeleton_positions(rot, target[:, 0], offs)

    def loss() -> torch.Tensor:
        opt.zero_grad()
        err2 = ((fitted()[2] - target) ** 2).sum(-1) * 1e4  # cm^2
        value = (err2**4).mean() ** 0.125
        value.backward()
        return value

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead (10-80x slower on a busy 2-core host)
    try:
        opt.step(loss)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        offs, rot, pos = (x.numpy() for x in fitted())
    for joint in BVH_JOINTS:  # leaves keep their parent's rotation
        if not CHILDREN[joint]:
            rot[:, joint] = rot[:, PARENTS[joint]]
    return offs, rot, pos


def fit_skeleton(
    joints: Any, offsets: np.ndarray | None = None, refine: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a motion onto a fixed skeleton: the greedy `solve_rotations`, then a least-squares polish.

    Args:
        joints: (T, 22, 3) positions in metres, SMPL order.
        offsets: (22, 3) rest offsets, kept as given; default `rest_offsets(joints)`, whose bone lengths
            the polish may adjust.
        refine: run the polish when the greedy fit is off by more than REFINE_ABOVE somewhere.

    Returns:
        offsets (22, 3), world rotations (T, 22, 3, 3) and the fitted positions (T, 22, 3), SMPL order.
    """
    j = _check_joints(joints)
    fixed = offsets is not None
    offsets = _check_offsets(offsets) if fixed else rest_offsets(j)
    world, pos = solve_rotations(j, offsets)
    if refine and np.linalg.norm(pos - j, axis=-1).max() > REFINE_ABOVE:
        return _refine(j, offsets, world, lengths=not fixed)
    return offsets, world, pos


def _local(world: np.ndarray) -> np.ndarray:
    """World (T, 22, 3, 3) -> local rotations, R_local[j] = R_world[parent]^T R_world[j]."""
    local = world.copy()
    local[:, 1:] = np.swapaxes(world[:, list(PARENTS[1:])], -1, -2) @ world[:, 1:]
    return local


def _continuous(angles: np.ndarray) -> np.ndarray:
    """(T, J, 3) Euler angles made continuous over time: same rotations, no +-360 or gimbal-branch jumps."""
    out = angles.copy()
    for t in range(1, len(out)):
        out[t] = nearest_euler(out[t], out[t - 1])
    return out


def _channels(orders: list[str], stretch: bool) -> list[tuple[str, ...]]:
    position = ("Xposition", "Yposition", "Zposition")
    return [
        (position if k == 0 or stretch else ()) + tuple(f"{a}rotation" for a in order) for k, order in enumerate(orders)
    ]


def _bvh(
    offsets: np.ndarray,
    world: np.ndarray,
    pos: np.ndarray,
    fps: float,
    units: str,
    orders: list[str],
    stretch: bool,
) -> BVH:
    """Assemble the clip from a fit (SMPL order) at the native rate, joints in BVH order."""
    scale, k_of = UNITS[units], {smpl: k for k, smpl in enumerate(BVH_JOINTS)}
    local = _local(world)[:, list(BVH_JOINTS)]
    angles = _continuous(np.stack([matrix_to_euler(local[:, k], o) for k, o in enumerate(orders)], 1))
    bones = pos - pos[:, list(PARENTS)]
    bones[:, 0] = pos[:, 0]  # the root's position channels carry its world position
    parent_rot = world[:, [max(p, 0) for p in PARENTS]]
    parent_rot[:, 0] = np.eye(3)
    trans = np.einsum("tjik,tji->tjk", parent_rot, bones)[:, list(BVH_JOINTS)] * scale
    columns = [
        np.concatenate(([trans[:, k]] if k == 0 or stretch else []) + [angles[:, k]], axis=1) for k in range(NUM_JOINTS)
    ]
    parents = [k_of[PARENTS[s]] if s else -1 for s in BVH_JOINTS]
    ends = {k_of[s]: REST_DIRECTIONS[s] * length * scale for s, length in END_SITES.items()}
    return BVH(
        BVH_NAMES,
        parents,
        offsets[list(BVH_JOINTS)] * scale,
        _channels(orders, stretch),
        ends,
        1.0 / fps,
        np.concatenate(columns, axis=1),
    )


def _warn_if_off(fitted: np.ndarray, joints: np.ndarray) -> None:
    err = np.linalg.norm(fitted - joints, axis=-1)
    if err.max() > FIT_TOLERANCE:
        t, k = np.unravel_index(err.argmax(), err.shape)
        warnings.warn(
            f"the fixed-skeleton BVH is off by up to {100 * err.max():.1f} cm ({JOINT_NAMES[k]}, frame {t}) "
            "because the motion's bone lengths vary; pass stretch=True to reproduce the joints exactly",
            stacklevel=3,
        )


# --------------------------------------------------------------------------- public API


def joints_to_bvh(
    joints: Any,
    fps: float = FPS,
    target_fps: float | None = None,
    *,
    units: str = "cm",
    order: str | None = None,
    offsets: np.ndarray | None = None,
    refine: bool = True,
    stretch: bool = False,
) -> BVH:
    """An animated BVH clip of a 22-joint SMPL motion.

    Args:
        joints: (T, 22, 3) positions in metres, y up, SMPL order (HumanML3D `new_joints` layout).
        fps: frame rate of `joints`.
        target_fps: frame rate of the clip; rotations are slerped and the root translation interpolated
            linearly (`BVH.resampled`) over the same duration: floor((T-1) * target_fps / fps) + 1 frames.
            Frame rates are in MIN_FPS..MAX_FPS (1..1000) and clips at most MAX_FRAMES long.
        units: "cm" (default; what most BVH files and DCC tools use) or "m".
        order: one Tait-Bryan rotation order (e.g. "ZXY") for every joint; None (default) uses
            JOINT_ORDERS, per joint, which keeps every swing of the fitted skeleton away from gimbal lock.
        offsets: (22, 3) rest offsets in metres, SMPL order, e.g. to share one skeleton between clips;
            default `rest_offsets(joints)`.
        refine: polish the fixed-skeleton fit by least squares (`fit_skeleton`).
        stretch: give every joint position channels with its per-frame offset, so that forward
            kinematics reproduces `joints` exactly even when their bone lengths vary (generated motions).
            Default False: one fixed skeleton, onto which the motion is fitted (`fit_skeleton`); a
            warning names the worst joint when that fit is off by more than FIT_TOLERANCE (1 cm).

    Returns:
        A BVH with the joints in depth-first order (BVH_NAMES), root position + rotation channels,
        rotation channels elsewhere and End Sites at the leaves.
    """
    j = _check_joints(joints)
    fps = check_fps(fps, "fps")
    if target_fps is not None:
        target_fps = check_fps(target_fps, "target_fps")
    check_output_frames(len(j), fps, target_fps)
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    if order is not None and not isinstance(order, str):
        raise ValueError(f"order must be a string such as 'ZXY' or None, got {order!r}")
    orders = [JOINT_ORDERS[s] for s in BVH_JOINTS] if order is None else [order.upper()] * NUM_JOINTS
    if stretch:
        offsets = rest_offsets(j) if offsets is None else _check_offsets(offsets)
        fit = (offsets, *solve_rotations(j, offsets, exact=True))
    else:
        fit = fit_skeleton(j, offsets, refine)
        _warn_if_off(fit[2], j)
    bvh = _bvh(*fit, fps, units, orders, stretch)
    return bvh if target_fps is None or target_fps == fps else bvh.resampled(target_fps)


def features_to_bvh(features: Any, fps: float = FPS, target_fps: float | None = None, **kwargs: Any) -> BVH:
    """BVH clip of 263-d HumanML3D features (T, 263): joints from the `ric` block placed on the uniform
    skeleton (`clean_joints` without foot locking: the identity on real features, one rigid body for
    generated ones), then `joints_to_bvh`. Foot locking is a generation choice (`MotionLCM(foot_lock=)`);
    on real clips it would move feet whose contact labels are loose."""
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 263 or not np.isfinite(arr).all():
        raise ValueError(f"features must be a finite (T, 263) array, got shape {arr.shape}")
    return joints_to_bvh(clean_joints(features_to_joints(arr), foot_lock=False), fps, target_fps, **kwargs)


def bvh_to_joints(bvh: BVH, units: str = "cm") -> np.ndarray:
    """Joint positions (F, 22, 3) in metres, SMPL order, by forward kinematics of a clip with BVH_NAMES."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    missing = sorted(set(JOINT_NAMES) - set(bvh.names))
    if missing:
        raise ValueError(f"BVH lacks SMPL joint(s) {', '.join(missing)}")
    pos, _ = bvh.forward_kinematics()
    return pos[:, [bvh.names.index(n) for n in JOINT_NAMES]] / UNITS[units]
