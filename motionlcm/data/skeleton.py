"""The 22-joint SMPL skeleton of HumanML3D: names, parents, kinematic chains and the target skeleton.

Values follow HumanML3D's `paramUtil.py` (`t2m_raw_offsets`, `t2m_kinematic_chain`) and the bone lengths
of its uniform target skeleton (sample 000021, frame 0), as measured on the released `new_joints` files
(see docs/representation.md).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)

PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# Chains in the order HumanML3D walks them (`t2m_kinematic_chain`); the arm chains start at spine3.
KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# Rest-pose unit bone directions (`t2m_raw_offsets`): the reference pose of the IK rotations.
RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
        [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ],
    dtype=np.float64,
)  # fmt: skip

# Bone lengths (m) of the uniform target skeleton, parent -> joint; every processed HumanML3D clip has
# them (mean over all frames of new_joints/012314.npy and 000000.npy; the two agree to 5e-8, frames to 2e-7).
TARGET_BONE_LENGTHS = np.array(
    [0.0, 0.1030740, 0.1098834, 0.1315682, 0.3936232, 0.3901882, 0.1431902, 0.4324330, 0.4256434, 0.0573647,
     0.1433818, 0.1494191, 0.2193600, 0.1374868, 0.1433828, 0.1030392, 0.1316140, 0.1229844, 0.2568399,
     0.2630919, 0.2660118, 0.2698763],
    dtype=np.float64,
)  # fmt: skip

# Target offsets: length x raw direction (HumanML3D's Skeleton rest offsets).
TARGET_OFFSETS = TARGET_BONE_LENGTHS[:, None] * RAW_OFFSETS

# Joints used for facing: right hip, left hip, right shoulder, left shoulder (`face_joint_indx`).
FACE_JOINTS = (2, 1, 17, 16)
# Foot joints for contacts, in feature order: left ankle, left foot, right ankle, right foot.
FOOT_JOINTS = (7, 10, 8, 11)
# Right thigh + right shin decide the retarget scale (`l_idx1 = 5`, `l_idx2 = 8`).
LEG_SCALE_JOINTS = (5, 8)

# Left/right swap used by mirroring (HumanML3D's 'M' files): index i takes joint MIRROR_PERM[i].
_LEFT = (1, 4, 7, 10, 13, 16, 18, 20)
_RIGHT = (2, 5, 8, 11, 14, 17, 19, 21)
MIRROR_PERM = np.arange(NUM_JOINTS)
MIRROR_PERM[list(_LEFT)] = _RIGHT
MIRROR_PERM[list(_RIGHT)] = _LEFT

FPS = 20  # HumanML3D frame rate


def joint_index(name: str) -> int:
    """Index of an SMPL joint by name; raises ValueError listing the valid names."""
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown SMPL joint {name!r}; expected one of {', '.join(JOINT_NAMES)}") from None


# Two-bone limbs (upper joint, middle joint, end effector) whose end keeps its position when the skeleton
# is conformed: hips -> knees -> ankles and shoulders -> elbows -> wrists.
LIMBS: tuple[tuple[int, int, int], ...] = ((1, 4, 7), (2, 5, 8), (16, 18, 20), (17, 19, 21))
# Joints with several children, as (joint, (left child, right child, upper child)): in every processed clip
# their children keep one configuration (the pelvis's hips and spine, spine3's collars and neck: one rigid
# piece in a BVH file), so they are conformed together.
BRANCHES: tuple[tuple[int, tuple[int, int, int]], ...] = ((0, (1, 2, 3)), (9, (13, 14, 12)))
KNEES = (4, 5)
# m: how much straighter than solved, and how far behind the hip-ankle line, a given knee may be and keep its
# own bend plane (HumanML3D's sample clips have knees up to 1.5 cm behind our estimate of the body's front)
KNEE_SLACK = 0.01
KNEE_BEHIND = 0.03


def _unit(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., 22, 3) positions -> (..., 21) lengths of the bones joint -> parent, joints 1..21."""
    joints = np.asarray(joints)
    return np.linalg.norm(joints[..., 1:, :] - joints[..., list(PARENTS[1:]), :], axis=-1)


