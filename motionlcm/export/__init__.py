"""Exporters of generated motions to files that animation tools read (see docs/bvh-export.md)."""

from motionlcm.export.bvh_export import (
    BVH_JOINTS,
    BVH_NAMES,
    JOINT_ORDERS,
    UNITS,
    bvh_to_joints,
    features_to_bvh,
    fit_skeleton,
    joints_to_bvh,
    rest_offsets,
    solve_rotations,
)

__all__ = [
    "BVH_JOINTS",
    "BVH_NAMES",
    "JOINT_ORDERS",
    "UNITS",
    "bvh_to_joints",
    "features_to_bvh",
    "fit_skeleton",
    "joints_to_bvh",
    "rest_offsets",
    "solve_rotations",
]
