"""Retargeting onto a user's rig (motionlcm/export/retarget.py) on real Bandai-Namco capture: a clip imported
with the shipped rig file comes back on the original skeleton, mapped joints within 2 cm of the original
BVH's on every frame; bad rigs and skeletons are refused with the file and the joints named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motionlcm.data.features import features_to_joints
from motionlcm.data.rig import Rig, nominal_fps, resample_positions
from motionlcm.export.retarget import RigSkeleton, retarget
from motionlcm.io.bvh import read_bvh, write_bvh
from motionlcm.motion import Motion
from tests.conftest import REPO

RIG = REPO / "datasets" / "bandai-namco" / "rig.yaml"


def mapped(rig: Rig, bvh) -> np.ndarray:
    """(F, 22, 3) metres: the rig's 22 points after the clip's own forward kinematics."""
    positions, rotations = bvh.forward_kinematics()
    return rig.map_positions(positions, rotations, bvh.names)


def aligned(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`points` turned about y and shifted to fit `reference` best over all frames (the import keeps no
    world placement: a clip starts at the origin facing +z)."""
    a = points - points.mean(axis=(0, 1))
    b = reference - reference.mean(axis=(0, 1))
    u, _, vt = np.linalg.svd(a.reshape(-1, 3)[:, [0, 2]].T @ b.reshape(-1, 3)[:, [0, 2]])
    turn = (u @ vt).T
    out = points.copy()
    out[..., [0, 2]] = a[..., [0, 2]] @ turn.T
    out[..., 1] = a[..., 1]
    return out + reference.mean(axis=(0, 1))


@pytest.fixture(scope="module")
def rig() -> Rig:
    return Rig.load(RIG)


@pytest.mark.parametrize(
    "name",
    ["dataset-2_walk_normal_001", "dataset-2_run_active_001", "dataset-2_wave-left-hand_elderly_001",
     "dataset-2_walk-turn-left_normal_001", "dataset-2_raise-up-right-hand_normal_001"],
)  # fmt: skip
def test_an_imported_clip_comes_back_on_its_own_skeleton(rig, bn_fixture_dir, bn_dataset_dir, name):
    """Import (BVH -> 22 joints, uniform bone lengths -> features), export back with the same rig file: the
    mapped joints of the written clip match the original BVH's (resampled to 20 fps as the import does)
    within 2 cm on every frame; the original's bone lengths are kept."""
    features = np.load(bn_dataset_dir / "new_joint_vecs" / f"{name}.npy")
    clip = retarget(features_to_joints(features), RigSkeleton.load(rig))  # the rig file's reference skeleton
    original = read_bvh(bn_fixture_dir / f"{name}.bvh")
    truth = resample_positions(mapped(rig, original), nominal_fps(original.frame_time), 20.0)
    ours = mapped(rig, clip)
    frames = min(len(truth), len(ours))
    assert abs(len(truth) - len(ours)) <= 1
    error = np.linalg.norm(aligned(ours[:frames], truth[:frames]) - truth[:frames], axis=-1)
    assert error.max() < 0.02, (error.max(), error.max(axis=0))
    assert clip.names == original.names and clip.channels == original.channels
    # the uniform skeleton's bones came back at the rig's own lengths
    bones = np.linalg.norm(ours[:, 4] - ours[:, 1], axis=-1)  # left thigh
    real = np.linalg.norm(truth[:, 4] - truth[:, 1], axis=-1)
    assert abs(bones.mean() - real.mean()) < 0.005


def test_a_generated_motion_on_the_rig_keeps_its_bone_directions(rig, bn_dataset_dir):
    """A motion off the data (joints moved a centimetre at random, as a decoder leaves them): every limb bone
    of the written clip points where the motion's does, within 2 degrees (the trunk's bones are tied together
    on this rig: spine2 is the middle of Spine and Chest, the pelvis a blend of hips and spine)."""
    rng = np.random.default_rng(0)
    joints = np.load(sorted((bn_dataset_dir / "new_joints").glob("*.npy"))[0])[:40].astype(np.float64)
    joints = joints + rng.normal(0.0, 0.01, joints.shape)
    ours = mapped(rig, retarget(joints, RigSkeleton.load(rig)))
    from motionlcm.data.skeleton import PARENTS

    def directions(points):
        bones = points[:, 1:] - points[:, list(PARENTS[1:])]
        return bones / np.linalg.norm(bones, axis=-1, keepdims=True)

    cos = np.sum(directions(ours) * directions(joints), axis=-1)
    limbs = [j - 1 for j in (4, 5, 7, 8, 10, 11, 18, 19, 20, 21)]  # bones ending at knees, ankles, feet, ...
    assert np.degrees(np.arccos(np.clip(cos[:, limbs], -1, 1))).max() < 2.0


