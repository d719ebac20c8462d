"""Seam scores on real motion capture: a real clip cut at arbitrary frames has no seams to find, while a cut
that jumps, or a planted foot dragged across a cut, is found."""

from __future__ import annotations

import numpy as np
import pytest

from motionlcm.eval.seams import ROOT_JUMP_LIMIT, root_jumps, seam_report


@pytest.fixture(scope="module")
def walk(bn_dataset_dir):
    return np.load(bn_dataset_dir / "new_joints" / "dataset-2_walk_normal_001.npy").astype(np.float64)


def cuts(clip):
    return [len(clip) // 4, len(clip) // 2, 3 * len(clip) // 4]


def test_a_real_clip_cut_anywhere_has_seamless_seams(walk):
    seams = cuts(walk)
    report = seam_report(walk, seams)
    assert report["seams"] == 3 and report["root_jump_max_m"] < ROOT_JUMP_LIMIT
    assert report["seam_acceleration_fail"] == 0.0 and max(report["seam_acceleration_ratio"]) < 1.5
    assert 0.0 <= report["skating_seams"] <= 1.0 and 0.0 <= report["skating_inside"] <= 1.0


def test_a_jump_at_a_seam_is_found(walk):
    seams = cuts(walk)
    jumped = walk.copy()
    jumped[seams[1] :] += np.array([0.06, 0.0, 0.04])  # the second segment starts 7 cm away
    report = seam_report(jumped, seams)
    jumps = root_jumps(jumped, seams)
    assert jumps[1] > ROOT_JUMP_LIMIT and jumps[0] < ROOT_JUMP_LIMIT and jumps[2] < ROOT_JUMP_LIMIT
    assert report["seam_acceleration_ratio"][1] > 1.5 and report["seam_acceleration_fail"] == pytest.approx(1 / 3)


def test_a_foot_dragged_across_a_seam_skates_there(walk):
    dragged, seam = walk.copy(), len(walk) // 2
    ramp = np.clip((np.arange(len(walk)) - seam + 3) / 8.0, 0.0, 1.0)[:, None]  # over 8 frames around the seam
    for foot in (7, 10, 8, 11):  # both ankles and feet slide 0.3 m while the body stays
        dragged[:, foot, [0, 2]] += ramp * np.array([0.3, 0.0])
    report = seam_report(dragged, [seam])
    with pytest.raises(ValueError, match="seam frame 500 is outside"):
        seam_report(walk, [500])
    assert report["skating_seams"] > report["skating_inside"] + 0.2
