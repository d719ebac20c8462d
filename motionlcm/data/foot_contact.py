"""Foot locking: a foot that the motion says is on the ground stays where it stands.

Generated motions predict, besides the joint positions, HumanML3D's four foot-contact labels (feature
columns 259:263: left ankle, left foot, right ankle, right foot; docs/representation.md). Positions and
labels come from one decoder but are not tied together, so a foot labelled as planted still slides by
decimetres per second (the foot-skating metric of docs/evaluation.md). `lock_feet` does what animation
tools call foot locking: during each run of contact frames the foot keeps one horizontal position (the
mean of its decoded ones over the run), easing in and out over a few frames around the run, and the leg
follows by two-bone IK from the hip (`two_bone_ik`), so bone lengths and knee directions are kept.

Runs split by a gap of at most `blend` frames are one run (label noise). A generated walk can label a
striding foot planted for seconds; holding all of it at one mean would drag the leg and, where two such runs
meet, make the foot jump by their distance (0.8 m in a frame was seen). So a run is held in pieces within
which the decoded foot stays inside `MAX_LOCK_DRIFT` of the piece's mean, and the foot steps from one hold to
the next over `blend` frames; the shift is continuous everywhere.
"""

from __future__ import annotations

import numpy as np

from motionlcm.data.skeleton import TARGET_BONE_LENGTHS, body_front, two_bone_ik

# (hip, knee, ankle, foot, contact columns) per side; contact columns index the 4 labels (ankle, foot).
LEGS: tuple[tuple[int, int, int, int, tuple[int, int]], ...] = ((1, 4, 7, 10, (0, 1)), (2, 5, 8, 11, (2, 3)))
CONTACT_THRESHOLD = 0.5  # the labels are 0/1 in the data (HumanML3D foot_detect)
PIN_RELEASE = 10  # frames over which a pinned hold (`pin_first`) lets go: 0.5 s, as a seam's hand-over
# m: soft IK for the stretch a lock adds to a leg (`two_bone_ik`'s `soft`, up to the decoded leg's own
# reach): near full extension the law of cosines moves the knee ever faster for the same ankle move (the
# "knee pop"). With it, the knees' 95th-percentile acceleration on 40 generated test-split walks and runs fell
# from 36.7 to 32.0 m/s^2 (real clips: 27.1; unlocked: 24.9); an ankle stays at most 1.5 cm short of its hold.
SOFT_REACH = 0.04
MAX_LOCK_DRIFT = 0.35  # m: how far a held foot may be from where it was decoded (skating 0.22 -> 0.12 on 64 test clips)


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


def _planted_pieces(foot_xz: np.ndarray, start: int, stop: int, gap: int) -> list[tuple[int, int]]:
    """Split the contact run [start, stop) into pieces in which the foot stays within `MAX_LOCK_DRIFT` of the
    piece's mean, `gap` frames apart (where the foot steps from one hold to the next)."""
    pieces, first = [], start
    while first < stop:
        last = first + 1
        while last < stop:
            piece = foot_xz[first : last + 1]
            if np.linalg.norm(piece - piece.mean(axis=0), axis=-1).max() > MAX_LOCK_DRIFT:
                break
            last += 1
        pieces.append((first, last))
        first = last + gap if last < stop else stop
    return pieces


