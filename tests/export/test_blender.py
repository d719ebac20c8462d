"""Blender reads our BVH clips: its importer's posed bone heads equal our joints (skipped without `blender`).

Debian: `apt-get install --no-install-recommends blender` (3.4.1 in bookworm). Runs headless (`-b`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionlcm.data.skeleton import JOINT_NAMES, PARENTS
from motionlcm.export import joints_to_bvh
from motionlcm.io.bvh import write_bvh

pytestmark = pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not on PATH")

# Imports the BVH with explicit axis and scale options and dumps the world-space head of every posed bone.
# Debian's Blender 3.4 runs on Python 3.11, whose open() rejects the "rU" mode its BVH importer passes: the
# importer module gets an open() that drops the "U" (universal newlines are the default anyway).
DUMP = """
import builtins, json, sys
import bpy
import io_anim_bvh.import_bvh as importer
importer.open = lambda path, mode="r", *a, **k: builtins.open(path, mode.replace("U", ""), *a, **k)
src, out, scale, frames = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=src, global_scale=float(scale), axis_forward="-Z", axis_up="Y",
                        rotate_mode="NATIVE", frame_start=1, use_fps_scale=False, update_scene_fps=False,
                        update_scene_duration=True)
arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
heads = {}
for f in map(int, frames.split(",")):
    bpy.context.scene.frame_set(f + 1)
    heads[f] = {b.name: list(arm.matrix_world @ b.head) for b in arm.pose.bones}
json.dump(heads, open(out, "w"))
"""


def blender_heads(path: Path, scale: float, frames: list[int]) -> dict[int, np.ndarray]:
    """Joint positions (22, 3) per frame, SMPL order, back in our axes (Blender: x, -z, y = our x, y, z)."""
    out = path.with_suffix(".json")
    cmd = [
        "blender",
        "-b",
        "--factory-startup",
        "--python-exit-code",
        "1",
        "--python-expr",
        DUMP,
        "--",
        str(path),
        str(out),
        str(scale),
        ",".join(map(str, frames)),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and out.exists(), run.stdout[-2000:] + run.stderr[-2000:]
    result = {}
    for frame, heads in json.loads(out.read_text()).items():
        xyz = np.array([heads[name] for name in JOINT_NAMES])
        result[int(frame)] = np.stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]], axis=-1)
    return result


@pytest.fixture(scope="module")
def motion(humanml3d_sample_dir: Path) -> np.ndarray:
    """The real tennis serve, facing backwards and turning a further 180 degrees on the spot."""
    joints = np.load(humanml3d_sample_dir / "new_joints" / "012314.npy").astype(np.float64)
    s = np.linspace(0.0, 1.0, len(joints))
    rot = Rotation.from_euler("y", (180 + 180 * s * s * (3 - 2 * s))[:, None], degrees=True).as_matrix()
    pivot = joints[:, :1] * np.array([1.0, 0.0, 1.0])
    return np.einsum("tij,tkj->tki", rot, joints - pivot) + pivot


@pytest.mark.parametrize("units, scale", [("cm", 0.01), ("m", 1.0)])
def test_blender_import_matches_joints(motion: np.ndarray, tmp_path: Path, units: str, scale: float) -> None:
    path = tmp_path / "clip.bvh"
    write_bvh(path, joints_to_bvh(motion, units=units))
    frames = [0, 40, 85, 130, len(motion) - 1]
    for frame, heads in blender_heads(path, scale, frames).items():
        assert np.abs(heads - motion[frame]).max() < 1e-3, frame  # Blender works in float32


def test_blender_reads_per_joint_translations(motion: np.ndarray, tmp_path: Path) -> None:
    wobble = 1 + 0.05 * np.sin(np.arange(len(motion)))[:, None]  # bone lengths change every frame
    joints = motion.copy()
    for j in range(1, 22):
        joints[:, j] = joints[:, PARENTS[j]] + (motion[:, j] - motion[:, PARENTS[j]]) * wobble
    path = tmp_path / "stretch.bvh"
    write_bvh(path, joints_to_bvh(joints, stretch=True))
    for frame, heads in blender_heads(path, 0.01, [0, 1, 2, 77, len(joints) - 1]).items():
        assert np.abs(heads - joints[frame]).max() < 1e-3, frame
