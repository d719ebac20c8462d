"""Exporters of generated motions to files that animation tools read (see docs/bvh-export.md, docs/gltf.md)."""

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
from motionlcm.export.gltf_export import bvh_to_glb, joints_to_glb, write_glb

__all__ = [
    "BVH_JOINTS",
    "BVH_NAMES",
    "JOINT_ORDERS",
    "UNITS",
    "bvh_to_glb",
    "bvh_to_joints",
    "features_to_bvh",
    "fit_skeleton",
    "joints_to_bvh",
    "joints_to_glb",
    "rest_offsets",
    "solve_rotations",
    "write_glb",
]
