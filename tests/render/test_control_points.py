"""Control targets are drawn: a strip of a motion rendered with hints shows red target marks, without none."""

from __future__ import annotations

import numpy as np
from PIL import Image

from motionlcm.data.features import features_to_joints
from motionlcm.motion import Motion


def red_pixels(path):
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())


def test_hints_are_drawn_in_red(humanml3d_sample_dir, tmp_path):
    joints = features_to_joints(np.load(humanml3d_sample_dir / "new_joint_vecs" / "000000.npy"))[:40]
    hints = np.full_like(joints, np.nan)
    hints[::5, 0] = joints[::5, 0] + [0.2, 0.0, 0.0]
    hints[::5, 0, 1] = np.nan  # a floor path: drawn on the floor
    plain = Motion(joints).render(tmp_path / "plain.png")
    steered = Motion(joints, hints=hints).render(tmp_path / "hints.png")
    assert red_pixels(steered) > red_pixels(plain) + 20  # the right limbs are red too: count the extra
