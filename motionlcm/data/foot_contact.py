"""Foot locking: a foot that the motion says is on the ground stays where it stands.

Generated motions predict, besides the joint positions, HumanML3D's four foot-contact labels (feature
columns 259:263: left ankle, left foot, right ankle, right foot; docs/representation.md). Positions and
labels come from one decoder but are not tied together, so a foot labelled as planted still slides by
decimetres per second (the foot-skating metric of docs/evaluation.md). `lock_feet` does what animation
tools call foot locking: during each run of contact frames the foot keeps one horizontal position (the
mean of its decoded ones over the run), easing in and out over a few frames around the run, and the leg
follows by two-bone IK from the hip (`two_bone_ik`), so bone lengths and knee directions are kept.

Runs split by a gap of at most `blend` frames are one run (label noise). A run in which the decoded foot
strays more than `MAX_LOCK_DRIFT` from that mean is not a planted foot
whatever its labels say (a generated walk can label a striding foot planted for seconds): it is left alone,
since holding it would drag the leg and, where two such runs meet, make the foot jump by their distance.
"""

from __future__ import annotations

import numpy as np

from motionlcm.data.skeleton import TARGET_BONE_LENGTHS, two_bone_ik

# (hip, knee, ankle, foot, contact columns) per side; contact columns index the 4 labels (ankle, foot).
LEGS: tuple[tuple[int, int, int, int, tuple[int, int]], ...] = ((1, 4, 7, 10, (0, 1)), (2, 5, 8, 11, (2, 3)))
CONTACT_THRESHOLD = 0.5  # the labels are 0/1 in the data (HumanML3D foot_detect)
MAX_LOCK_DRIFT = 0.25  # m: a "planted" foot whose decoded position strays further from its mean is moving


def contact_runs(contact: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where `contact` (T,) bool is True."""
    padded = np.concatenate([[False], np.asarray(contact, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _merge_short_gaps(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Contact runs with gaps of at most `gap` frames closed."""
    merged: list[tuple[int, int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _lock_offsets(foot_xz: np.ndarray, contact: np.ndarray, blend: int) -> np.ndarray:
    """(T, 2) horizontal shifts that hold the foot still during each contact run (whose foot stays within
    `MAX_LOCK_DRIFT`) and fade to 0 over `blend` frames on either side (where two fades overlap, the nearer
    run wins)."""
    shifts = np.zeros_like(foot_xz)
    weight = np.zeros(len(foot_xz))
    for start, stop in _merge_short_gaps(contact_runs(contact), blend):
        anchor = foot_xz[start:stop].mean(axis=0)
        if np.linalg.norm(foot_xz[start:stop] - anchor, axis=-1).max() > MAX_LOCK_DRIFT:
            continue  # a moving foot, mislabelled (module docstring)
        lo, hi = max(0, start - blend), min(len(foot_xz), stop + blend)
        for t in range(lo, hi):
            w = 1.0 if start <= t < stop else 1.0 - (start - t if t < start else t - stop + 1) / (blend + 1)
            if w > weight[t]:
                weight[t] = w
                edge = min(max(t, start), stop - 1)  # t itself inside the run, else the run's nearest frame
                shifts[t] = w * (anchor - foot_xz[edge])
    return shifts


def lock_feet(
    joints: np.ndarray, contacts: np.ndarray, blend: int = 3, bone_lengths: np.ndarray = TARGET_BONE_LENGTHS
) -> np.ndarray:
    """Hold each foot still while it is labelled in contact with the ground.

    Args:
        joints: (T, 22, 3) joint positions of one clip, metres, y up (e.g. after `conform_to_skeleton`).
        contacts: (T, 4) contact labels or probabilities (left ankle, left foot, right ankle, right foot); a
            foot is planted where either of its two labels exceeds CONTACT_THRESHOLD.
        blend: frames over which a lock eases in before and out after each contact run.
        bone_lengths: thigh and shin lengths for the leg IK (default: the uniform skeleton's).

    Returns:
        (T, 22, 3) joints: ankles and feet shifted horizontally, knees re-solved; everything else as given.
    """
    joints = np.asarray(joints, dtype=np.float64)
    contacts = np.asarray(contacts, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3):
        raise ValueError(f"joints must have shape (T, 22, 3), got {joints.shape}")
    if contacts.shape != (len(joints), 4):
        raise ValueError(f"contacts must have shape ({len(joints)}, 4), got {contacts.shape}")
    out = joints.copy()
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    for hip, knee, ankle, foot, columns in LEGS:
        planted = (contacts[:, list(columns)] > CONTACT_THRESHOLD).any(axis=1)
        if not planted.any():
            continue
        shift = _lock_offsets(joints[:, foot, [0, 2]], planted, blend)
        target = joints[:, ankle].copy()
        target[:, [0, 2]] += shift
        out[:, knee], out[:, ankle] = two_bone_ik(
            joints[:, hip], joints[:, knee], target, (lengths[knee], lengths[ankle])
        )
        out[:, foot] = out[:, ankle] + (joints[:, foot] - joints[:, ankle])
    return out
