"""Does a motion do what its prompt says? Kinematic checks for stepping, waving, raising a hand and turning.

Each check takes joints (T, 22, 3) in metres, y up, HumanML3D joint order, 20 fps, and returns a dict of
measured values plus "ok". They are deliberately simple, readable criteria on the joints, so that anyone
can see why a motion passes or fails:

- `steps`: both ankles rise by at least 8 cm over the clip and the feet alternate (which ankle is higher
  changes at least twice).
- `waves(side)`: the named wrist, above the shoulder for most of the clip, swings side to side (at least
  two reversals of its lateral motion, 10 cm or more peak to peak) and moves more than the other wrist.
- `raises(side)`: the named wrist starts below its shoulder and reaches above the head.
- `pace(low, high)`: the body travels at a speed a person of the prompt could: the pelvis's mean
  horizontal speed within [low, high] m/s (`PACE`: walks and runs of the Bandai-Namco training clips).
- `turn_degrees`: the heading change from the first to the last frame (positive = to the left, the
  subject's left being +x when facing +z).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from motionlcm.eval.kinematics import (
    LEFT_ANKLE,
    PELVIS,
    RIGHT_ANKLE,
    as_joints,
    heading_angle,
    root_speed,
    rotate_about_y,
)

HEAD = 15
SHOULDER = {"left": 16, "right": 17}
WRIST = {"left": 20, "right": 21}
MIN_ANKLE_RANGE = 0.08  # m: issue "The shipped model must move" (a real walk: about 0.16 m)
MIN_WAVE_SWING = 0.10  # m peak to peak of the wrist's side-to-side position (a real wave: about 0.65 m)
# m/s, (slowest, fastest) mean pelvis speed of the Bandai-Namco training clips captioned so (whole clips;
# docs/benchmarks.md "Pace"): walks 0.69 / 1.14 / 1.47 at p5 / median / p95, 1.93 at most; runs and jogs
# 1.55 / 2.75 / 3.53, 4.41 at most; elderly walks 0.60 / 0.72 / 0.84, 0.93 at most. A little slack each way.
PACE = {"walk": (0.5, 2.0), "run": (1.5, 4.5), "slow walk": (0.3, 1.2)}
SMOOTH = 1.5  # frames of Gaussian smoothing before counting reversals (ignores capture noise)


def _reversals(signal: np.ndarray, min_step: float) -> int:
    """How often a smoothed 1-d signal changes direction by more than `min_step` (hysteresis count)."""
    signal = gaussian_filter1d(signal, SMOOTH, mode="nearest")
    count, direction, anchor = 0, 0, signal[0]
    for value in signal[1:]:
        delta = value - anchor
        if direction >= 0 and delta < -min_step:
            count, direction, anchor = count + (direction > 0), -1, value
        elif direction <= 0 and delta > min_step:
            count, direction, anchor = count + (direction < 0), 1, value
        elif (direction > 0 and value > anchor) or (direction < 0 and value < anchor):
            anchor = value
    return count


def steps(joints: np.ndarray) -> dict[str, float | bool]:
    """Stepping: both ankle height ranges >= 8 cm and at least two changes of the higher ankle."""
    joints = as_joints(joints, min_frames=2)
    left, right = joints[:, LEFT_ANKLE, 1], joints[:, RIGHT_ANKLE, 1]
    ranges = float(np.ptp(left)), float(np.ptp(right))
    difference = gaussian_filter1d(left - right, SMOOTH, mode="nearest")
    swaps = int(np.count_nonzero(np.diff(np.sign(difference[np.abs(difference) > 0.01])) != 0))
    ok = min(ranges) >= MIN_ANKLE_RANGE and swaps >= 2
    return {"left_ankle_range": ranges[0], "right_ankle_range": ranges[1], "alternations": swaps, "ok": ok}


def _body_frame(joints: np.ndarray) -> np.ndarray:
    """Joints relative to the pelvis, turned so that the (smoothed) heading faces +z in every frame."""
    relative = joints - joints[:, PELVIS : PELVIS + 1]
    return rotate_about_y(relative, -heading_angle(joints))


def waves(joints: np.ndarray, side: str) -> dict[str, float | bool]:
    """Waving with `side` ("left", "right" or "both")."""
    joints = as_joints(joints, min_frames=2)
    body = _body_frame(joints)
    sides = ("left", "right") if side == "both" else (side,)
    out: dict[str, float | bool] = {}
    ok = True
    for name in sides:
        wrist = body[:, WRIST[name]]
        raised = float(np.mean(joints[:, WRIST[name], 1] > joints[:, SHOULDER[name], 1]))
        swing = float(np.ptp(wrist[:, 0]))
        count = _reversals(wrist[:, 0], MIN_WAVE_SWING / 4)
        out |= {f"{name}_raised_share": raised, f"{name}_swing": swing, f"{name}_reversals": count}
        ok &= raised >= 0.3 and swing >= MIN_WAVE_SWING and count >= 2
    if side != "both":
        other = "right" if side == "left" else "left"
        path = {n: float(np.linalg.norm(np.diff(body[:, WRIST[n]], axis=0), axis=-1).sum()) for n in WRIST}
        out |= {f"{n}_wrist_path": v for n, v in path.items()}
        ok &= path[side] > path[other]
    out["ok"] = bool(ok)
    return out


def raises(joints: np.ndarray, side: str) -> dict[str, float | bool]:
    """Raising `side` ("left", "right" or "both"): the wrist starts below the shoulder and reaches above
    the head; for one side, the other wrist stays lower than the named one at its highest."""
    joints = as_joints(joints, min_frames=2)
    sides = ("left", "right") if side == "both" else (side,)
    out: dict[str, float | bool] = {}
    ok = True
    for name in sides:
        wrist, shoulder = joints[:, WRIST[name], 1], joints[:, SHOULDER[name], 1]
        start_below = float(shoulder[0] - wrist[0])
        above_head = float(np.max(wrist - joints[:, HEAD, 1]))
        out |= {f"{name}_start_below_shoulder": start_below, f"{name}_peak_above_head": above_head}
        ok &= start_below > 0 and above_head > 0
    if side != "both":
        other = "right" if side == "left" else "left"
        peaks = {n: float(np.max(joints[:, WRIST[n], 1])) for n in WRIST}
        out |= {f"{n}_wrist_peak": v for n, v in peaks.items()}
        ok &= peaks[side] > peaks[other]
    out["ok"] = bool(ok)
    return out


def turn_degrees(joints: np.ndarray) -> float:
    """Heading change over the clip in degrees, positive to the subject's left."""
    heading = heading_angle(as_joints(joints, min_frames=2))
    return float(np.degrees(heading[-1] - heading[0]))


def pace(joints: np.ndarray, low: float, high: float) -> dict[str, float | bool]:
    """Travel speed: the pelvis's mean horizontal speed (m/s) within [low, high] (e.g. `PACE["run"]`)."""
    speed = root_speed(as_joints(joints, min_frames=2))
    return {"pace": speed, "ok": low <= speed <= high}