def branch_frame(left: np.ndarray, right: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations whose columns are the unit vector from the right child to the left one, the upper
    child's direction orthogonalised to it, and their cross product."""
    x = _unit(left - right)
    y = _unit(up - np.sum(up * x, axis=-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def kabsch(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations R minimising sum_c |R rest_c - target_c|^2 over rows c of (..., C, 3) arrays
    (Kabsch 1976, via SVD)."""
    h = np.einsum("...ci,...cj->...ij", rest, target)
    u, _, vt = np.linalg.svd(h)
    v, ut = np.swapaxes(vt, -1, -2), np.swapaxes(u, -1, -2)
    fix = np.ones(h.shape[:-1])
    fix[..., -1] = np.sign(np.linalg.det(v @ ut))  # a rotation, never a reflection
    return v @ (fix[..., :, None] * ut)


def _branch(joints: np.ndarray, joint: int, children: tuple[int, int, int], lengths: np.ndarray) -> np.ndarray:
    """(..., T, 3, 3) child offsets of a branching joint: one rigid configuration for the whole clip (the
    mean of the decoded child directions in the branch's own frame), turned per frame to fit the decoded
    directions."""
    directions = _unit(joints[..., list(children), :] - joints[..., joint, None, :])  # (..., T, 3, 3)
    frames = branch_frame(directions[..., 0, :], directions[..., 1, :], directions[..., 2, :])
    local = np.einsum("...ji,...cj->...ci", frames, directions)  # the children in the branch frame
    rest = _unit(local.mean(axis=-3, keepdims=True)) * lengths[list(children), None]  # (..., 1, 3, 3)
    rotations = kabsch(np.broadcast_to(rest, directions.shape), directions)
    return np.einsum("...ij,...cj->...ci", rotations, rest)


def two_bone_ik(
    upper: np.ndarray,
    middle: np.ndarray,
    end: np.ndarray,
    lengths: tuple[float, float],
    front: np.ndarray | None = None,
    soft: float | np.ndarray = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Middle and end joints (..., 3) of a limb with bones of `lengths` hanging from `upper`: the end
    reaches the given `end` where it can (else the nearest point along the same line), the middle joint
    bends in the plane that holds the given middle joint (two-bone IK by the law of cosines).

    `front` (..., 3), for a knee: the body's front (`body_front`). A knee is never behind the hip-ankle line
    (none of 55,092 frames of Bandai-Namco capture, either leg), but a blended or decoded one can be, or lie on
    the line while the leg must bend: the law of cosines then bends the leg backwards, or swings the knee
    through it from one frame to the next as the given knee crosses the line (a 0.4 m knee jump seen at a
    continuation's seam). With `front`, a knee behind the line is mirrored to the front, and the less the
    given knee is off the line compared with how far the solved one must be, the more its direction leans to
    the front. A real knee on real bone lengths is as far off the line as the solved one (within `KNEE_SLACK`)
    and keeps its plane; so does one less than `KNEE_BEHIND` behind it.

    `soft` (m, 0: off; or (..., 1) per pose): soft IK. Reach within `soft` of the limb's full length is eased exponentially towards
    it and never quite reached, so the middle joint does not snap straight as the end nears full extension
    (the law of cosines moves it ever faster there); the end then falls short of a target at full reach by
    `soft / e`."""
    l1, l2 = lengths
    reach = end - upper
    d = np.linalg.norm(reach, axis=-1, keepdims=True)
    u = _unit(reach)
    if np.any(np.asarray(soft) > 0.0):  # soft IK: the last `soft` metres of reach are approached exponentially
        soft = np.maximum(soft, 1e-9)
        start = l1 + l2 - soft
        d = np.where(d > start, start + soft * (1.0 - np.exp(-np.maximum(d - start, 0.0) / soft)), d)
    d = np.clip(d, abs(l1 - l2) + 1e-9, l1 + l2 - 1e-9)
    along = (l1 * l1 - l2 * l2 + d * d) / (2 * d)  # distance from `upper` to the middle joint's foot point
    across = np.sqrt(np.maximum(l1 * l1 - along * along, 0.0))
    bend = middle - upper
    bend = bend - np.sum(bend * u, axis=-1, keepdims=True) * u
    if front is not None:
        pole = front - np.sum(front * u, axis=-1, keepdims=True) * u
        # the front across the leg, faded out where the leg itself points within 66 degrees of the front (a kick,
        # a high knee: one of HumanML3D's sample clips has its knee 2 cm "behind" at 71 degrees)
        sure = np.clip((np.linalg.norm(pole, axis=-1, keepdims=True) - 0.4) / 0.4, 0.0, 1.0)
        pole = sure * _unit(pole)
        ahead = np.sum(bend * _unit(pole), axis=-1, keepdims=True)
        bend = bend - 2.0 * np.minimum(ahead + KNEE_BEHIND, 0.0) * pole  # behind the line: mirrored to the front
        short = across - np.linalg.norm(bend, axis=-1, keepdims=True)  # how much straighter the given knee is
        bend = bend + np.maximum(short - KNEE_SLACK, 0.0) * pole
    new_middle = upper + along * u + across * _unit(bend)
    return new_middle, upper + d * u


def body_front(joints: np.ndarray) -> np.ndarray:
    """(..., 3) unit vectors: the front of the body of (..., 22, 3) joints, across the hips and square to the
    spine (pelvis -> spine3), whatever the posture (standing: horizontal; lying on the back: up)."""
    up = joints[..., 9, :] - joints[..., 0, :]
    right = joints[..., 2, :] - joints[..., 1, :]
    return _unit(np.cross(up, right))


def conform_to_skeleton(joints: np.ndarray, bone_lengths: np.ndarray = TARGET_BONE_LENGTHS) -> np.ndarray:
    """Place the joint positions (..., T, 22, 3) of a clip (all T frames valid) on a skeleton with the given
    bone lengths (default: HumanML3D's uniform target skeleton, which every processed clip has exactly).

    Generated `ric` positions are predicted joint by joint, so their bone lengths drift by centimetres
    (more where a sampler leaves the data manifold; docs/benchmarks.md, "Rigid bones and planted feet").
    Walking the tree from the pelvis, each bone keeps its direction and takes its length, except that the
    children of the pelvis and of spine3 keep one rigid configuration over the clip (`BRANCHES`, as in every
    processed clip and in a BVH rig), turned per frame to fit the decoded directions, and that the four
    limbs' end effectors (`LIMBS`: ankles, wrists) keep their decoded positions wherever the conformed hip
    or shoulder can reach them (two-bone IK, the knee or elbow bending in the decoded plane), so planted
    feet stay planted and hands reach where they were generated. A motion that already has the lengths is
    returned unchanged (to rounding). The pelvis never moves.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 3 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (..., T, {NUM_JOINTS}, 3), got {joints.shape}")
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    out = joints.copy()
    limb_of = {middle: (upper, middle, end) for upper, middle, end in LIMBS}
    front = body_front(joints)
    placed_with_parent = {end for _, _, end in LIMBS} | {c for _, children in BRANCHES for c in children}
    branches = dict(BRANCHES)
    for k in range(NUM_JOINTS):  # parents come before children in SMPL order
        p = PARENTS[k]
        if k in limb_of:
            upper, middle, end = limb_of[k]
            out[..., middle, :], out[..., end, :] = two_bone_ik(
                out[..., upper, :],
                out[..., upper, :] + joints[..., middle, :] - joints[..., upper, :],
                joints[..., end, :],
                (lengths[middle], lengths[end]),
                front if middle in KNEES else None,
            )
        elif k != 0 and k not in placed_with_parent:  # the pelvis never moves; the others wait for parents
            out[..., k, :] = out[..., p, :] + lengths[k] * _unit(joints[..., k, :] - joints[..., p, :])
        if k in branches:  # now that k is placed, its children as one rigid piece
            offsets = _branch(joints, k, branches[k], lengths)
            for i, child in enumerate(branches[k]):
                out[..., child, :] = out[..., k, :] + offsets[..., i, :]
    return out
