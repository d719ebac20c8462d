"""The shipped student carries the body at the pace its legs and its prompt ask for: generated from the captions of
real Bandai-Namco walks and runs, at their lengths, the body travels at about the real clip's speed. The student
distilled on the official guidance range (scales 6-16) failed this: its runs went twice their pace."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.data.features import features_to_joints
from motionlcm.eval.kinematics import root_speed
from tests.conftest import REPO

SHIPPED = REPO / "checkpoints" / "bandai-namco"


@pytest.fixture(scope="module")
def pipe():
    from motionlcm.pipeline import MotionLCM

    return MotionLCM.from_pretrained(SHIPPED)


def _captions(root, name):
    return [line.split("#")[0] for line in (root / "texts" / f"{name}.txt").read_text().splitlines()][:3]


def test_a_run_keeps_the_real_pace(pipe, bn_dataset_dir):
    """The fixture's run (44 frames, the whole capture) from three of its captions, at its length."""
    name = "dataset-2_run_active_001"
    real = features_to_joints(np.load(bn_dataset_dir / "new_joint_vecs" / f"{name}.npy").astype(np.float64))
    speeds = [root_speed(m.joints) for m in pipe(_captions(bn_dataset_dir, name), frames=len(real), seed=0)]
    assert 0.7 < np.mean(speeds) / root_speed(real) < 1.35, (speeds, root_speed(real))  # the old student: 2.1


def test_a_walk_keeps_a_walking_pace(pipe, bn_dataset_dir):
    """The fixture's walk keeps the first 63 of the capture's 181 frames, and in this data a short walk is a fast
    one (the capture volume fixes the distance): generate at the whole capture's length. The whole clip walks at
    1.14 m/s, the training walks of 160 frames or more at 1.03 on average (docs/benchmarks.md, "Pace")."""
    speeds = [
        root_speed(m.joints) for m in pipe(_captions(bn_dataset_dir, "dataset-2_walk_normal_001"), frames=181, seed=0)
    ]
    assert 0.7 < np.mean(speeds) < 1.6, speeds  # m/s; the old student: 1.80
