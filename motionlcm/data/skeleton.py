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
