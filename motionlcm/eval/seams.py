"""Seams of a long motion: does a take built from segments (`motionlcm.timeline`) hand over from one segment to
the next as motion capture would, or does it jump, jerk or slide where the segments meet?

All take joints (T, 22, 3) in metres, y up, at `fps`, and the frames where segments start (`seams`).

- `root_steps_off`: per frame, how far the pelvis's step differs from the local speed (|step[t] - median of
  the 4 steps before and the 4 after|, metres): a jump that the local speed does not explain. Real captured
  motion has such differences too (runs change speed within a stride): 1.8 % of the Bandai-Namco test
  clips' frames exceed 2 cm, so the report gives the same rate inside segments beside the seams'.
- `frame_accelerations`: per frame, the largest joint acceleration (m/s^2, second difference times fps^2).
- `seam_report`: the issue's continuity scores: the root jumps; each seam window's largest acceleration
  against the 95th percentile of the frames inside segments (`SEAM_WINDOW` frames around each seam are not
  inside), with the same score for windows inside segments as the baseline a seamless take would give; the
  foot-skating ratio (`kinematics.foot_skating_ratio`) in seam windows and inside segments.
"""

from __future__ import annotations

import numpy as np

from motionlcm.eval.kinematics import as_joints, foot_skating_ratio

SEAM_WINDOW = 10  # frames around a seam (5 before, 5 from it): "the 10 frames around a seam"
ROOT_JUMP_LIMIT = 0.02  # m: no jump over 2 cm beyond what the local speed explains
ACCELERATION_LIMIT = 1.5  # a seam window's largest acceleration over the inside frames' 95th percentile


def root_steps_off(joints: np.ndarray, reach: int = 4) -> np.ndarray:
    """(T - 1,) per step t (frame t to t + 1): |step length - median of the `reach` steps on either side| (m)."""
    joints = as_joints(joints, min_frames=2)
    steps = np.linalg.norm(np.diff(joints[:, 0], axis=0), axis=-1)
    out = np.zeros_like(steps)
    for t in range(len(steps)):
        around = np.concatenate([steps[max(0, t - reach) : t], steps[t + 1 : t + 1 + reach]])
        out[t] = abs(steps[t] - np.median(around)) if len(around) else 0.0
    return out


def root_jumps(joints: np.ndarray, seams: list[int]) -> np.ndarray:
    """Per seam, the largest `root_steps_off` of the steps into, across and out of the seam frame."""
    off = root_steps_off(joints)
    return np.asarray([off[max(0, s - 2) : s + 1].max() for s in seams])


def frame_accelerations(joints: np.ndarray, fps: float = 20.0) -> np.ndarray:
    """(T,) largest joint acceleration per frame (m/s^2); the first and last frame get their neighbour's."""
    joints = as_joints(joints, min_frames=3)
    acc = np.linalg.norm(joints[2:] - 2 * joints[1:-1] + joints[:-2], axis=-1).max(axis=1) * fps**2
    return np.concatenate([acc[:1], acc, acc[-1:]])


def _windows(seams: list[int], total: int, width: int = SEAM_WINDOW) -> list[slice]:
    return [slice(max(0, s - width // 2), min(total, s + width - width // 2)) for s in seams]


def seam_report(joints: np.ndarray, seams: list[int], fps: float = 20.0) -> dict[str, float | list[float]]:
    """Continuity scores of one take (module docstring). `seams`: start frames of every segment but the first
    (and of every piece, when pieces should be judged too)."""
    joints = as_joints(joints, min_frames=3)
    total = len(joints)
    for seam in seams:
        if not 1 <= seam < total:
            raise ValueError(f"seam_report: seam frame {seam} is outside 1..{total - 1}")
    acc = frame_accelerations(joints, fps)
    windows = _windows(seams, total)
    inside = np.ones(total, bool)
    for w in windows:
        inside[w] = False
    if inside.sum() < SEAM_WINDOW:
        raise ValueError("seam_report: the segments are too short to leave frames inside them")
    p95 = float(np.percentile(acc[inside], 95))
    seam_ratio = [float(acc[w].max() / p95) for w in windows]
    # the same score for windows inside segments: what a take without seams would show
    starts = [t for t in range(0, total - SEAM_WINDOW, SEAM_WINDOW) if inside[t : t + SEAM_WINDOW].all()]
    inside_ratio = [float(acc[t : t + SEAM_WINDOW].max() / p95) for t in starts]
    seam_frames = np.concatenate([np.arange(total)[w] for w in windows]) if windows else np.zeros(0, int)
    skating_seams = _skating_on(joints, seam_frames, fps)
    skating_inside = _skating_on(joints, np.flatnonzero(inside), fps)
    jumps = root_jumps(joints, seams)
    off = root_steps_off(joints)
    inside_jumps = [off[t - 2 : t + 1].max() for t in range(2, total - 1, 3) if inside[t - 2 : t + 2].all()]
    return {
        "seams": len(seams),
        "root_jump_max_m": float(jumps.max()) if len(jumps) else 0.0,
        "root_jumps_over_limit": float((jumps > ROOT_JUMP_LIMIT).mean()) if len(jumps) else 0.0,
        "inside_root_jumps_over_limit": float(np.mean(np.asarray(inside_jumps) > ROOT_JUMP_LIMIT))
        if inside_jumps
        else 0.0,
        "acceleration_p95_inside": p95,
        "seam_acceleration_ratio": seam_ratio,
        "seam_acceleration_fail": float(np.mean([r > ACCELERATION_LIMIT for r in seam_ratio])) if seams else 0.0,
        "inside_acceleration_fail": float(np.mean([r > ACCELERATION_LIMIT for r in inside_ratio])) if starts else 0.0,
        "skating_seams": skating_seams,
        "skating_inside": skating_inside,
    }


def _skating_on(joints: np.ndarray, frames: np.ndarray, fps: float) -> float:
    """Foot-skating ratio over the frame pairs (t, t + 1) with t in `frames`."""
    frames = frames[frames + 1 < len(joints)]
    if len(frames) == 0:
        return 0.0
    pairs = [foot_skating_ratio(joints[t : t + 2], fps) for t in frames]
    return float(np.mean(pairs))
