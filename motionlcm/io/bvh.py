"""BVH motion-capture files: a strict fast reader, an atomic writer and vectorized forward kinematics.

Any rig: 0/3/6 (or any subset of) channels per joint, any Euler order, End Sites, CRLF, tabs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motionlcm.io.atomic import write_bytes_atomic

__all__ = [
    "BVH",
    "BVHError",
    "euler_to_matrix",
    "format_bvh",
    "matrix_to_euler",
    "nearest_euler",
    "parse_bvh",
    "read_bvh",
    "write_bvh",
]

_AXES = {"X": 0, "Y": 1, "Z": 2}
_CHANNEL_RE = re.compile(r"([XYZ])(position|rotation)", re.IGNORECASE)
_TOKEN_RE = re.compile(r"[{}]|[^\s{}]+")
_MOTION_RE = re.compile(r"^[ \t]*MOTION[ \t]*$", re.MULTILINE)
_FRAMES_RE = re.compile(r"\s*Frames\s*:\s*(\S*)\s*", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"\s*Frame\s+Time\s*:\s*(\S*)\s*", re.IGNORECASE)
_TRAILING_ZEROS_RE = re.compile(r"\.?0+(?=[ \n])")
_NEG_ZERO_RE = re.compile(r"(?<!\S)-0(?=\s)")
_CHUNK_FRAMES = 1024  # frames formatted per write() call
MIN_FRAME_TIME, MAX_FRAME_TIME = 1e-4, 10.0  # seconds per frame: 10,000 fps .. 0.1 fps (mocap is 30-240 fps)


class BVHError(ValueError):
    """A malformed BVH file; ``str(err)`` is ``"PATH:LINE: reason"`` (LINE is 1-based)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = str(path)
        self.line = int(line)
        self.reason = reason
        super().__init__(f"{self.path}:{self.line}: {reason}")

    def __reduce__(self):  # keep picklable across worker processes
        return (type(self), (self.path, self.line, self.reason))


# ----------------------------------------------------------------------------- rotations


def _axis_rotation(theta: np.ndarray, axis: int) -> np.ndarray:
    """Right-handed rotation by ``theta`` radians about one axis: (...,) -> (..., 3, 3)."""
    c, s = np.cos(theta), np.sin(theta)
    i, j = ((1, 2), (2, 0), (0, 1))[axis]  # the plane the axis rotates
    m = np.zeros(theta.shape + (3, 3))
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def _check_order(order: str, tait_bryan: bool) -> str:
    up = order.upper()
    if not up or any(a not in _AXES for a in up):
        raise ValueError(f"rotation order must be made of the letters X, Y, Z, got {order!r}")
    if tait_bryan and (len(up) != 3 or len(set(up)) != 3):
        raise ValueError(f"expected one of the 6 Tait-Bryan orders (e.g. 'ZXY'), got {order!r}")
    return up


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Euler angles in degrees to rotation matrices, BVH convention.

    For ``order = "ABC"`` and angles ``(a, b, c)`` the result is ``R_A(a) @ R_B(b) @ R_C(c)``
    acting on column vectors (= scipy ``Rotation.from_euler("ABC", ..., degrees=True)``, intrinsic).

    Args:
        angles_deg: (..., len(order)) angles in degrees, in the same order as ``order``.
        order: axis letters, e.g. "ZXY"; any length >= 1 (BVH may list 1 or 2 rotation channels).

    Returns:
        (..., 3, 3) float64 rotation matrices.
    """
    up = _check_order(order, tait_bryan=False)
    angles = np.radians(np.asarray(angles_deg, dtype=np.float64))
    if angles.shape[-1:] != (len(up),):
        raise ValueError(f"angles have shape {angles.shape}, expected (..., {len(up)}) for order {order!r}")
    out = _axis_rotation(angles[..., 0], _AXES[up[0]])
    for n, axis in enumerate(up[1:], start=1):
        out = out @ _axis_rotation(angles[..., n], _AXES[axis])
    return out


def matrix_to_euler(rotmats: np.ndarray, order: str) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix` for the 6 Tait-Bryan orders.

    The middle angle is in [-90, 90]; the others in (-180, 180]. At gimbal lock (middle angle
    = +-90) the last angle is set to 0 and the first absorbs the remaining rotation.

    Args:
        rotmats: (..., 3, 3) rotation matrices.
        order: one of "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX".

    Returns:
        (..., 3) angles in degrees, in the same order as ``order``.
    """
    up = _check_order(order, tait_bryan=True)
    r = np.asarray(rotmats, dtype=np.float64)
    if r.shape[-2:] != (3, 3):
        raise ValueError(f"rotmats have shape {r.shape}, expected (..., 3, 3)")
    i, j, k = (_AXES[a] for a in up)
    s = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for cyclic orders (XYZ, YZX, ZXY)
    cos_b = np.hypot(r[..., i, i], r[..., i, j])
    b = np.arctan2(s * r[..., i, k], cos_b)
    a = np.arctan2(-s * r[..., j, k], r[..., k, k])
    c = np.arctan2(-s * r[..., i, j], r[..., i, i])
    locked = cos_b < 1e-7
    if np.any(locked):  # R = R_A(a) R_B(+-90): take c = 0 and read a off column j
        a = np.where(locked, np.arctan2(s * r[..., k, j], r[..., j, j]), a)
        c = np.where(locked, 0.0, c)
    return np.degrees(np.stack([a, b, c], axis=-1))


