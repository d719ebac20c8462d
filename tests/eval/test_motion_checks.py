"""The prompt checks of motionlcm/eval/motion_checks.py on real Bandai-Namco clips, their mirrors and their
frozen versions: real motions pass the check of their own label, fail the other side's, and frozen ones fail."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.data.features import features_to_joints
from motionlcm.eval import motion_checks
from motionlcm.eval.kinematics import freeze_motion


@pytest.fixture(scope="module")
def clips(bn_dataset_dir):
    return {
        p.stem: features_to_joints(np.load(p).astype(np.float64))
        for p in sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy"))
    }


@pytest.mark.parametrize(
    "name", ["dataset-2_walk_normal_001", "dataset-2_run_active_001", "dataset-2_walk-turn-left_normal_001"]
)
def test_real_locomotion_steps_and_its_frozen_version_does_not(clips, name):
    result = motion_checks.steps(clips[name])
    assert result["ok"] and result["alternations"] >= 2, result
    assert not motion_checks.steps(freeze_motion(clips[name]))["ok"]


@pytest.mark.parametrize("name, kind", [("dataset-2_walk_normal_001", "walk"), ("dataset-2_run_active_001", "run")])
def test_real_clips_keep_their_pace_and_hurried_ones_do_not(clips, name, kind):
    real = clips[name]
    assert motion_checks.pace(real, *motion_checks.PACE[kind])["ok"]
    hurried = real.copy()  # the same limbs carried 2.5 times as far: a jog at a sprinter's pace
    hurried[:, :, [0, 2]] += 1.5 * (real[:, :1, [0, 2]] - real[:1, :1, [0, 2]])
    result = motion_checks.pace(hurried, *motion_checks.PACE[kind])
    assert not result["ok"] and result["pace"] == pytest.approx(2.5 * motion_checks.pace(real, 0, 9)["pace"])


def test_standing_gestures_do_not_step(clips):
    assert not motion_checks.steps(clips["dataset-2_wave-left-hand_elderly_001"])["ok"]


def test_a_real_left_wave_passes_left_fails_right_and_frozen(clips):
    wave, mirrored = clips["dataset-2_wave-left-hand_elderly_001"], clips["Mdataset-2_wave-left-hand_elderly_001"]
    assert motion_checks.waves(wave, "left")["ok"]
    assert not motion_checks.waves(wave, "right")["ok"]
    assert motion_checks.waves(mirrored, "right")["ok"] and not motion_checks.waves(mirrored, "left")["ok"]
    assert not motion_checks.waves(freeze_motion(wave), "left")["ok"]


def test_a_real_right_raise_passes_right_fails_left_and_frozen(clips):
    raise_ = clips["dataset-2_raise-up-right-hand_normal_001"]
    assert motion_checks.raises(raise_, "right")["ok"]
    assert not motion_checks.raises(raise_, "left")["ok"]
    assert not motion_checks.raises(raise_, "both")["ok"]
    assert motion_checks.raises(clips["Mdataset-2_raise-up-right-hand_normal_001"], "left")["ok"]
    assert not motion_checks.raises(freeze_motion(raise_), "right")["ok"]


def test_turn_sign_is_left_positive_and_mirrors_flip_it(clips):
    left = motion_checks.turn_degrees(clips["dataset-2_walk-turn-left_normal_001"])
    mirrored = motion_checks.turn_degrees(clips["Mdataset-2_walk-turn-left_normal_001"])
    straight = motion_checks.turn_degrees(clips["dataset-2_walk_normal_001"])
    assert left > 45 and mirrored < -45 and abs(left + mirrored) < 10
    assert abs(straight) < 20


def test_a_joint_oscillation_is_counted_once_per_reversal():
    t = np.arange(80) / 20.0
    assert motion_checks._reversals(0.3 * np.sin(2 * np.pi * 1.0 * t), 0.025) == 8  # extrema at 0.25, 0.75, ..., 3.75 s
    assert motion_checks._reversals(0.001 * np.sin(2 * np.pi * 1.0 * t), 0.025) == 0
