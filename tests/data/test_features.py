"""The HumanML3D representation against the real released files (new_joint_vecs <-> new_joints)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from motionlcm.data.features import (
    FEATURE_BLOCKS,
    canonicalize_joints,
    features_to_joints,
    features_to_rotations,
    joints_to_features,
    mirror_features,
    mirror_joints,
    rotations_to_joints,
)
from motionlcm.data.skeleton import PARENTS, TARGET_BONE_LENGTHS

SAMPLES = ("012314", "000000")


def load(sample_dir, name):
    feats = np.load(sample_dir / "new_joint_vecs" / f"{name}.npy")
    joints = np.load(sample_dir / "new_joints" / f"{name}.npy")
    return feats, joints


def bone_lengths(joints):
    return np.linalg.norm(joints[..., 1:, :] - joints[..., list(PARENTS[1:]), :], axis=-1)


@pytest.mark.parametrize("name", SAMPLES)
def test_features_to_joints_reproduces_new_joints(humanml3d_sample_dir, name):
    feats, joints = load(humanml3d_sample_dir, name)
    recovered = features_to_joints(feats)
    assert recovered.shape == joints.shape and recovered.dtype == feats.dtype
    assert np.abs(recovered - joints).max() < 1e-5


def test_features_to_joints_batched_torch_and_differentiable(humanml3d_sample_dir):
    pairs = [load(humanml3d_sample_dir, n) for n in SAMPLES]
    t = min(f.shape[0] for f, _ in pairs)
    feats = torch.tensor(np.stack([f[:t] for f, _ in pairs]), dtype=torch.float64, requires_grad=True)
    joints = features_to_joints(feats)
    assert joints.shape == (2, t, 22, 3)
    for i, (_, ref) in enumerate(pairs):
        assert (joints[i] - torch.from_numpy(ref[:t])).abs().max() < 1e-5
    joints[:, -1, 20].sum().backward()  # the left wrist of the last frame depends on all earlier rot-vels
    assert torch.isfinite(feats.grad).all()
    assert feats.grad[:, :-1, 0].abs().min() > 0


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("retarget", [False, True])
def test_joints_to_features_recomputes_new_joint_vecs(humanml3d_sample_dir, name, retarget):
    feats, _ = load(humanml3d_sample_dir, name)
    full = features_to_joints(feats.astype(np.float64), with_last_frame=True)  # rebuild the dropped frame
    recomputed = joints_to_features(full, retarget=retarget)
    assert recomputed.shape == feats.shape
    for block, cols in FEATURE_BLOCKS.items():
        if block == "foot_contact":
            assert np.array_equal(recomputed[:, cols], feats[:, cols]), block
        else:
            assert np.abs(recomputed[:, cols] - feats[:, cols]).max() < 1e-4, block


def test_floor_false_keeps_the_heights_as_given(humanml3d_sample_dir):
    """A generated clip whose foot dips 3 cm below the floor in one frame: HumanML3D's floor step lifts the whole
    clip by 3 cm (planted feet then hover); `floor=False` keeps every height."""
    feats, _ = load(humanml3d_sample_dir, "012314")
    joints = features_to_joints(feats.astype(np.float64), with_last_frame=True)
    dipped = joints.copy()
    dipped[40, 10, 1] = -0.03  # one frame's left toe below the floor (bone lengths change: no retarget)
    kept = features_to_joints(joints_to_features(dipped, retarget=False, floor=False))
    lifted = features_to_joints(joints_to_features(dipped, retarget=False))
    np.testing.assert_allclose(kept[..., 1], dipped[:-1, :, 1], atol=1e-5)
    np.testing.assert_allclose(lifted[..., 1], dipped[:-1, :, 1] + 0.03, atol=1e-5)


@pytest.mark.parametrize("name", SAMPLES)
def test_rotation_path_reproduces_new_joints(humanml3d_sample_dir, name):
    feats, joints = load(humanml3d_sample_dir, name)
    rotations = features_to_rotations(feats.astype(np.float64))
    assert rotations.local_rotations.shape == (len(feats), 22, 3, 3)
    rot = rotations.local_rotations
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-6)
    assert np.abs(rotations_to_joints(rotations) - joints).max() < 1e-5


def test_canonical_form_of_arbitrary_pose_scale_and_heading(humanml3d_sample_dir):
    feats, _ = load(humanml3d_sample_dir, "012314")
    full = features_to_joints(feats.astype(np.float64), with_last_frame=True)
    turn = Rotation.from_euler("y", 131.0, degrees=True).as_matrix()
    moved = full @ turn.T * 1.37 + np.array([4.0, 0.8, -2.5])
    # Distort bone lengths: only directions and the leg ratio may matter.
    moved[:, 15] = moved[:, 12] + 2.0 * (moved[:, 15] - moved[:, 12])
    canon = canonicalize_joints(moved)
    assert abs(canon[..., 1].min()) < 1e-9  # floor at 0
    assert np.abs(canon[0, 0, [0, 2]]).max() < 1e-9  # root at the xz origin at frame 0
    across = (canon[0, 2] - canon[0, 1]) + (canon[0, 17] - canon[0, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    assert forward[2] / np.linalg.norm(forward) > 1 - 1e-9  # facing +z
    assert np.abs(bone_lengths(canon) - TARGET_BONE_LENGTHS[1:]).max() < 1e-9
    recomputed = joints_to_features(moved)
    assert np.abs(recomputed - feats).max() < 1e-4


def test_mirror_is_consistent_between_joints_and_features(humanml3d_sample_dir):
    feats, joints = load(humanml3d_sample_dir, "012314")
    feats = feats.astype(np.float64)
    assert np.allclose(mirror_features(mirror_features(feats)), feats)
    assert np.abs(features_to_joints(mirror_features(feats)) - mirror_joints(joints)).max() < 1e-5
    # Features of mirrored joints (skeleton not re-imposed, so mirrored bone lengths) = feature-space mirror.
    full = features_to_joints(feats, with_last_frame=True)
    direct = joints_to_features(mirror_joints(full), retarget=False)
    assert np.abs(direct - mirror_features(feats)).max() < 1e-5


def test_mirror_swaps_sides(humanml3d_sample_dir):
    _, joints = load(humanml3d_sample_dir, "000000")  # a kick with the left leg
    mirrored = mirror_joints(joints)
    left_foot_range = np.ptp(joints[:, 10, 1])
    assert np.isclose(np.ptp(mirrored[:, 11, 1]), left_foot_range)
    assert np.allclose(mirrored[:, 0, 0], -joints[:, 0, 0])


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="features must have shape"):
        features_to_joints(np.zeros((10, 262)))
    with pytest.raises(ValueError, match="joints must have shape"):
        joints_to_features(np.zeros((10, 24, 3)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        joints_to_features(np.random.default_rng(0).normal(size=(1, 22, 3)))