def _euler_to_quat(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """(..., n) degrees -> (..., 4) unit quaternions (w, x, y, z), same composition as euler_to_matrix."""
    half = np.radians(angles_deg) / 2
    out = np.zeros(half.shape[:-1] + (4,))
    out[..., 0] = 1.0
    for n, axis in enumerate(order):
        q = np.zeros_like(out)
        q[..., 0] = np.cos(half[..., n])
        q[..., 1 + _AXES[axis]] = np.sin(half[..., n])
        out = _quat_mul(out, q)
    return out


def _quat_mul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions (w, x, y, z)."""
    pw, pv, qw, qv = p[..., :1], p[..., 1:], q[..., :1], q[..., 1:]
    w = pw * qw - np.sum(pv * qv, axis=-1, keepdims=True)
    v = pw * qv + qw * pv + np.cross(pv, qv)
    return np.concatenate([w, v], axis=-1)


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shortest-path spherical interpolation of (..., 4) unit quaternions; t broadcasts as (..., 1)."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    theta = np.arccos(np.clip(np.abs(dot), -1.0, 1.0))
    sin = np.sin(theta)
    small = sin < 1e-9
    w0 = np.where(small, 1 - t, np.sin((1 - t) * theta) / np.where(small, 1, sin))
    w1 = np.where(small, t, np.sin(t * theta) / np.where(small, 1, sin))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def nearest_euler(angles: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """The Euler angles of the same rotation closest to ``guide``, for continuous curves over time.

    Of the two Tait-Bryan solutions (a, b, c) ~ (a+180, 180-b, c+180), each shifted by multiples of 360,
    pick per entry the one closest to ``guide`` (L1 distance); shapes (..., 3), degrees, any of the six
    Tait-Bryan orders. Used when reading BVH channels and when exporting rotations."""
    alt = angles * np.array([1.0, -1.0, 1.0]) + np.array([180.0, 180.0, 180.0])
    best, best_dist = None, None
    for cand in (angles, alt):
        cand = cand + 360.0 * np.round((guide - cand) / 360.0)
        dist = np.abs(cand - guide).sum(axis=-1, keepdims=True)
        if best is None:
            best, best_dist = cand, dist
        else:
            best = np.where(dist < best_dist, cand, best)
    return best


# ----------------------------------------------------------------------------- data class


@functools.lru_cache(maxsize=256)
def _channel_problem(names: tuple[str, ...]) -> str | None:
    """Why a joint's channel list is invalid, or None."""
    seen = set()
    for name in names:
        if not _CHANNEL_RE.fullmatch(name):
            return f"unknown channel name {name!r} (expected X/Y/Z + position/rotation)"
        key = name.lower()
        if key in seen:
            return f"channel {name!r} listed twice"
        seen.add(key)
    return None


def _dfs_order_problem(parents: np.ndarray) -> str | None:
    """Why ``parents`` is not a depth-first (file) order, or None."""
    stack: list[int] = []
    for j, p in enumerate(parents.tolist()):
        if p == -1:
            stack = [j]
            continue
        if not 0 <= p < j:
            return f"joint {j} has parent {p}; parents must precede their children"
        while stack and stack[-1] != p:
            stack.pop()
        if not stack:
            return f"joint {j} (parent {p}) breaks depth-first order"
        stack.append(j)
    return None


def resampled_frame_count(frames: int, frame_time: float, fps: float) -> int:
    """Frames of a clip of `frames` frames, `frame_time` seconds apart, resampled to `fps` over the same
    duration (what `BVH.resampled` makes): floor((frames - 1) * frame_time * fps) + 1, 0 for an empty clip."""
    if frames < 1:
        return 0
    return int(np.floor((frames - 1) * frame_time * fps + 1e-6)) + 1


@dataclass(eq=False)
class BVH:
    """A BVH clip: hierarchy plus raw motion channels (degrees for rotations).

    Attributes:
        names: joint names in depth-first file order (End Sites excluded).
        parents: (J,) int64 parent index, -1 for roots.
        offsets: (J, 3) float64 OFFSET of each joint.
        channels: per joint, channel names exactly as in the file.
        end_sites: joint index -> (3,) End Site offset.
        frame_time: seconds per frame.
        motion: (F, C) float64 channel values in file order.
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_sites: dict[int, np.ndarray]
    frame_time: float
    motion: np.ndarray
    _starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        self.channels = [tuple(str(c) for c in ch) for ch in self.channels]
        self.end_sites = {int(j): np.asarray(v, dtype=np.float64).reshape(3) for j, v in self.end_sites.items()}
        self.frame_time = float(self.frame_time)
        self.motion = np.asarray(self.motion, dtype=np.float64)
        self._validate()
        self._starts = np.cumsum([0] + [len(ch) for ch in self.channels])

    def _validate(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        """Why the fields are inconsistent, or None."""
        J = len(self.names)
        if not (len(self.parents) == len(self.offsets) == len(self.channels) == J):
            return (
                f"inconsistent joint counts: {J} names, {len(self.parents)} parents, "
                f"{len(self.offsets)} offsets, {len(self.channels)} channel lists"
            )
        for name in self.names:  # must survive "JOINT <name>" on one line, tokens re-joined by " "
            if not name or "{" in name or "}" in name or " ".join(name.split()) != name:
                return f"joint name {name!r} cannot be written to a BVH file"
        for j, ch in enumerate(self.channels):
            if problem := _channel_problem(ch):
                return f"joint {self.names[j]!r}: {problem}"
        n_chan = sum(len(ch) for ch in self.channels)
        if self.motion.ndim != 2 or self.motion.shape[1] != n_chan:
            return f"motion has shape {self.motion.shape}, expected (F, {n_chan}) for the channels"
        if any(not 0 <= j < J for j in self.end_sites):
            return f"end_sites keys {sorted(self.end_sites)} out of range for {J} joints"
        if not (np.isfinite(self.frame_time) and MIN_FRAME_TIME <= self.frame_time <= MAX_FRAME_TIME):
            return f"frame_time must be between {MIN_FRAME_TIME:g} and {MAX_FRAME_TIME:g} s, got {self.frame_time}"
        return _dfs_order_problem(self.parents)

    # -- sizes and channel lookup

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def channel_slice(self, j: int) -> slice:
        """Columns of joint ``j`` in :attr:`motion`."""
        return slice(int(self._starts[j]), int(self._starts[j + 1]))

    def rotation_order(self, j: int) -> str:
        """Axis letters of joint ``j``'s rotation channels in listed order, e.g. "ZXY"; "" if none."""
        return "".join(c[0].upper() for c in self.channels[j] if c.lower().endswith("rotation"))

    def _columns(self, j: int, kind: str) -> list[tuple[int, int]]:
        """(axis, motion column) of joint j's channels of ``kind`` ("position"/"rotation")."""
        start = int(self._starts[j])
        return [(_AXES[c[0].upper()], start + n) for n, c in enumerate(self.channels[j]) if c.lower().endswith(kind)]

    # -- kinematics

    def local_rotations(self) -> np.ndarray:
        """Local joint rotations, identity where a joint has no rotation channels.

        Returns:
            (F, J, 3, 3) float64; ``R = R_A(a) @ R_B(b) @ R_C(c)`` for channels listed A, B, C.
        """
        out = np.broadcast_to(np.eye(3), (self.num_frames, self.num_joints, 3, 3)).copy()
        groups: dict[str, tuple[list[int], list[list[int]]]] = {}
        for j in range(self.num_joints):
            order = self.rotation_order(j)
            if order:
                joints, cols = groups.setdefault(order, ([], []))
                joints.append(j)
                cols.append([col for _, col in self._columns(j, "rotation")])
        for order, (joints, cols) in groups.items():  # one vectorized call per distinct order
            out[:, joints] = euler_to_matrix(self.motion[:, np.array(cols)], order)
        return out

    def local_translations(self) -> np.ndarray:
        """Local joint translations: the OFFSET, with position channels replacing its components.

        Returns:
            (F, J, 3) float64.
        """
        out = np.broadcast_to(self.offsets, (self.num_frames, self.num_joints, 3)).copy()
        triples = [(j, axis, col) for j in range(self.num_joints) for axis, col in self._columns(j, "position")]
        if triples:
            joints, axes, cols = (np.array(t) for t in zip(*triples, strict=True))
            out[:, joints, axes] = self.motion[:, cols]
        return out

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World joint positions and rotations (vectorized over frames, loop over joints).

        ``Rw[j] = Rw[parent] @ Rl[j]`` and ``pw[j] = pw[parent] + Rw[parent] @ tl[j]``.

        Returns:
            positions (F, J, 3) and rotations (F, J, 3, 3), float64, in file units.
        """
        rot_l = np.ascontiguousarray(self.local_rotations().swapaxes(0, 1))  # (J, F, 3, 3)
        pos_l = np.ascontiguousarray(self.local_translations().swapaxes(0, 1))  # (J, F, 3)
        rot_w = np.empty_like(rot_l)
        pos_w = np.empty_like(pos_l)
        for j, p in enumerate(self.parents.tolist()):
            if p < 0:
                rot_w[j], pos_w[j] = rot_l[j], pos_l[j]
            else:
                rot_w[j] = rot_w[p] @ rot_l[j]
                pos_w[j] = pos_w[p] + (rot_w[p] @ pos_l[j][..., None])[..., 0]
        return pos_w.swapaxes(0, 1), rot_w.swapaxes(0, 1)

    def end_site_positions(self) -> dict[int, np.ndarray]:
        """World position of each End Site, keyed by its joint: joint index -> (F, 3)."""
        if not self.end_sites:
            return {}
        pos, rot = self.forward_kinematics()
        return {j: pos[:, j] + rot[:, j] @ off for j, off in self.end_sites.items()}

    def resampled(self, fps: float) -> BVH:
        """The clip at another frame rate, over the same duration (starting at frame 0).

        Position channels are interpolated linearly, 3-axis rotations by quaternion slerp
        (written back in each joint's order, kept continuous with the source angles); other
        rotation channels linearly. Frames that coincide with source frames are copied exactly.

        Args:
            fps: target frames per second.

        Returns:
            A new :class:`BVH` with ``frame_time = 1 / fps`` and (F', C) motion.
        """
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, got {fps}")
        F = self.num_frames
        count = resampled_frame_count(F, self.frame_time, fps)
        u = np.arange(count) / fps / self.frame_time  # fractional source frame of each new frame
        u = np.where(np.abs(u - np.round(u)) < 1e-6, np.round(u), u)
        i0 = np.minimum(np.floor(u).astype(np.int64), max(F - 2, 0))
        i1 = np.minimum(i0 + 1, F - 1)
        t = (u - i0)[:, None]
        m0, m1 = self.motion[i0], self.motion[i1]
        motion = m0 + t * (m1 - m0)  # linear for every channel first
        for j in range(self.num_joints):
            order = self.rotation_order(j)
            if len(order) != 3 or len(set(order)) != 3:
                continue
            cols = [col for _, col in self._columns(j, "rotation")]
            q = _slerp(_euler_to_quat(m0[:, cols], order), _euler_to_quat(m1[:, cols], order), t)
            angles = matrix_to_euler(_quat_to_matrix(q), order)
            motion[:, cols] = nearest_euler(angles, motion[:, cols])
        motion[t[:, 0] == 0] = m0[t[:, 0] == 0]
        motion[t[:, 0] == 1] = m1[t[:, 0] == 1]
        return BVH(self.names, self.parents, self.offsets, self.channels, self.end_sites, 1.0 / fps, motion)

    # -- construction

    @classmethod
    def from_rotations(
        cls,
        names: Sequence[str],
        parents: Sequence[int] | np.ndarray,
        offsets: np.ndarray,
        rotations: np.ndarray,
        root_positions: np.ndarray,
        frame_time: float,
        order: str = "ZXY",
        end_sites: dict[int, np.ndarray] | None = None,
    ) -> BVH:
        """Build a clip from local rotation matrices.

        Roots get 6 channels (X/Y/Zposition, then rotations in ``order``); other joints 3 rotation
        channels in ``order``. Root position channels replace the root OFFSET.

        Args:
            names: J joint names, depth-first order.
            parents: (J,) parent indices, -1 for roots.
            offsets: (J, 3) joint offsets.
            rotations: (F, J, 3, 3) local rotation matrices.
            root_positions: (F, 3) root translation (or (F, R, 3) for R roots).
            frame_time: seconds per frame.
            order: Tait-Bryan rotation channel order, e.g. "ZXY".
            end_sites: optional joint index -> (3,) End Site offset.
        """
        order = _check_order(order, tait_bryan=True)
        parents = np.asarray(parents, dtype=np.int64)
        rotations = np.asarray(rotations, dtype=np.float64)
        num_frames = rotations.shape[0]
        if rotations.shape != (num_frames, len(names), 3, 3):
            raise ValueError(f"rotations have shape {rotations.shape}, expected (F, {len(names)}, 3, 3)")
        roots = np.flatnonzero(parents < 0)
        root_pos = np.asarray(root_positions, dtype=np.float64).reshape(num_frames, len(roots), 3)
        angles = matrix_to_euler(rotations, order)  # (F, J, 3)
        rot_names = tuple(f"{a}rotation" for a in order)
        channels, columns = [], []
        for j in range(len(names)):
            if parents[j] < 0:
                channels.append(("Xposition", "Yposition", "Zposition") + rot_names)
                columns.append(root_pos[:, int(np.searchsorted(roots, j))])
            else:
                channels.append(rot_names)
            columns.append(angles[:, j])
        motion = np.concatenate(columns, axis=1) if columns else np.zeros((num_frames, 0))
        return cls(list(names), parents, offsets, channels, dict(end_sites or {}), frame_time, motion)


# ----------------------------------------------------------------------------- parsing


class _Tokens:
    """Hierarchy tokens with their 1-based line numbers; braces are tokens of their own."""

    def __init__(self, lines: list[str], source: str, end_line: int, end_desc: str) -> None:
        self.items = [(m.group(), n) for n, line in enumerate(lines, 1) for m in _TOKEN_RE.finditer(line)]
        self.pos = 0
        self.source = source
        self.end_line = end_line  # where the hierarchy ends (MOTION line or end of file)
        self.end_desc = end_desc

    def error(self, line: int, reason: str) -> BVHError:
        return BVHError(self.source, line, reason)

    def peek(self) -> tuple[str, int] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, expected: str) -> tuple[str, int]:
        item = self.peek()
        if item is None:
            raise self.error(self.end_line, f"expected {expected}, found {self.end_desc}")
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.take(repr(word))
        if tok.upper() != word.upper():
            raise self.error(line, f"expected {word!r}, found {tok!r}")
        return line

    def rest_of_line(self, line: int) -> list[str]:
        """Consume the tokens left on ``line`` (stopping at a brace)."""
        out = []
        while (item := self.peek()) is not None and item[1] == line and item[0] not in "{}":
            out.append(item[0])
            self.pos += 1
        return out


class _Hierarchy:
    """Accumulates joints while the hierarchy is parsed."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[list[float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.end_sites: dict[int, np.ndarray] = {}


def _parse_offset(tokens: _Tokens, line: int) -> list[float]:
    values = tokens.rest_of_line(line)
    if len(values) != 3:
        raise tokens.error(line, f"OFFSET needs 3 numbers, found {len(values)}")
    try:
        return [float(v) for v in values]
    except ValueError:
        raise tokens.error(line, f"OFFSET has a non-numeric value: {' '.join(values)!r}") from None


def _parse_channels(tokens: _Tokens, line: int) -> tuple[str, ...]:
    words = tokens.rest_of_line(line)
    if not words or not words[0].isdigit():
        raise tokens.error(line, f"CHANNELS must start with a count, found {_clip(' '.join(words))}")
    count, names = int(words[0]), tuple(words[1:])
    if count != len(names):
        raise tokens.error(line, f"CHANNELS says {count} but lists {len(names)} names")
    problem = _channel_problem(names)
    if problem:
        raise tokens.error(line, problem)
    return names


def _parse_end_site(tokens: _Tokens, hier: _Hierarchy, joint: int, line: int) -> None:
    if [w.upper() for w in tokens.rest_of_line(line)] != ["SITE"]:
        raise tokens.error(line, "expected 'End Site'")
    if joint in hier.end_sites:
        raise tokens.error(line, f"joint {hier.names[joint]!r} has more than one End Site")
    tokens.expect("{")
    tok, off_line = tokens.take("'OFFSET'")
    if tok.upper() != "OFFSET":
        raise tokens.error(off_line, f"expected 'OFFSET' in End Site, found {tok!r}")
    hier.end_sites[joint] = np.array(_parse_offset(tokens, off_line))
    tokens.expect("}")


def _parse_joint(tokens: _Tokens, hier: _Hierarchy, parent: int, kind: str, line: int) -> None:
    """Parse ``ROOT|JOINT name { ... }`` after its keyword (on ``line``)."""
    name = " ".join(tokens.rest_of_line(line))
    if not name:
        raise tokens.error(line, f"{kind} without a name")
    j = len(hier.names)
    hier.names.append(name)
    hier.parents.append(parent)
    hier.offsets.append([])
    hier.channels.append(())
    open_line = tokens.expect("{")
    while True:
        tok, tline = tokens.take(f"'}}' to close {kind} {name!r} (opened on line {open_line})")
        word = tok.upper()
        if word == "OFFSET":
            hier.offsets[j] = _parse_offset(tokens, tline)
        elif word == "CHANNELS":
            hier.channels[j] = _parse_channels(tokens, tline)
        elif word == "JOINT":
            _parse_joint(tokens, hier, j, "JOINT", tline)
        elif word == "END":
            _parse_end_site(tokens, hier, j, tline)
        elif tok == "}":
            break
        else:
            raise tokens.error(tline, f"unexpected {tok!r} in {kind} {name!r}")
    if not hier.offsets[j]:
        raise tokens.error(tline, f"{kind} {name!r} has no OFFSET")


def _parse_hierarchy(tokens: _Tokens) -> _Hierarchy:
    hier = _Hierarchy()
    tokens.expect("HIERARCHY")
    while tokens.peek() is not None:
        tok, line = tokens.take("ROOT")
        if tok.upper() != "ROOT":
            raise tokens.error(line, f"expected 'ROOT' or 'MOTION', found {tok!r}")
        _parse_joint(tokens, hier, -1, "ROOT", line)
    if not hier.names:
        raise tokens.error(tokens.end_line, f"no ROOT joint before {tokens.end_desc}")
    return hier


def _next_content_line(text: str, pos: int, line: int) -> tuple[str | None, int, int]:
    """The next non-blank line at/after ``pos``: (content or None at EOF, its line number, next pos)."""
    if pos > len(text):  # the previous line was the last one and had no newline
        return None, line - 1, len(text)
    while True:
        end = text.find("\n", pos)
        last = end < 0
        end = len(text) if last else end
        content = text[pos:end]
        if content.strip():
            return content, line, end + 1
        if last:
            return None, line, len(text)
        pos, line = end + 1, line + 1


def _clip(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, shortened for error messages."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_motion_header(text: str, pos: int, line: int, source: str) -> tuple[int, float, int, int]:
    """Parse ``Frames:`` and ``Frame Time:``; returns (frames, frame_time, data pos, data line)."""
    values = []
    for regex, label in ((_FRAMES_RE, "Frames: N"), (_FRAME_TIME_RE, "Frame Time: SECONDS")):
        content, line, pos = _next_content_line(text, pos, line)
        m = regex.fullmatch(content) if content is not None else None
        if m is None:
            found = "end of file" if content is None else _clip(content.strip())
            raise BVHError(source, line, f"expected '{label}', found {found}")
        values.append((m.group(1), line))
        line += 1
    (frames_s, frames_line), (time_s, time_line) = values
    if not frames_s.isdigit():
        raise BVHError(source, frames_line, f"Frames must be a non-negative integer, found {frames_s!r}")
    try:
        frame_time = float(time_s)
    except ValueError:
        raise BVHError(source, time_line, f"Frame Time must be a number, found {time_s!r}") from None
    if not (np.isfinite(frame_time) and MIN_FRAME_TIME <= frame_time <= MAX_FRAME_TIME):
        raise BVHError(
            source,
            time_line,
            f"Frame Time must be between {MIN_FRAME_TIME:g} and {MAX_FRAME_TIME:g} "
            f"seconds (0.1 to 10,000 fps), found {time_s!r}",
        )
    return int(frames_s), frame_time, pos, line


def _motion_error(body: str, first_line: int, frames: int, width: int, source: str) -> BVHError:
    """Slow line-by-line scan of the motion block that locates the first problem."""
    lines = body.split("\n")
    found = 0
    for n, raw in enumerate(lines, first_line):
        tokens = raw.split()
        if not tokens:
            continue
        if found == frames:
            return BVHError(source, n, f"found more motion lines than Frames: {frames}")
        if len(tokens) != width:
            return BVHError(source, n, f"expected {width} values, found {len(tokens)}")
        try:
            np.array(tokens, dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            return BVHError(source, n, f"non-numeric value {bad!r}")
        found += 1
    eof_line = first_line + len(lines) - 1
    return BVHError(source, eof_line, f"unexpected end of file: Frames: {frames} but only {found} motion lines")


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse_motion(body: str, first_line: int, frames: int, width: int, source: str) -> np.ndarray:
    """Fast path: one split + one numpy conversion; the slow scan only runs to explain a failure."""
    if width == 0:
        if body.strip():
            raise _motion_error(body, first_line, frames, width, source)
        return np.zeros((frames, 0))
    counts = [len(s.split()) for s in body.split("\n")]
    rows = [c for c in counts if c]
    if len(rows) != frames or any(c != width for c in rows):
        raise _motion_error(body, first_line, frames, width, source)
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise _motion_error(body, first_line, frames, width, source) from None
    return values.reshape(frames, width)


def parse_bvh(text: str, source: str = "<string>") -> BVH:
    """Parse BVH text.

    Args:
        text: file content (LF, CRLF or CR line endings).
        source: name used in error messages.

    Returns:
        The parsed :class:`BVH`.

    Raises:
        BVHError: ``"SOURCE:LINE: reason"`` for any malformed input.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.removeprefix("\ufeff")
    m = _MOTION_RE.search(text)
    header = text[: m.start()] if m else text
    header_lines = header.split("\n")
    if m:
        end_line, end_desc = header.count("\n") + 1, "'MOTION'"
    else:
        end_line, end_desc = text.count("\n") + 1, "end of file (no MOTION section)"
    tokens = _Tokens(header_lines, source, end_line, end_desc)
    hier = _parse_hierarchy(tokens)
    if not m:
        raise BVHError(source, end_line, "missing MOTION section")
    frames, frame_time, data_pos, data_line = _parse_motion_header(text, m.end() + 1, end_line + 1, source)
    width = sum(len(ch) for ch in hier.channels)
    motion = _parse_motion(text[data_pos:], data_line, frames, width, source)
    return BVH(hier.names, hier.parents, hier.offsets, hier.channels, hier.end_sites, frame_time, motion)


def read_bvh(path: str | Path) -> BVH:
    """Read a BVH file; errors are :class:`BVHError` naming ``path`` and the line.

    Args:
        path: file to read (UTF-8, falling back to Latin-1).

    Returns:
        The parsed :class:`BVH`.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_bvh(text, source=str(path))


# ----------------------------------------------------------------------------- writing


def _exact(x: float) -> str:
    """Shortest decimal that reads back to exactly ``x``."""
    return np.format_float_positional(float(x), unique=True, trim="0")


def _children(parents: np.ndarray) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in range(len(parents))]
    for j, p in enumerate(parents.tolist()):
        if p >= 0:
            kids[p].append(j)
    return kids


def _format_joint(bvh: BVH, j: int, kids: list[list[int]], depth: int, out: list[str]) -> None:
    pad = "\t" * depth
    keyword = "ROOT" if bvh.parents[j] < 0 else "JOINT"
    out.append(f"{pad}{keyword} {bvh.names[j]}\n{pad}{{\n")
    out.append(f"{pad}\tOFFSET {' '.join(_exact(v) for v in bvh.offsets[j])}\n")
    out.append(f"{pad}\tCHANNELS {' '.join([str(len(bvh.channels[j])), *bvh.channels[j]])}\n")
    for child in kids[j]:
        _format_joint(bvh, child, kids, depth + 1, out)
    if j in bvh.end_sites:
        off = " ".join(_exact(v) for v in bvh.end_sites[j])
        out.append(f"{pad}\tEnd Site\n{pad}\t{{\n{pad}\t\tOFFSET {off}\n{pad}\t}}\n")
    out.append(f"{pad}}}\n")


def _format_header(bvh: BVH) -> str:
    kids = _children(bvh.parents)
    out = ["HIERARCHY\n"]
    for root in np.flatnonzero(bvh.parents < 0).tolist():
        _format_joint(bvh, root, kids, 0, out)
    out.append(f"MOTION\nFrames: {bvh.num_frames}\nFrame Time: {_exact(bvh.frame_time)}\n")
    return "".join(out)


def _format_motion_rows(rows: np.ndarray, precision: int) -> str:
    """(n, C) values -> n text lines, ``%.{precision}f`` with trailing zeros (and "-0") stripped."""
    if rows.shape[1] == 0:
        return "\n" * rows.shape[0]
    line = " ".join([f"%.{precision}f"] * rows.shape[1]) + "\n"
    text = "".join(line % tuple(r) for r in rows.tolist())
    if precision > 0:
        text = _TRAILING_ZEROS_RE.sub("", text)
    return _NEG_ZERO_RE.sub("0", text)


def _iter_bvh_text(bvh: BVH, precision: int) -> Iterator[str]:
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    yield _format_header(bvh)
    for start in range(0, bvh.num_frames, _CHUNK_FRAMES):
        yield _format_motion_rows(bvh.motion[start : start + _CHUNK_FRAMES], precision)


def format_bvh(bvh: BVH, precision: int = 6) -> str:
    """BVH text for ``bvh``: tab indents, exact offsets/frame time, motion to ``precision`` decimals.

    Args:
        bvh: the clip.
        precision: decimals kept for motion values (error <= 0.5 * 10**-precision).

    Returns:
        The file content (LF line endings).
    """
    return "".join(_iter_bvh_text(bvh, precision))


def write_bvh(path: str | Path, bvh: BVH, precision: int = 6) -> None:
    """Write ``bvh`` atomically (`motionlcm.io.atomic.write_atomic`: a temporary file, then a rename).

    On any failure the temporary file is removed and an existing ``path`` is left untouched.

    Args:
        path: destination file.
        bvh: the clip.
        precision: decimals kept for motion values.
    """

    def write(handle) -> None:
        for chunk in _iter_bvh_text(bvh, precision):
            handle.write(chunk.encode("utf-8"))

    write_bytes_atomic(path, write, durable=True)  # flushed to disk before the rename, as before
