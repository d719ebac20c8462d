"""Motion warping onto control targets, on a real HumanML3D clip: targets met, bones kept, the rest untouched."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.data.features import features_to_joints
from motionlcm.data.motion_warp import ROOT_TOLERANCE, local_offsets, root_offsets, warp_to_hints
from motionlcm.data.skeleton import PARENTS


@pytest.fixture(scope="module")
def joints(humanml3d_sample_dir):
    return features_to_joints(np.load(humanml3d_sample_dir / "new_joint_vecs" / "000000.npy"))[:80]


def bones(j):
    return np.linalg.norm(j[:, 1:] - j[:, list(PARENTS[1:])], axis=-1)


def test_offset_curves():
    residual = np.zeros(10)
    residual[[4, 8]] = [1.0, 3.0]
    controlled = np.zeros(10, bool)
    controlled[[4, 8]] = True
    np.testing.assert_allclose(root_offsets(residual, controlled), [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3])
    local = local_offsets(residual, controlled, reach=3)
    assert local[4] == 1.0 and local[8] == 3.0 and local[0] == 0.0
    assert 0 < local[3] < 1 and local[9] < 3
    assert not root_offsets(residual, np.zeros(10, bool)).any()


def test_pelvis_keyframes_hold_exactly_and_the_start_stays(joints):
    hints, mask = np.zeros_like(joints), np.zeros(joints.shape, bool)
    hints[40, 0] = joints[40, 0] + [0.3, 0.0, -0.2]
    hints[70, 0] = joints[70, 0] + [-0.1, 0.05, 0.4]
    mask[[40, 70], 0] = True
    out = warp_to_hints(joints, hints, mask, root_smooth=0)
    np.testing.assert_allclose(out[[40, 70], 0], hints[[40, 70], 0], atol=1e-9)
    np.testing.assert_allclose(out[0], joints[0], atol=1e-9)  # frame 0 not controlled: not moved
    np.testing.assert_allclose(bones(out), bones(joints), atol=1e-9)  # a translation per frame
    smoothed = warp_to_hints(joints, hints, mask)  # the default: a smoothed offset, within the tolerance
    assert np.abs(smoothed[[40, 70], 0] - hints[[40, 70], 0]).max() <= ROOT_TOLERANCE + 1e-9
    np.testing.assert_allclose(bones(smoothed), bones(joints), atol=1e-9)


def test_smoothing_keeps_a_dense_path_but_not_its_foreign_bob(joints):
    """A dense pelvis path from another capture: the same route, with a 5 cm vertical bob at twice the stride
    frequency of this clip's legs. Exact warping forces the bob onto the body; smoothing follows the route
    and leaves the bob (within the tolerance)."""
    t = np.arange(len(joints))
    hints, mask = joints.copy(), np.zeros(joints.shape, bool)
    hints[:, 0, 1] += 0.05 * np.sin(2 * np.pi * t / 6)  # a 0.3 s bob the legs do not make
    hints[:, 0, [0, 2]] += np.linspace(0, 0.5, len(joints))[:, None]  # and a slow drift of the route
    mask[:, 0] = True
    exact = warp_to_hints(joints, hints, mask, root_smooth=0)
    smooth = warp_to_hints(joints, hints, mask)
    np.testing.assert_allclose(exact[:, 0], hints[:, 0], atol=1e-9)
    assert np.abs(smooth[:, 0] - hints[:, 0]).max() <= ROOT_TOLERANCE + 1e-9
    np.testing.assert_allclose(smooth[-30:-8, 0, [0, 2]], hints[-30:-8, 0, [0, 2]], atol=0.01)  # the route
    bob = np.abs(np.diff(smooth[:, 0, 1] - joints[:, 0, 1], 2)).max()
    assert bob < 0.25 * np.abs(np.diff(exact[:, 0, 1] - joints[:, 0, 1], 2)).max()


def test_a_floor_path_leaves_the_height_alone(joints):
    hints, mask = joints.copy(), np.zeros(joints.shape, bool)
    hints[:, 0, [0, 2]] += 0.1
    hints[:, 0, 1] += 5.0
    mask[:, 0, [0, 2]] = True
    out = warp_to_hints(joints, hints, mask)
    np.testing.assert_allclose(out[:, 0, 1], joints[:, 0, 1])
    np.testing.assert_allclose(out[:, 0, [0, 2]], hints[:, 0, [0, 2]], atol=1e-9)  # a constant offset


def test_a_wrist_keyframe_is_reached_by_the_arm_and_far_frames_are_untouched(joints):
    hints, mask = np.zeros_like(joints), np.zeros(joints.shape, bool)
    hints[40, 21] = joints[40, 21] + [0.0, 0.15, 0.1]
    mask[40, 21] = True
    out = warp_to_hints(joints, hints, mask)
    np.testing.assert_allclose(out[40, 21], hints[40, 21], atol=1e-6)
    arm = np.linalg.norm(out[:, [19, 21]] - out[:, [17, 19]], axis=-1)
    np.testing.assert_allclose(arm[35:46], arm[35:46].mean(0, keepdims=True).repeat(11, 0), atol=1e-6)
    np.testing.assert_allclose(out[:25], joints[:25])  # beyond the 10-frame reach: unchanged
    assert np.abs(out[:, :17] - joints[:, :17]).max() == 0  # only the right arm moved


def test_an_unreachable_target_is_approached_along_the_limb(joints):
    hints, mask = np.zeros_like(joints), np.zeros(joints.shape, bool)
    hints[40, 20] = joints[40, 16] + [0.0, 0.0, 3.0]  # 3 m in front of the shoulder
    mask[40, 20] = True
    out = warp_to_hints(joints, hints, mask)
    assert np.linalg.norm(out[40, 20] - hints[40, 20]) < np.linalg.norm(joints[40, 20] - hints[40, 20])
    assert np.isfinite(out).all()
