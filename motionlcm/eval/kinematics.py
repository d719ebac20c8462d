"""Kinematic metrics: does a motion move like motion capture, or is it a pose sliding over the floor?

FID and R-precision compare embeddings, and an evaluator can tell captions apart from a static pose with
a raised hand; these metrics look at the joints themselves. All take joint positions (T, 22, 3) in metres,
y up, HumanML3D joint order, at `fps` frames per second (20 for HumanML3D-format data).

- `relative_joint_speed`: mean speed of the joints relative to the pelvis (m/s). A frozen pose scores 0
  however fast it slides. Averaged over all 22 joints, the pelvis (always 0) included, as
  ../shared/tools/motion_vitals.py does.
- `root_speed`: mean horizontal speed of the pelvis (m/s): how fast the body travels. Relative speed cannot
  see a jog carried at a sprinter's pace; paired with the real clip of the same caption, this can.
- `foot_skating_ratio`: the share of frame pairs in which a foot (joints 10, 11) is below 5 cm in both
  frames and moves faster than 0.5 m/s horizontally (MotionLCM's control metric: official
  `mld/models/metrics/utils.py`, `calculate_skating_ratio`).
- `jitter`: mean jerk magnitude of the joints (m/s^3), the third finite difference times fps^3.
- `ankle_height_range`: per ankle, max - min height over the clip (a real walk: about 16 cm).
- `freeze_motion`: the "frozen real" sanity input: the first pose carried along the real root trajectory.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

PELVIS, LEFT_HIP, RIGHT_HIP = 0, 1, 2
LEFT_ANKLE, RIGHT_ANKLE = 7, 8
FEET = (10, 11)  # left_foot, right_foot (balls of the feet), as the official skating metric
SKATE_HEIGHT = 0.05  # m, official mld/models/metrics/utils.py, calculate_skating_ratio (used by cm.py)
SKATE_SPEED = 0.5  # m/s, same source
HEADING_SIGMA = 10.0  # frames (0.5 s at 20 fps): longer than the hips' sway in one step


def as_joints(joints: np.ndarray, min_frames: int = 1) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3):
        raise ValueError(f"joints: expected shape (T, 22, 3), got {joints.shape}")
    if joints.shape[0] < min_frames:
        raise ValueError(f"joints: need at least {min_frames} frames, got {joints.shape[0]}")
    return joints


def relative_joint_speed(joints: np.ndarray, fps: float = 20.0) -> float:
    """Mean speed (m/s) of the joints relative to the pelvis; 0 for a clip of one frame."""
    joints = as_joints(joints)
    if len(joints) < 2:
        return 0.0
    relative = joints - joints[:, PELVIS : PELVIS + 1]
    return float(np.linalg.norm(np.diff(relative, axis=0), axis=-1).mean() * fps)


def root_speed(joints: np.ndarray, fps: float = 20.0) -> float:
    """Mean horizontal speed (m/s) of the pelvis over the floor; 0 for a clip of one frame. Relative joint speed
    cannot see a body carried too fast (a jog at a sprinter's pace with a jogger's legs): this can."""
    joints = as_joints(joints)
    if len(joints) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(joints[:, PELVIS, [0, 2]], axis=0), axis=-1).mean() * fps)


def foot_skating_ratio(
    joints: np.ndarray, fps: float = 20.0, height: float = SKATE_HEIGHT, speed: float = SKATE_SPEED
) -> float:
    """Share of frame pairs (t, t+1) in which at least one foot is under `height` in both frames and
    moves faster than `speed` horizontally; 0 for a clip of one frame."""
    joints = as_joints(joints)
    if len(joints) < 2:
        return 0.0
    feet = joints[:, list(FEET)]
    low = (feet[:-1, :, 1] < height) & (feet[1:, :, 1] < height)
    horizontal = np.linalg.norm(np.diff(feet[:, :, [0, 2]], axis=0), axis=-1) * fps
    return float((low & (horizontal > speed)).any(axis=1).mean())


def jitter(joints: np.ndarray, fps: float = 20.0) -> float:
    """Mean jerk magnitude (m/s^3) over joints and frames; 0 for clips under 4 frames."""
    joints = as_joints(joints)
    if len(joints) < 4:
        return 0.0
    jerk = np.diff(joints, n=3, axis=0) * fps**3
    return float(np.linalg.norm(jerk, axis=-1).mean())


def ankle_height_range(joints: np.ndarray) -> tuple[float, float]:
    """(left, right) ankle height range over the clip, metres."""
    joints = as_joints(joints)
    return float(np.ptp(joints[:, LEFT_ANKLE, 1])), float(np.ptp(joints[:, RIGHT_ANKLE, 1]))


def kinematic_summary(joints: np.ndarray, fps: float = 20.0) -> dict[str, float]:
    """The table metrics of one clip: relative_speed and root_speed (m/s), skating (ratio), jitter (m/s^3)."""
    return {
        "relative_speed": relative_joint_speed(joints, fps),
        "root_speed": root_speed(joints, fps),
        "skating": foot_skating_ratio(joints, fps),
        "jitter": jitter(joints, fps),
    }


def heading_angle(joints: np.ndarray, sigma: float = HEADING_SIGMA) -> np.ndarray:
    """(T,) facing angle about +y (0 facing +z, growing when turning to the left, +x) from the hips:
    forward = (left_hip - right_hip) x up; unwrapped and smoothed so that the hips' sway within a stride
    does not count as turning."""
    across = joints[:, LEFT_HIP] - joints[:, RIGHT_HIP]
    angle = np.unwrap(np.arctan2(-across[:, 2], across[:, 0]))
    return gaussian_filter1d(angle, sigma, mode="nearest") if sigma > 0 else angle


def rotate_about_y(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (T, J, 3) points about +y by per-frame angles (T,) (counter-clockwise seen from above)."""
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([cos * x + sin * z, y, -sin * x + cos * z], axis=-1)


def freeze_motion(joints: np.ndarray) -> np.ndarray:
    """The first pose carried along the real root trajectory: frame t is frame 0's pose relative to the
    pelvis, turned by the (smoothed) heading change from frame 0 to t and placed at frame t's pelvis. The result
    moves over the floor like the clip and has relative joint speed 0 (a "pose sliding over the floor")."""
    joints = as_joints(joints)
    heading = heading_angle(joints)
    pose = joints[0] - joints[0, PELVIS]
    poses = np.broadcast_to(pose, joints.shape)
    return rotate_about_y(poses, heading - heading[0]) + joints[:, PELVIS : PELVIS + 1]