def _ease(t: float, t0: int, t1: int, y0: np.ndarray, y1: np.ndarray, m0: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """The cubic Hermite curve from value `y0` with slope `m0` (per frame) at frame `t0` to `y1` with slope
    `m1` at `t1`, at frame `t`."""
    h = t1 - t0
    s = (t - t0) / h
    return (
        (2 * s**3 - 3 * s**2 + 1) * y0
        + (s**3 - 2 * s**2 + s) * h * m0
        + (-2 * s**3 + 3 * s**2) * y1
        + (s**3 - s**2) * h * m1
    )


def _lock_offsets(foot_xz: np.ndarray, contact: np.ndarray, blend: int, pin_first: bool = False) -> np.ndarray:
    """(T, 2) horizontal shifts that hold the foot at one position per planted piece (`_planted_pieces` of
    each contact run), eased in and out so that the foot's velocity, not only its position, stays
    continuous: across gaps of up to 2 * `blend` frames between pieces the shift follows a cubic from one hold
    to the next, elsewhere it eases to 0 over `blend` frames; each cubic starts (ends) with the shift's own
    slope in the held frames, so the foot leaves a hold at rest and reaches its decoded speed smoothly (a
    linear fade changed the foot's velocity at a stroke: knee accelerations twice the real ones' 95th
    percentile on generated walks). `pin_first`: frame 0 stays as it is (the last frame before a
    continuation), and the first piece, if it starts within `blend` frames, holds the foot where frame 0 has
    it, or, if it starts after frame 0 (the foot still moves there), where the foot lands when it slows evenly
    from frame 0's speed to rest over the ease (eased into from frame 0 on); not at the piece's mean. Its
    shift can be large (where a seam's hand-over put the foot), so it is let go over `PIN_RELEASE` frames, slow
    enough not to slide."""
    total = len(foot_xz)
    shifts = np.zeros_like(foot_xz)
    held = np.zeros(total, dtype=bool)
    pinned_last = -1  # last frame of the pinned piece
    for run in _merge_short_gaps(contact_runs(contact), blend):
        for start, stop in _planted_pieces(foot_xz, *run, gap=2 * blend):
            pinned = pin_first and start <= blend and pinned_last < 0  # the first hold, at or just after frame 0
            hold = foot_xz[start:stop].mean(axis=0)
            if pinned:  # where frame 0 has the foot, or where it lands from there slowing evenly over the ease
                hold = foot_xz[0] + (foot_xz[1] - foot_xz[0]) * (0 if start == 0 else (blend + 1) / 2)
            shifts[start:stop] = hold - foot_xz[start:stop]
            held[start:stop] = True
            pinned_last = stop - 1 if pinned else pinned_last
    if pin_first and not held[0] and held[1 : blend + 1].any():
        held[1 : blend + 1] = False  # frame 0's foot moves: a hold right after it is eased into from frame 0 on
        shifts[1 : blend + 1] = 0.0
    frames = np.flatnonzero(held)
    if len(frames) == 0:
        return shifts
    zero = np.zeros(2)

    def slope(t: int, side: int) -> np.ndarray:  # the shift's slope (per frame) at hold edge t, from its `side`
        return (shifts[t] - shifts[t + side]) * -side if 0 <= t + side < total and held[t + side] else zero

    out = shifts.copy()  # zero where not held
    for t in np.flatnonzero(~held):
        i = int(np.searchsorted(frames, t))  # frames[i - 1] < t < frames[i]
        p = int(frames[i - 1]) if i > 0 else None
        n = int(frames[i]) if i < len(frames) else None
        fade = PIN_RELEASE if p is not None and p == pinned_last else blend
        if p is not None and n is not None and n - p <= 2 * fade + 1:
            out[t] = _ease(t, p, n, shifts[p], shifts[n], slope(p, -1), slope(n, 1))
            continue
        if p is not None and t - p <= fade:
            out[t] += _ease(t, p, p + fade + 1, shifts[p], zero, slope(p, -1), zero)
        if n is not None and n - t <= blend:
            out[t] += _ease(t, n - blend - 1, n, zero, shifts[n], zero, slope(n, 1))
    return out


def lock_feet(
    joints: np.ndarray,
    contacts: np.ndarray,
    blend: int = 3,
    bone_lengths: np.ndarray = TARGET_BONE_LENGTHS,
    pin_first: bool = False,
) -> np.ndarray:
    """Hold each foot still while it is labelled in contact with the ground.

    Args:
        joints: (T, 22, 3) joint positions of one clip, metres, y up (e.g. after `conform_to_skeleton`).
        contacts: (T, 4) contact labels or probabilities (left ankle, left foot, right ankle, right foot); a
            foot is planted where either of its two labels exceeds CONTACT_THRESHOLD.
        blend: frames over which a lock eases in before and out after each contact run.
        bone_lengths: thigh and shin lengths for the leg IK (default: the uniform skeleton's).
        pin_first: frame 0 stays as it is, and a foot planted from frame 0 on is held where frame 0 has it
            (the frame before a continuation: the foot stays where the given frames left it).

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
    front = body_front(joints)
    for hip, knee, ankle, foot, columns in LEGS:
        planted = (contacts[:, list(columns)] > CONTACT_THRESHOLD).any(axis=1)
        if not planted.any():
            continue
        shift = _lock_offsets(joints[:, foot, [0, 2]], planted, blend, pin_first)
        target = joints[:, ankle].copy()
        target[:, [0, 2]] += shift
        # soft IK only for the stretch the lock adds: a leg as decoded (no shift) keeps its exact pose
        decoded = np.linalg.norm(joints[:, ankle] - joints[:, hip], axis=-1, keepdims=True)
        soft = np.clip(lengths[knee] + lengths[ankle] - decoded, 0.0, SOFT_REACH)
        out[:, knee], out[:, ankle] = two_bone_ik(
            joints[:, hip], joints[:, knee], target, (lengths[knee], lengths[ankle]), front, soft
        )
        out[:, foot] = out[:, ankle] + (joints[:, foot] - joints[:, ankle])
    return out
