"""Control metrics on constructed cases (official cm.py definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.eval.control import control_errors, point_errors


def motion(frames=20):
    rng = np.random.default_rng(0)
    return rng.normal(size=(frames, 22, 3))


def test_a_perfect_hint_has_zero_error():
    joints = motion()
    mask = np.zeros_like(joints, dtype=bool)
    mask[:, 0] = True
    scores = control_errors([point_errors(joints, joints, mask)])
    assert scores == {"traj_fail_20cm": 0.0, "loc_fail_20cm": 0.0, "traj_fail_50cm": 0.0, "loc_fail_50cm": 0.0,
                      "avg_err_m": 0.0}  # fmt: skip


def test_a_60cm_offset_fails_at_50cm_and_a_30cm_one_only_at_20cm():
    joints = motion()
    mask = np.zeros_like(joints, dtype=bool)
    mask[[2, 7], 0] = True
    far = joints.copy()
    far[2, 0, 0] += 0.6
    near = joints.copy()
    near[7, 0, 2] += 0.3
    scores = control_errors([point_errors(joints, far, mask), point_errors(joints, near, mask)])
    assert scores["traj_fail_50cm"] == 0.5 and scores["traj_fail_20cm"] == 1.0
    assert scores["loc_fail_50cm"] == 0.25 and scores["loc_fail_20cm"] == 0.5
    assert scores["avg_err_m"] == pytest.approx(0.9 / 4)


def test_free_axes_do_not_count():
    joints = motion()
    hints = joints.copy()
    hints[:, 0, 1] += 5.0  # height off by 5 m, but free
    mask = np.zeros_like(joints, dtype=bool)
    mask[:, 0, [0, 2]] = True
    assert point_errors(joints, hints, mask).max() == 0.0


def test_no_controlled_point_is_an_error():
    joints = motion()
    with pytest.raises(ValueError, match="at least one"):
        control_errors([point_errors(joints, joints, np.zeros_like(joints, dtype=bool))])


def test_seam_metrics_on_constructed_motions():
    """A motion that moves 1 cm per frame with one 30 cm jump right after a 10-frame prefix: the seam is the
    jump; the same jump 15 frames later is outside the seam window."""
    from motionlcm.eval.control import frame_jumps, seam_jump, seam_scores

    walk = np.zeros((40, 22, 3))
    walk[:, :, 2] = 0.01 * np.arange(40)[:, None]
    jumped = walk.copy()
    jumped[10:, :, 2] += 0.3
    late = walk.copy()
    late[25:, :, 2] += 0.3
    assert np.allclose(frame_jumps(walk), 0.01)
    assert seam_jump(jumped, 10) == pytest.approx(0.31) and seam_jump(late, 10) == pytest.approx(0.01)
    scores = seam_scores([seam_jump(jumped, 10), seam_jump(late, 10)], [frame_jumps(walk)], [0.01, 0.5])
    assert scores["real_jump_p95_m"] == pytest.approx(0.01)
    assert scores["seam_fail"] == 0.5 and scores["seam_ratio_max"] == pytest.approx(31)
    assert scores["real_seam_fail"] == 0.5
