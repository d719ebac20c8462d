"""Temporal control end to end on the tiny models: a controller trained for spatial control and prefixes at once
(started from another controller's weights), found for prefixes; `continue_motion` keeps a real clip's first
frames exactly, in the clip's own world frame, and refuses what it cannot do."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.data.continuation import rotate_y
from motionlcm.data.features import features_to_joints
from tests.conftest import REPO


@pytest.fixture(scope="module")
def model_dir(continuation_model_dir):
    return continuation_model_dir


@pytest.fixture(scope="module")
def walk(bn_dataset_dir):
    """A real walk's joints, moved to somewhere else on the floor and turned (a prefix from a scene)."""
    features = np.load(bn_dataset_dir / "new_joint_vecs" / "dataset-2_walk_normal_001.npy")
    joints = features_to_joints(features).astype(np.float64)
    return (rotate_y(joints, 2.0) + np.array([3.0, 0.0, -1.0])).astype(np.float32)


def test_a_mixed_controller_serves_spatial_control_and_prefixes(model_dir):
    from motionlcm.models.control_folder import load_control_folder
    from motionlcm.pipeline import MotionLCM

    cont = load_control_folder(model_dir / "control" / "cont")
    assert cont.spatial and cont.temporal and cont.joints == (0, 10, 11, 15, 20, 21)
    assert cont.prefix_joints == tuple(range(22)) and cont.meta["steps"] == 4
    pipe = MotionLCM.from_pretrained(model_dir, text_encoder_path=None)
    assert pipe.controller_for({0}).name == "pelvis"  # the specialised one first
    assert pipe.controller_for({20}).name == "cont"
    assert pipe.controller_for(set(range(22)), temporal=True).name == "cont"
    with pytest.raises(ValueError, match="no controller controls any frames of left_knee"):
        pipe.controller_for({4})


def test_init_from_must_fit_the_config(model_dir, bn_dataset_dir, tmp_path):
    from motionlcm.config import load_config
    from motionlcm.train.run import train

    overrides = [f"data.root={bn_dataset_dir}", f"output_dir={tmp_path / 'run'}", f"model_dir={model_dir}",
                 "trajectory_encoder.arch=conv", f"control.init_from={model_dir / 'control' / 'pelvis'}"]  # fmt: skip
    with pytest.raises(ValueError, match=r"control\.init_from .*pelvis: its trajectory encoder does not fit"):
        train("control", load_config(REPO / "configs" / "tiny" / "control.yaml", overrides), progress=False)


@pytest.mark.parametrize("method", ["controlnet", "clt"])
def test_continue_motion_keeps_the_prefix_exactly_in_its_world_frame(model_dir, walk, method):
    from motionlcm.pipeline import MotionLCM

    pipe = MotionLCM.from_pretrained(model_dir, text_encoder_path=None)
    prefix = walk[:12]
    motions = pipe.continue_motion(
        ["a person walks", "a person turns"], prefix, frames=[40, 30], seed=0, control_method=method, clt_steps=2
    )
    for motion, frames in zip(motions, (40, 30), strict=True):
        assert motion.frames == frames and np.array_equal(motion.joints[:12], prefix)
        step = np.linalg.norm(motion.joints[12] - motion.joints[11], axis=-1).max()
        assert step < 0.5  # in the prefix's world frame, not back at the origin
        record = motion.settings["continuation"]
        assert record["prefix_frames"] == 12 and record["controller"] == ("cont" if method != "clt" else None)
        assert np.isfinite(record["model_prefix_err_m"]) and len(record["prefix_sha256"]) == 64


def test_continue_motion_refusals(model_dir, walk):
    from motionlcm.motion import Motion
    from motionlcm.pipeline import MotionLCM

    pipe = MotionLCM.from_pretrained(model_dir, text_encoder_path=None)
    with pytest.raises(ValueError, match="prefix: 40 frames leave nothing to generate in a 40-frame motion"):
        pipe.continue_motion("walk", walk[:40], frames=40)
    with pytest.raises(ValueError, match=r"prefix: expected joints of shape \(K, 22, 3\)"):
        pipe.continue_motion("walk", walk[:10, :21], frames=40)
    with pytest.raises(ValueError, match="prefix: a motion on the 22-joint SMPL skeleton is needed, got 3 joints"):
        pipe.continue_motion("walk", Motion(np.zeros((10, 3, 3), np.float32), parents=[-1, 0, 1]), frames=40)
    with pytest.raises(ValueError, match=r"prefix: got 1 prefixes for 2 prompts"):
        pipe.continue_motion(["walk", "run"], [walk[:10]], frames=40)
