"""The joints users get from generated features: one home for the clean-up that `MotionLCM`, the
evaluation's kinematic columns and the feature exporters share.

Decoded `ric` positions of a generated motion stretch bones and let planted feet slide (docs/benchmarks.md,
"Rigid bones"); `clean_joints` places them on the uniform skeleton (`conform_to_skeleton`) and holds each
foot still while the motion's own contact labels say it is planted (`lock_feet`). On real clips both steps
leave the joints as they are, up to the millimetres by which real planted feet move.
"""

from __future__ import annotations

import numpy as np

from motionlcm.data.foot_contact import lock_feet
from motionlcm.data.skeleton import conform_to_skeleton


def clean_joints(
    joints: np.ndarray, contacts: np.ndarray | None = None, conform: bool = True, foot_lock: bool = True
) -> np.ndarray:
    """(T, 22, 3) joints of one clip -> the same, conformed and foot-locked (each step optional; foot locking
    needs the (T, 4) contact labels, feature columns 259:263)."""
    out = np.asarray(joints, dtype=np.float64)
    if conform:
        out = conform_to_skeleton(out)
    if foot_lock and contacts is not None:
        out = lock_feet(out, contacts)
    return out
