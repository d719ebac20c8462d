"""conform_to_skeleton: generated joints placed on the uniform skeleton, on real Bandai-Namco and HumanML3D clips."""

import numpy as np
import pytest

from motionlcm.data.skeleton import KNEE_BEHIND, LIMBS, TARGET_BONE_LENGTHS, bone_lengths, conform_to_skeleton


@pytest.fixture(scope="module")
def real_joints(bn_dataset_dir) -> list[np.ndarray]:
    return [np.load(p).astype(np.float64) for p in sorted((bn_dataset_dir / "new_joints").glob("*.npy"))]


def test_real_motion_is_left_as_it_is(real_joints, humanml3d_sample_dir):
    clips = real_joints + [np.load(p) for p in sorted((humanml3d_sample_dir / "new_joints").glob("*.npy"))]
    for joints in clips:
        assert np.abs(conform_to_skeleton(joints) - joints).max() < 1e-3  # float32 files, straight knees


def test_stretched_bones_get_the_skeleton_and_hands_and_feet_stay(real_joints):
    rng = np.random.default_rng(0)
    for joints in real_joints:
        # what a decoder off the data manifold produces: every joint drifts a few centimetres on its own
        drifted = joints + rng.normal(0.0, 0.02, joints.shape)
        conformed = conform_to_skeleton(drifted)
        assert np.abs(bone_lengths(conformed) - TARGET_BONE_LENGTHS[1:]).max() < 1e-9
        assert np.array_equal(conformed[:, 0], drifted[:, 0])  # the pelvis never moves
        ends = [end for _, _, end in LIMBS]
        # ankles and wrists stay where they were drifted to (unless out of reach: rarely, by millimetres)
        assert np.median(np.linalg.norm(conformed[:, ends] - drifted[:, ends], axis=-1)) < 1e-6
        assert np.abs(bone_lengths(drifted) - TARGET_BONE_LENGTHS[1:]).max() > 0.03


def test_knees_bend_the_way_they_were_decoded(real_joints):
    joints = real_joints[0]
    stretched = joints.copy()
    stretched[:, 1:] = joints[:, :1] + 1.1 * (joints[:, 1:] - joints[:, :1])  # a body 10 % too big
    conformed = conform_to_skeleton(stretched)
    for upper, middle, end in LIMBS:
        axis = conformed[:, end] - conformed[:, upper]
        bend_in = np.cross(axis, stretched[:, middle] - stretched[:, upper])
        bend_out = np.cross(axis, conformed[:, middle] - conformed[:, upper])
        bent = np.linalg.norm(bend_in, axis=-1) > 1e-3
        assert (np.sum(bend_in * bend_out, -1)[bent] > 0).all()


def _knee_ahead(joints: np.ndarray, hip: int, knee: int, ankle: int) -> np.ndarray:
    """(T,) how far (m) the knee is in front of the hip-ankle line, along the body's front."""
    from motionlcm.data.skeleton import body_front

    u = joints[:, ankle] - joints[:, hip]
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    b = joints[:, knee] - joints[:, hip]
    return np.sum((b - np.sum(b * u, -1, keepdims=True) * u) * body_front(joints), -1)


def test_knees_never_bend_backwards(real_joints):
    """A blend or a decoder can put a knee on the hip-ankle line or behind it; the law of cosines would then
    bend the leg backwards, or swing the knee through the leg from one frame to the next as the decoded knee
    crosses the line (a 0.4 m knee jump seen at a continuation's seam). Real knees are all in front."""
    for joints in real_joints:
        for hip, knee, ankle in LIMBS[:2]:
            assert (_knee_ahead(joints, hip, knee, ankle) > -1e-3).all()
            broken = joints.copy()
            u = joints[:, ankle] - joints[:, hip]
            u /= np.linalg.norm(u, axis=-1, keepdims=True)
            b = joints[:, knee] - joints[:, hip]
            across = b - np.sum(b * u, -1, keepdims=True) * u
            broken[:, knee] -= 2.0 * across  # the knee mirrored behind the line
            broken[:, ankle] = joints[:, hip] + 0.9 * (joints[:, ankle] - joints[:, hip])  # and bent more
            assert (_knee_ahead(broken, hip, knee, ankle) < 1e-3).all()
            conformed = conform_to_skeleton(broken)
            assert (_knee_ahead(conformed, hip, knee, ankle) > -KNEE_BEHIND).all()
            assert np.median(_knee_ahead(conformed, hip, knee, ankle)) > 0.03


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 22, 3\)"):
        conform_to_skeleton(np.zeros((4, 21, 3)))
    with pytest.raises(ValueError, match="T, 22, 3"):
        conform_to_skeleton(np.zeros((22, 3)))  # one pose: give it a time axis


def test_a_conformed_motion_is_one_rigid_rig_that_bvh_reproduces(real_joints):
    """The BVH export fits one rigid skeleton: on drifted joints it is centimetres off, on conformed ones
    exact; the pelvis's and spine3's children keep one configuration (as in every real clip)."""
    from motionlcm.data.skeleton import BRANCHES
    from motionlcm.export.bvh_export import bvh_to_joints, joints_to_bvh

    rng = np.random.default_rng(1)
    joints = real_joints[1]
    drifted = joints + rng.normal(0.0, 0.02, joints.shape)
    conformed = conform_to_skeleton(drifted)
    assert np.linalg.norm(bvh_to_joints(joints_to_bvh(conformed)) - conformed, axis=-1).max() < 1e-4
    for joint, children in BRANCHES:
        offsets = conformed[:, list(children)] - conformed[:, [joint]]
        gram = np.einsum("tci,tdi->tcd", offsets, offsets)  # lengths and angles of the piece, per frame
        assert np.abs(gram - gram[0]).max() < 1e-9