def test_motion_save_bvh_on_a_rig_at_another_frame_rate(rig, bn_dataset_dir, tmp_path):
    joints = np.load(sorted((bn_dataset_dir / "new_joints").glob("*.npy"))[0])[:30]
    path = Motion(joints, 20.0).save_bvh(tmp_path / "clip.bvh", fps=30.0, rig=RIG)
    clip = read_bvh(path)
    assert clip.names[:2] == ["joint_Root", "Hips"] and clip.fps == pytest.approx(30.0, rel=1e-4)
    assert clip.num_frames == 44  # (30 - 1) * 30 / 20 + 1


def test_bad_rigs_and_skeletons_are_refused(rig, tmp_path):
    skeleton = read_bvh(REPO / "datasets" / "bandai-namco" / "skeleton.bvh")
    renamed = tmp_path / "renamed.bvh"
    write_bvh(renamed, type(skeleton)([n.replace("Hand_L", "LeftHand") for n in skeleton.names], skeleton.parents,
                                      skeleton.offsets, skeleton.channels, skeleton.end_sites, skeleton.frame_time,
                                      skeleton.motion))  # fmt: skip
    with pytest.raises(ValueError, match=r"rig\.yaml: joint\(s\) Hand_L are not in the skeleton .*renamed\.bvh"):
        RigSkeleton.load(rig, renamed)
    bare = tmp_path / "bare.yaml"
    bare.write_text(RIG.read_text().replace("reference: skeleton.bvh\n", ""))
    with pytest.raises(ValueError, match=r"bare\.yaml: the rig file names no reference skeleton.*--skeleton"):
        RigSkeleton.load(bare)
    with pytest.raises(ValueError, match=r"joints must have shape \(T, 22, 3\)"):
        retarget(np.zeros((5, 21, 3)), RigSkeleton.load(rig))


def test_the_export_command_writes_onto_the_rig_and_refuses_a_bad_skeleton(bn_dataset_dir, tmp_path):
    src = sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy"))[0]
    out = tmp_path / "out.bvh"
    cli = [sys.executable, "-m", "motionlcm.cli", "export", str(src), "--rig", str(RIG)]
    run = subprocess.run([*cli, "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert read_bvh(out).names[0] == "joint_Root"
    run = subprocess.run([*cli, "--to", "glb", "-o", str(tmp_path / "out.glb")], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.glb").read_bytes()[:4] == b"glTF"
    bad = tmp_path / "bad.bvh"
    run = subprocess.run([*cli, "--skeleton", str(RIG), "-o", str(bad)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "rig.yaml" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not bad.exists()


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not on PATH")
def test_blender_opens_the_clip_on_the_rig(rig, bn_dataset_dir, tmp_path: Path) -> None:
    """Blender's BVH importer builds the rig's armature; its posed bone heads are the clip's joints."""
    from tests.export.test_blender import DUMP

    features = np.load(bn_dataset_dir / "new_joint_vecs" / "dataset-2_walk_normal_001.npy")
    clip = retarget(features_to_joints(features), RigSkeleton.load(rig))
    path = tmp_path / "walk.bvh"
    write_bvh(path, clip)
    out = tmp_path / "heads.json"
    frames = [0, 20, clip.num_frames - 1]
    cmd = ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", DUMP, "--", str(path),
           str(out), "0.01", ",".join(map(str, frames))]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and out.exists(), run.stdout[-2000:] + run.stderr[-2000:]
    import json

    positions, _ = clip.forward_kinematics()
    for frame, heads in json.loads(out.read_text()).items():
        for j, name in enumerate(clip.names):
            x, y, z = heads[name]
            assert np.allclose([x, z, -y], positions[int(frame), j] * 0.01, atol=1e-3), (frame, name)


def test_a_glb_on_the_rig_is_the_bvh_in_metres_y_up(rig, bn_dataset_dir, tmp_path):
    """`Motion.save_glb(rig=)`: the rig's joints as glTF nodes whose animation reproduces the BVH on the same
    rig (metres, y up); a z-up variant of the rig (its skeleton turned, its rig file saying so) gives the
    same glTF."""
    from motionlcm.export.retarget import to_standard_axes
    from motionlcm.io.gltf import read_glb
    from tests.export.test_gltf_export import joint_positions

    joints = np.load(sorted((bn_dataset_dir / "new_joints").glob("*.npy"))[0])[:30]
    motion = Motion(joints, 20.0)
    clip = motion.to_bvh(rig=RIG)
    gltf, binary = read_glb(motion.save_glb(tmp_path / "rig.glb", rig=RIG).read_bytes())
    positions, _ = clip.forward_kinematics()
    assert np.allclose(joint_positions(gltf, binary, clip.names), positions * 0.01, atol=1e-4)
    # the same rig with z up (x left, z up, -y forward): rows of `axes` are its vectors of our x, y, z
    turn = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    z_up = to_standard_axes(clip, turn.T)  # our clip seen in the z-up rig's axes (the inverse turn)
    assert np.allclose(z_up.forward_kinematics()[0][..., 2], positions[..., 1], atol=1e-6)  # up is z there
    back = to_standard_axes(z_up, turn)
    assert np.allclose(back.forward_kinematics()[0], positions, atol=1e-6)
