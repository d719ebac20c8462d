"""Motion warping: bend a generated motion the last few centimetres onto its control targets.

The ControlNet steers what the motion does (where it walks, when it reaches); what is left is a residual
of centimetres to decimetres at the controlled points. Animation tools remove such residuals by motion
warping (Witkin & Popovic, "Motion Warping", SIGGRAPH 1995): a smooth offset curve through the residuals at
the constrained frames is added to the motion, so the constraints hold exactly and the motion between them
keeps its shape. Here:

* the pelvis (the root): its offset curve is added to the whole body (a per-frame translation, bone lengths
  kept). It is linear in time between controlled frames, ramps up from 0 at frame 0 to the first controlled
  frame (the motion still starts at the origin unless frame 0 is controlled) and holds after the last; it is
  then smoothed (Gaussian, `ROOT_SMOOTH_FRAMES`), so that the bob and sway of a path captured from another
  motion are not forced, frame by frame, onto legs stepping in another phase; what smoothing leaves beyond
  `ROOT_TOLERANCE` (5 cm per axis) at a controlled frame is corrected, so targets hold within it;
* wrists and feet: their offsets ease in and out over `reach_frames` around each controlled frame (a hand
  that must touch a point at 2 s moves there and back, the rest of the arm follows) and the limb is
  re-solved by two-bone IK from the shoulder or hip, so bones keep their lengths and elbows or knees bend
  in the generated plane. A target beyond the limb's reach is approached as far as the limb goes.

Axes that are not controlled (a floor-plane path leaves the height free) get no offset. Other joints (the
head) are left to the ControlNet.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from motionlcm.data.skeleton import KNEES, TARGET_BONE_LENGTHS, body_front, two_bone_ik

PELVIS = 0
# end effector -> (upper joint, middle joint, the joint IK places, the joints carried along rigidly)
EFFECTORS: dict[int, tuple[int, int, int, tuple[int, ...]]] = {
    20: (16, 18, 20, ()),  # left wrist from the left shoulder
    21: (17, 19, 21, ()),  # right wrist
    10: (1, 4, 7, (10,)),  # left foot (ball): the ankle is placed, the foot follows
    11: (2, 5, 8, (11,)),  # right foot
}
REACH_FRAMES = 10  # 0.5 s at 20 fps: how long an end-effector warp eases in and out
# Gaussian width (frames) of the pelvis offset curve: a dense path from real capture carries its own stride's
# bob and sway, which forced frame by frame onto legs in another phase made the motion unnatural (dense pelvis
# FID 0.147 -> 0.112 on the test split, error 0 -> 1.5 cm; docs/benchmarks.md, "Motion control")
ROOT_SMOOTH_FRAMES = 4.0
ROOT_TOLERANCE = 0.05  # m per axis: the most smoothing may leave a controlled pelvis axis off its target


def root_offsets(residual: np.ndarray, controlled: np.ndarray) -> np.ndarray:
    """(T,) offset curve of one axis: through `residual` at the `controlled` frames, linear between them, from
    0 at frame 0 up to the first one, constant after the last; 0 everywhere when nothing is controlled."""
    frames = np.flatnonzero(controlled)
    if len(frames) == 0:
        return np.zeros(len(residual))
    keys, values = frames.astype(float), residual[frames]
    if frames[0] > 0:
        keys, values = np.concatenate([[0.0], keys]), np.concatenate([[0.0], values])
    return np.interp(np.arange(len(residual)), keys, values)


def local_offsets(residual: np.ndarray, controlled: np.ndarray, reach: int = REACH_FRAMES) -> np.ndarray:
    """(T,) offset curve of one axis for an end effector: the residual at each controlled frame, linear between
    controlled frames less than `reach` apart, easing to 0 (smoothstep) within `reach` frames elsewhere."""
    frames = np.flatnonzero(controlled)
    out = np.zeros(len(residual))
    if len(frames) == 0:
        return out
    groups = np.split(frames, np.flatnonzero(np.diff(frames) >= reach) + 1)
    t = np.arange(len(residual))
    for group in groups:
        first, last = group[0], group[-1]
        inside = (t >= first) & (t <= last)
        out[inside] = np.interp(t[inside], group, residual[group])
        for edge, side in ((first, t < first), (last, t > last)):
            distance = np.abs(t - edge)
            weight = np.clip(1.0 - distance / reach, 0.0, 1.0)
            weight = weight * weight * (3 - 2 * weight)  # smoothstep
            near = side & (weight > 0)
            out[near] += weight[near] * residual[edge]
    return out


def smooth_root_offsets(shift: np.ndarray, residual: np.ndarray, controlled: np.ndarray, sigma: float) -> np.ndarray:
    """(T, 3) pelvis offsets smoothed over `sigma` frames, then corrected where that leaves a controlled axis more
    than `ROOT_TOLERANCE` off its target (by the part beyond it, as another offset curve): a dense path keeps
    its low frequencies, a keyframe is not rounded away."""
    smooth = gaussian_filter1d(shift, sigma, axis=0, mode="nearest")
    left = np.where(controlled, residual - smooth, 0.0)
    beyond = left - np.clip(left, -ROOT_TOLERANCE, ROOT_TOLERANCE)
    return smooth + np.stack([root_offsets(beyond[:, a], controlled[:, a]) for a in range(3)], axis=-1)


def warp_to_hints(
    joints: np.ndarray,
    hints: np.ndarray,
    mask: np.ndarray,
    reach_frames: int = REACH_FRAMES,
    bone_lengths: np.ndarray = TARGET_BONE_LENGTHS,
    root_smooth: float = ROOT_SMOOTH_FRAMES,
) -> np.ndarray:
    """Warp (T, 22, 3) joints so that the controlled points of `hints` (T, 22, 3, metres) under `mask`
    (T, 22, 3 bool) hold: the pelvis within `ROOT_TOLERANCE` per axis (exactly with `root_smooth=0`: the
    offset curve is smoothed over `root_smooth` frames), wrists and feet within their limbs' reach (module docstring)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != hints.shape or mask.shape != hints.shape or joints.shape[1:] != (22, 3):
        raise ValueError(f"joints {joints.shape}, hints {hints.shape}, mask {mask.shape}: expected (T, 22, 3) each")
    out = joints.copy()
    residual = np.where(mask[:, PELVIS], hints[:, PELVIS] - joints[:, PELVIS], 0.0)
    shift = np.stack([root_offsets(residual[:, a], mask[:, PELVIS, a]) for a in range(3)], axis=-1)
    if root_smooth > 0:
        shift = smooth_root_offsets(shift, residual, mask[:, PELVIS], root_smooth)
    out += shift[:, None, :]
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    for effector, (upper, middle, placed, carried) in EFFECTORS.items():
        if not mask[:, effector].any():
            continue
        residual = np.where(mask[:, effector], hints[:, effector] - out[:, effector], 0.0)
        offset = np.stack(
            [local_offsets(residual[:, a], mask[:, effector, a], reach_frames) for a in range(3)], axis=-1
        )
        frames = np.flatnonzero(np.abs(offset).sum(-1) > 0)  # the limb is re-solved only where it is warped
        before = out[frames, placed].copy()
        front = body_front(out[frames]) if middle in KNEES else None
        out[frames, middle], out[frames, placed] = two_bone_ik(
            out[frames, upper], out[frames, middle], before + offset[frames], (lengths[middle], lengths[placed]), front
        )
        for joint in carried:
            out[frames, joint] += out[frames, placed] - before
    return out
