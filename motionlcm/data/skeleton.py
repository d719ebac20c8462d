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
# them (measured on new_joints/012314.npy and 000000.npy, equal to 5 decimals).
TARGET_BONE_LENGTHS = np.array(
    [0.0, 0.10307, 0.10988, 0.13157, 0.39362, 0.39019, 0.14319, 0.43243, 0.42564, 0.05736, 0.14338,
     0.14942, 0.21936, 0.13749, 0.14338, 0.10304, 0.13161, 0.12298, 0.25684, 0.26309, 0.26601, 0.26988],
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
