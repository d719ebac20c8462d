"""Kinematic metrics (motionlcm.eval.kinematics) on constructed motions with known answers and on the real
Bandai-Namco fixture clips: a pose sliding over the floor, skating thresholds, analytic speed and jerk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motionlcm.data.features import features_to_joints
from motionlcm.eval.kinematics import (
    ankle_height_range,
    foot_skating_ratio,
    freeze_motion,
    jitter,
    kinematic_summary,
    relative_joint_speed,
    root_speed,
)

FPS = 20.0
FEET = (10, 11)
WALK = "dataset-2_walk_normal_001"  # 63 frames of straight walking
TURN_LEFT = "dataset-2_walk-turn-left_normal_001"  # turns about +90 degrees (left, seen from above)
TURN_RIGHT = "Mdataset-2_walk-turn-left_normal_001"  # its mirror: about -90 degrees
STAND = "dataset-2_raise-up-right-hand_normal_001"  # stands in place, raises a hand
RUN = "dataset-2_run_active_001"
WAVE = "dataset-2_wave-left-hand_elderly_001"  # stands in place, waves


@pytest.fixture(scope="module")
def clips(bn_dataset_dir: Path) -> dict[str, np.ndarray]:
    """Joints (T, 22, 3) of the 12 imported fixture clips, recovered from their features as the protocol does."""
    return {
        p.stem: features_to_joints(np.load(p).astype(np.float64))
        for p in sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy"))
    }


# ---------------------------------------------------------------------------------------------
# Helpers written independently of the module under test
# ---------------------------------------------------------------------------------------------


def _facing(joints: np.ndarray) -> np.ndarray:
    """(T,) facing angle about +y (counter-clockwise seen from above, radians, unwrapped) from the hips
    and shoulders: forward = across x up with across = (left - right), joints 1/2 and 16/17."""
    across = (joints[:, 1] - joints[:, 2]) + (joints[:, 16] - joints[:, 17])
    forward_x, forward_z = -across[:, 2], across[:, 0]
    return np.unwrap(np.arctan2(forward_x, forward_z))


def _pairwise(joints: np.ndarray) -> np.ndarray:
    """(T, 22, 22) distances between every pair of joints in each frame."""
    return np.linalg.norm(joints[:, :, None] - joints[:, None, :], axis=-1)


def _feet_only(heights: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(T, 22, 3): pelvis at 1 m, both feet at the given heights (T, 2) and positions z (T, 2), x apart."""
    joints = np.zeros((len(z), 22, 3))
    joints[:, 0, 1] = 1.0
    joints[:, FEET[0], 0], joints[:, FEET[1], 0] = 0.1, -0.1
    joints[:, FEET, 1] = heights
    joints[:, FEET, 2] = z
    return joints


def _sliding_pose(clips: dict[str, np.ndarray], speed: float = 1.5, frames: int = 40) -> np.ndarray:
    """The walk's first pose, lowest foot on the floor, translated along +z at `speed` m/s."""
    pose = clips[WALK][0].copy()
    pose[:, 1] -= pose[list(FEET), 1].min()
    t = np.arange(frames) / FPS
    return pose[None] + np.stack([np.zeros_like(t), np.zeros_like(t), speed * t], axis=-1)[:, None]


# ---------------------------------------------------------------------------------------------
# A pose sliding over the floor versus real walking
# ---------------------------------------------------------------------------------------------


def test_a_pose_sliding_over_the_floor_has_no_relative_speed_and_skates(clips):
    sliding = _sliding_pose(clips)
    assert relative_joint_speed(sliding) == pytest.approx(0.0, abs=1e-9)
    assert foot_skating_ratio(sliding) > 0.9
    assert jitter(sliding) == pytest.approx(0.0, abs=1e-9)  # constant velocity


def test_a_real_walk_moves_its_joints_and_plants_its_feet(clips):
    for name in (WALK, "M" + WALK, TURN_LEFT, TURN_RIGHT):
        summary = kinematic_summary(clips[name])
        assert summary["relative_speed"] > 0.2, name
        assert summary["skating"] < 0.3, name
        assert summary["jitter"] > 0, name


