"""The shipped pelvis controller (checkpoints/bandai-namco/control/pelvis) steers the shipped student along a
real motion-capture path without slowing its limbs, and warping then meets the path exactly."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.data.features import features_to_joints
from motionlcm.data.hints import hints_from_array, point_errors
from motionlcm.eval.kinematics import relative_joint_speed
from tests.conftest import REPO

SHIPPED = REPO / "checkpoints" / "bandai-namco"


@pytest.fixture(scope="module")
def pipe():
    from motionlcm.pipeline import MotionLCM

    if not (SHIPPED / "control" / "pelvis" / "control.json").is_file():
        pytest.fail("the shipped pelvis controller is missing (datasets/bandai-namco/train.sh)")
    return MotionLCM.from_pretrained(SHIPPED)


@pytest.fixture(scope="module")
def walks(bn_dataset_dir):
    """(caption, joints) of the fixture import's walking clips (real Bandai-Namco capture)."""
    clips = []
    for path in sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy")):
        text = (bn_dataset_dir / "texts" / f"{path.stem}.txt").read_text().split("#")[0]
        if "walk" in text:
            clips.append((text, features_to_joints(np.load(path))[:120].astype(np.float32)))
    assert clips, "the fixture import has no walking clip"
    return clips


def test_the_controlnet_follows_a_real_path_and_keeps_the_limbs_moving(pipe, walks):
    for text, joints in walks:
        hints = np.full_like(joints, np.nan)
        hints[:, 0] = joints[:, 0]
        h = hints_from_array(hints)
        free = pipe(text, frames=len(joints), seed=0, warp=False)[0]
        steered = pipe(text, control=hints, seed=0, warp=False)[0]
        free_error = point_errors(free.joints, h.values, h.mask).mean()
        steered_error = point_errors(steered.joints, h.values, h.mask).mean()
        assert steered_error < 0.7 * free_error, (text, free_error, steered_error)
        assert relative_joint_speed(steered.joints) > 0.7 * relative_joint_speed(joints), text
        warped = pipe(text, control=hints, seed=0)[0]
        assert warped.settings["control"]["max_err_m"] < 0.01