# ---------------------------------------------------------------------------------------------
# freeze_motion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [WALK, RUN, TURN_LEFT, STAND])
def test_frozen_motion_keeps_the_root_and_the_first_pose_rigidly(clips, name):
    joints = clips[name]
    frozen = freeze_motion(joints)
    assert frozen.shape == joints.shape
    np.testing.assert_array_equal(frozen[:, 0], joints[:, 0])  # the pelvis trajectory, exactly
    np.testing.assert_allclose(frozen[0], joints[0], atol=1e-12)
    distances = _pairwise(frozen)
    np.testing.assert_allclose(distances, np.broadcast_to(distances[0], distances.shape), atol=1e-9)
    relative = frozen - frozen[:, :1]  # only a turn about the vertical: heights above the pelvis are frame 0's
    np.testing.assert_allclose(relative[..., 1], np.broadcast_to(relative[0, :, 1], relative.shape[:2]), atol=1e-12)


@pytest.mark.parametrize("name", [WALK, RUN])
def test_frozen_motion_of_a_straight_clip_has_almost_no_relative_speed(clips, name):
    joints = clips[name]
    assert relative_joint_speed(freeze_motion(joints)) < 0.1 * relative_joint_speed(joints)


@pytest.mark.parametrize("name", [TURN_LEFT, TURN_RIGHT])
def test_frozen_motion_turns_with_the_clip(clips, name):
    joints = clips[name]
    frozen = freeze_motion(joints)
    facing = _facing(joints)
    turn = np.degrees(facing[-10:].mean() - facing[:10].mean())  # averaged over 0.5 s: no stride sway
    frozen_facing = _facing(frozen)
    frozen_turn = np.degrees(frozen_facing[-1] - frozen_facing[0])
    assert abs(turn) > 60  # the fixture does turn (left +, its mirror -)
    assert frozen_turn == pytest.approx(turn, abs=15)
    # A turn is the only relative motion left: less than the walk's, but not zero.
    assert 0 < relative_joint_speed(frozen) < 0.2 * relative_joint_speed(joints)


def test_frozen_motion_of_a_progressively_rotated_standing_clip_turns(clips):
    joints = clips[WAVE]  # 59 frames standing: still for 15 frames, turns 90 degrees, still for 15 frames
    hold = 15
    angle = np.clip((np.arange(len(joints)) - hold) / (len(joints) - 1 - 2 * hold), 0, 1) * np.pi / 2
    pelvis = joints[:, :1]
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y, z = np.moveaxis(joints - pelvis, -1, 0)
    turned = np.stack([c * x + s * z, y, -s * x + c * z], axis=-1) + pelvis  # counter-clockwise from above
    facing = _facing(turned)
    assert np.degrees(facing[-1] - facing[0]) == pytest.approx(90, abs=3)  # the helper's sign convention
    frozen_facing = _facing(freeze_motion(turned))
    # The heading is smoothed over 0.5 s, so a turn that is still going on at an end would lag there;
    # with the still spans at both ends the frozen pose turns the whole way.
    assert np.degrees(frozen_facing[-1] - frozen_facing[0]) == pytest.approx(90, abs=5)
    assert np.degrees(np.abs(frozen_facing[: hold // 2] - frozen_facing[0])).max() < 5  # still at the start


# ---------------------------------------------------------------------------------------------
# relative_joint_speed
# ---------------------------------------------------------------------------------------------


def test_relative_speed_of_one_oscillating_joint_is_analytic(clips):
    amplitude, frequency, seconds = 0.2, 0.5, 4.0  # two whole periods, 40 samples each
    t = np.arange(int(seconds * FPS) + 1) / FPS
    joints = np.broadcast_to(clips[STAND][0], (len(t), 22, 3)).copy()  # a fixed real pose
    joints[:, 20, 0] += amplitude * np.sin(2 * np.pi * frequency * t)  # the left wrist sways along x
    # mean |d/dt A sin(wt)| over whole periods = A w 2/pi = 4 A f; the mean runs over all 22 joints
    expected = 4 * amplitude * frequency / 22
    assert relative_joint_speed(joints) == pytest.approx(expected, rel=0.02)
    assert relative_joint_speed(joints, fps=40.0) == pytest.approx(2 * relative_joint_speed(joints), rel=1e-12)


def test_relative_speed_ignores_any_global_translation(clips):
    rng = np.random.default_rng(0)
    joints = clips[WALK]
    path = np.cumsum(rng.normal(scale=0.3, size=(len(joints), 1, 3)), axis=0)  # an erratic trajectory
    assert relative_joint_speed(joints + path) == pytest.approx(relative_joint_speed(joints), abs=1e-9)


# ---------------------------------------------------------------------------------------------
# foot_skating_ratio
# ---------------------------------------------------------------------------------------------


def _gliding_feet(height: float, speed: float, frames: int = 11) -> np.ndarray:
    z = speed * np.arange(frames) / FPS
    return _feet_only(np.full((frames, 2), height), np.stack([z, z], axis=-1))


def test_root_speed_is_the_pace_of_the_body_and_sees_a_hurried_run(clips):
    walk, run, stand = root_speed(clips[WALK]), root_speed(clips[RUN]), root_speed(clips[STAND])
    assert 0.8 < walk < 1.6 and 2.5 < run < 4.5 and stand < 0.2  # m/s
    hurried = clips[RUN].copy()  # the same legs, the body carried twice as far
    hurried[:, :, [0, 2]] += clips[RUN][:, :1, [0, 2]] - clips[RUN][:1, :1, [0, 2]]
    assert root_speed(hurried) == pytest.approx(2 * run)
    assert relative_joint_speed(hurried) == pytest.approx(relative_joint_speed(clips[RUN]))  # blind to it


def test_fast_clips_root_speed_ratio_pairs_the_fastest_real_clips_with_their_generations():
    from motionlcm.eval.protocol import KINEMATIC_KEYS, kinematic_scores

    root = KINEMATIC_KEYS.index("root_speed")
    real = np.zeros((20, len(KINEMATIC_KEYS)))
    real[:, root] = np.r_[np.full(18, 1.0), 3.0, 3.0]  # two runs among walks
    gen = real.copy()
    gen[18:, root] = 6.0  # the runs carried at twice their pace
    scores = kinematic_scores(gen, real)
    assert scores["fast_root_speed_ratio"] == pytest.approx(2.0)
    assert scores["root_speed_ratio"] == pytest.approx((18 + 12) / (18 + 6))  # the mean barely shows it


def test_feet_above_five_centimetres_never_skate():
    assert foot_skating_ratio(_gliding_feet(0.051, 5.0)) == 0.0
    assert foot_skating_ratio(_gliding_feet(0.049, 5.0)) == 1.0


def test_the_skating_speed_threshold_is_half_a_metre_per_second():
    assert foot_skating_ratio(_gliding_feet(0.02, 0.4)) == 0.0
    assert foot_skating_ratio(_gliding_feet(0.02, 0.6)) == 1.0
    assert foot_skating_ratio(_gliding_feet(0.02, 0.6), fps=10.0) == 0.0  # 0.3 m/s at 10 fps


def test_only_horizontal_foot_speed_counts():
    heights = np.tile([[0.0], [0.045]], (6, 2))  # both feet bob 4.5 cm per frame (0.9 m/s vertically)
    assert foot_skating_ratio(_feet_only(heights, np.zeros((12, 2)))) == 0.0


def test_a_foot_must_be_low_in_both_frames_of_a_pair():
    frames = 12
    z = 1.0 * np.arange(frames) / FPS  # 1 m/s
    alternating = np.tile([[0.02], [0.08]], (frames // 2, 2))  # low in every other frame only
    assert foot_skating_ratio(_feet_only(alternating, np.stack([z, z], axis=-1))) == 0.0
    heights = np.full((3, 2), 0.2)
    heights[:2, 0] = 0.02  # the left foot low in frames 0 and 1, lifted in frame 2
    feet_z = np.stack([z[:3], z[:3]], axis=-1)
    assert foot_skating_ratio(_feet_only(heights, feet_z)) == pytest.approx(0.5)  # pair (0, 1) only


def test_one_skating_foot_is_enough_for_a_frame_pair():
    frames = 9
    z = np.zeros((frames, 2))
    z[:, 1] = 1.0 * np.arange(frames) / FPS  # right foot glides, left foot planted
    assert foot_skating_ratio(_feet_only(np.full((frames, 2), 0.01), z)) == 1.0
    z[4:, 1] = z[4, 1]  # the right foot stops after frame 4: pairs 0-3 skate, 4-7 do not
    assert foot_skating_ratio(_feet_only(np.full((frames, 2), 0.01), z)) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# jitter
# ---------------------------------------------------------------------------------------------


def test_constant_velocity_has_no_jitter(clips):
    t = np.arange(30)[:, None, None] / FPS
    joints = clips[WALK][0][None] + np.array([0.7, -0.1, 1.3]) * t
    assert jitter(joints) == pytest.approx(0.0, abs=1e-9)


def test_a_cubic_trajectory_has_its_analytic_jerk(clips):
    c = np.array([0.3, -0.2, 0.6])  # x(t) = c t^3: jerk 6 c
    t = np.arange(40)[:, None, None] / FPS
    joints = clips[STAND][0][None] + c * t**3 + 0.5 * t**2
    assert jitter(joints) == pytest.approx(6 * np.linalg.norm(c), rel=1e-6)
    one_joint = np.broadcast_to(clips[STAND][0], joints.shape).copy()
    one_joint[:, 5] += (c * t**3)[:, 0]
    assert jitter(one_joint) == pytest.approx(6 * np.linalg.norm(c) / 22, rel=1e-6)  # mean over 22 joints


def test_high_frequency_noise_raises_jitter(clips):
    joints = clips[WALK]
    noisy = joints + np.random.default_rng(1).normal(scale=0.005, size=joints.shape)  # 5 mm
    assert jitter(noisy) > 2 * jitter(joints)
    smooth_offset = joints + 0.3  # a constant shift changes nothing
    assert jitter(smooth_offset) == pytest.approx(jitter(joints), rel=1e-9)


# ---------------------------------------------------------------------------------------------
# ankle_height_range, short clips, shapes
# ---------------------------------------------------------------------------------------------


def test_ankle_height_range_sees_steps_but_not_a_frozen_standing_pose(clips):
    left, right = ankle_height_range(clips[WALK])
    assert left > 0.05 and right > 0.05
    assert max(ankle_height_range(freeze_motion(clips[STAND]))) < 0.01
    assert max(ankle_height_range(_sliding_pose(clips))) == pytest.approx(0.0, abs=1e-12)


def test_short_clips_score_zero(clips):
    pose = clips[WALK][:1]
    assert relative_joint_speed(pose) == foot_skating_ratio(pose) == jitter(pose) == 0.0
    assert jitter(clips[RUN][:3]) == 0.0  # a third difference needs four frames
    assert jitter(clips[RUN][:4]) > 0.0
    np.testing.assert_allclose(freeze_motion(pose), pose, atol=1e-12)


@pytest.mark.parametrize("shape", [(10, 22), (10, 21, 3), (10, 22, 2), (22, 3), (2, 10, 22, 3), (0, 22, 3)])
@pytest.mark.parametrize(
    "fn", [relative_joint_speed, foot_skating_ratio, jitter, ankle_height_range, kinematic_summary, freeze_motion]
)
def test_bad_shapes_raise_value_error(fn, shape):
    with pytest.raises(ValueError, match="joints"):
        fn(np.zeros(shape))
