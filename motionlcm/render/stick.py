"""Stick-figure animations of motions: MP4 (ffmpeg) or GIF (Pillow), and still frame strips (PNG).

Motions are joint positions (T, J, 3) in metres, **y up** (HumanML3D's 22-joint SMPL skeleton, or any BVH
rig given its ``parents``). Matplotlib's 3-D axes are z-up, so a point (x, y, z) is drawn at
(x, -z, y): a proper rotation (no mirroring), so the subject's left (+x in HumanML3D) stays on their left.

Everything is drawn on a private :class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot, no
global backend switch, safe headless. Each frame only updates the artists' data (lines, floor grid,
trajectory, time label); the figure is never rebuilt. See docs/rendering.md.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from motionlcm.io.atomic import write_atomic
from motionlcm.render.movie import GifWriter, Mp4Writer, find_ffmpeg, write_movie

__all__ = [
    "SMPL_CHAIN_COLORS",
    "GifWriter",
    "Mp4Writer",
    "body_root",
    "chains_from_parents",
    "find_ffmpeg",
    "render_animation",
    "render_frames",
]

# HumanML3D's chain order (skeleton.KINEMATIC_CHAINS): right leg, left leg, spine/head, right arm, left arm.
# Right side warm, left side cool, trunk dark.
SMPL_CHAIN_COLORS: tuple[str, ...] = ("#d62728", "#1f77b4", "#303030", "#ff7f0e", "#17becf")
_RIGHT_COLORS = ("#d62728", "#ff7f0e", "#e377c2", "#8c564b")  # leg, arm, others
_LEFT_COLORS = ("#1f77b4", "#17becf", "#9467bd", "#2ca02c")
_CENTER_COLOR = "#303030"
_PALETTE = ("#d62728", "#1f77b4", "#303030", "#ff7f0e", "#17becf", "#2ca02c", "#9467bd", "#8c564b",
            "#e377c2", "#bcbd22")  # fmt: skip
_FLOOR_COLOR = "#e9e9e9"
_GRID_COLOR = "#b8b8b8"
_TRAJ_COLOR = "#7a3fb0"

_FORMATS = (".mp4", ".gif")
_ZOOM = 1.15  # crops some of the empty corners of the view box (more would clip raised hands)
_LIFT = 0.0  # axes not raised: a raised axes clips the head of tall poses at the panel top
_PROJ = ("persp", 1.0)  # mild perspective
_MAX_WRAP = 48  # title characters per line (at the default 5-inch width)


# ----------------------------------------------------------------------------- skeleton / colours


def chains_from_parents(parents: Sequence[int]) -> list[tuple[int, ...]]:
    """Split a joint tree into chains: a chain runs down single-child joints and every branch starts a new
    chain at the branching joint (so chains share that joint and the bones connect). Roots start chains.

    Returns chains in depth-first order; every bone (parent, child) belongs to exactly one chain.
    """
    parents = [int(p) for p in parents]
    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    chains: list[tuple[int, ...]] = []
    stack = [(j, (j,)) for j in reversed(range(len(parents))) if parents[j] < 0]
    while stack:
        j, chain = stack.pop()
        kids = children[j]
        if len(kids) == 1:
            stack.append((kids[0], chain + (kids[0],)))
            continue
        if len(chain) > 1:
            chains.append(chain)
        for k in reversed(kids):
            stack.append((k, (j, k)))
    return chains


_TOKEN_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _side(name: str) -> int:
    """+1 for a left joint name, -1 for right, 0 when the name says neither (``UpperArm_L``, ``LeftUpLeg``,
    ``l_hip``, ``LHipJoint``, ``mixamorig:RightHand``)."""
    tokens = {t.lower() for t in _TOKEN_RE.findall(name)}
    left, right = bool(tokens & {"l", "left"}), bool(tokens & {"r", "right"})
    return int(left) - int(right)


def _chain_colors(
    chains: Sequence[Sequence[int]], names: Sequence[str] | None, rest: np.ndarray, root: int
) -> list[str]:
    """Colours for a non-SMPL skeleton: by side from the joint names (right warm, left cool, trunk dark),
    a side's limbs told apart by where they branch (from the body root or below it: a leg; higher: an arm).
    Without names: a palette."""
    if not names:
        return [_PALETTE[i % len(_PALETTE)] for i in range(len(chains))]
    root_y = rest[root, 1]
    used: dict[int, int] = {1: 0, -1: 0}
    colors = []
    for chain in chains:
        sides = {_side(names[j]) for j in chain[1:]} - {0}
        side = sides.pop() if len(sides) == 1 else 0
        if side == 0:
            colors.append(_CENTER_COLOR)
            continue
        table = _LEFT_COLORS if side > 0 else _RIGHT_COLORS
        if chain[0] == root or rest[chain[0], 1] <= root_y:  # a leg
            colors.append(table[0])
        else:
            colors.append(table[1 + min(used[side], len(table) - 2)])
            used[side] += 1
    return colors


def body_root(parents: Sequence[int]) -> int:
    """The joint the body hangs from: descending from the first root, the first joint with >= 2 children
    (skips helper nodes such as a ground-projected ``joint_Root`` above the hips); the root for a chain."""
    parents = [int(p) for p in parents]
    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    j = next(i for i, p in enumerate(parents) if p < 0)
    while len(children[j]) == 1:
        j = children[j][0]
    return j if children[j] else next(i for i, p in enumerate(parents) if p < 0)


@dataclass
class _Skeleton:
    chains: list[tuple[int, ...]]
    colors: list[str]
    root: int  # joint whose floor projection is the trajectory and that the camera follows
    joints: list[int]  # joints that frame the view (drawn ones)


def _resolve_skeleton(
    joints: np.ndarray,
    parents: Sequence[int] | None,
    chains: Sequence[Sequence[int]] | None,
    colors: Sequence[str] | None,
    joint_names: Sequence[str] | None,
) -> _Skeleton:
    from motionlcm.data.skeleton import KINEMATIC_CHAINS, PARENTS

    num_joints = joints.shape[1]
    if parents is not None and len(parents) != num_joints:
        raise ValueError(f"parents has {len(parents)} entries for {num_joints} joints")
    smpl = num_joints == len(PARENTS) and (parents is None or [int(p) for p in parents] == list(PARENTS))
    root = 0
    if parents is not None and not smpl:
        parents = [int(p) for p in parents]
        if any(p >= j for j, p in enumerate(parents)) or parents[0] >= 0:
            raise ValueError("parents must list each joint after its parent, with -1 for roots")
        root = body_root(parents)
    if chains is None:
        if smpl:
            chains = KINEMATIC_CHAINS
            colors = colors if colors is not None else SMPL_CHAIN_COLORS
        elif parents is None:
            raise ValueError(f"a {num_joints}-joint skeleton needs parents (or chains) to draw its bones")
        else:
            above = set()  # helper nodes above the body root are not drawn
            j = parents[root]
            while j >= 0:
                above.add(j)
                j = parents[j]
            chains = [c for c in chains_from_parents(parents) if not set(c) <= above | {root}]
    chains = [tuple(int(j) for j in c) for c in chains]
    for c in chains:
        if len(c) < 2 or min(c) < 0 or max(c) >= num_joints:
            raise ValueError(f"chain {c} must list >= 2 joint indices in [0, {num_joints})")
    if not chains:
        raise ValueError("no bones to draw")
    if colors is None:
        colors = _chain_colors(chains, joint_names if not smpl else None, joints[0], root)
    if len(colors) < len(chains):
        raise ValueError(f"{len(colors)} colours for {len(chains)} chains")
    drawn = sorted({j for c in chains for j in c} | {root})
    return _Skeleton(chains=chains, colors=list(colors[: len(chains)]), root=root, joints=drawn)


# ----------------------------------------------------------------------------- scene


_HINT_COLOR = "#d62728"  # control targets
_MESH_COLOR = (0.78, 0.80, 0.84)  # a body mesh's base colour (RGB), shaded per face


def _to_mpl(p: np.ndarray) -> np.ndarray:
    """(..., 3) y-up (x, y, z) -> matplotlib z-up (x, -z, y); a rotation, not a mirror."""
    return np.stack((p[..., 0], -p[..., 2], p[..., 1]), axis=-1)


def _nice_step(span: float) -> float:
    """A 1/2/2.5/5 x 10^k grid spacing giving about 4 squares over ``span``."""
    raw = max(span / 4.0, 1e-9)
    base = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * base >= raw * 0.999:
            return m * base
    return 10.0 * base  # pragma: no cover


def _check_joints(joints: Any) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(f"joints must have shape (T, J, 3) with T >= 1 and J >= 2, got {np.shape(joints)}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"joints contain NaN/inf (first at frame {bad[0]}, joint {bad[1]})")
    return arr


@dataclass
class _Layout:
    """Camera and floor for a whole clip (y-up coordinates)."""

    centers: np.ndarray  # (T, 2) xz box centre per frame
    radius: float  # half size of the view box
    floor: float  # floor height
    top: float  # height of the view box above the floor
    step: float  # grid spacing


def _layout(joints: np.ndarray, fps: float, follow: bool, root: int = 0) -> _Layout:
    """Camera box and floor from the drawn ``joints`` (T, J', 3); ``root`` indexes into them."""
    floor = float(joints[..., 1].min())
    height = float(joints[..., 1].max()) - floor
    xz = joints[..., [0, 2]]
    if follow:
        sigma = max(fps * 0.5, 1e-3)  # half a second: no shake from pelvis sway
        pad = int(4 * sigma) + 1  # odd (point) reflection: no lag at the ends of a straight run
        path = np.pad(joints[:, root, [0, 2]], ((pad, pad), (0, 0)), mode="reflect", reflect_type="odd")
        kernel = np.exp(-0.5 * (np.arange(-pad, pad + 1) / sigma) ** 2)
        kernel /= kernel.sum()
        centers = np.stack([np.convolve(path[:, k], kernel, mode="valid") for k in (0, 1)], axis=-1)
    else:
        lo, hi = xz.reshape(-1, 2).min(0), xz.reshape(-1, 2).max(0)
        centers = np.broadcast_to((lo + hi) / 2, (len(joints), 2)).copy()
    spread = float(np.abs(xz - centers[:, None]).max())
    radius = max(spread * 1.08, height * 0.4, 1e-3)
    top = max(height * 1.1, radius)
    return _Layout(centers=centers, radius=radius, floor=floor, top=top, step=_nice_step(2 * radius))


class _Scene:
    """The artists of one 3-D axes; ``update(t)`` moves them to frame t without rebuilding anything."""

    def __init__(
        self,
        fig: Any,
        rect: tuple[float, float, float, float],
        joints: np.ndarray,
        skel: _Skeleton,
        layout: _Layout,
        elev: float,
        azim: float,
        linewidth: float,
        hints: np.ndarray | None = None,
        mesh: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        from matplotlib.transforms import Bbox, TransformedBbox
        from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

        # The 3-D axes are square (centred in their rect) and raised a little, since the top of the view box
        # is mostly empty; their artists are clipped to the whole panel, not to the axes.
        px, py, pw, ph = rect
        ax = fig.add_axes((px, py + _LIFT * ph, pw, ph), projection="3d")
        self.ax, self.layout = ax, layout
        self.joints = _to_mpl(joints)  # (T, J, 3) in matplotlib axes
        self.chains = [np.asarray(c) for c in skel.chains]
        traj = joints[:, skel.root].copy()
        traj[:, 1] = layout.floor
        self.traj = _to_mpl(traj)

        ax.set_proj_type(*_PROJ)
        ax.view_init(elev=elev, azim=azim)
        ax.set_box_aspect((1, 1, layout.top / (2 * layout.radius)), zoom=_ZOOM)
        ax.set_axis_off()
        ax.patch.set_visible(False)  # the axes reach under the title: no background of their own
        ax.computed_zorder = False  # the floor is always under the figure; chains sorted in update()
        e, a = math.radians(elev), math.radians(azim)
        self.eye = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])

        self.floor = Poly3DCollection([np.zeros((4, 3))], facecolor=_FLOOR_COLOR, edgecolor="none", zorder=0)
        ax.add_collection3d(self.floor, autolim=False)
        self.grid = Line3DCollection([], colors=_GRID_COLOR, linewidths=0.6, zorder=1)
        ax.add_collection3d(self.grid, autolim=False)
        (self.path_all,) = ax.plot([], [], [], color=_TRAJ_COLOR, lw=0.8, alpha=0.35, zorder=2)
        (self.path_done,) = ax.plot([], [], [], color=_TRAJ_COLOR, lw=1.6, zorder=3)
        self.lines = [
            ax.plot([], [], [], color=c, lw=linewidth, solid_capstyle="round", zorder=10)[0] for c in skel.colors
        ]
        # a body mesh instead of the sticks (`mesh`: (T, V, 3) vertices, (F, 3) faces), shaded per face
        self.mesh = None
        artists = [self.floor, self.grid, self.path_all, self.path_done, *self.lines]
        if mesh is not None:
            self.mesh = (_to_mpl(mesh[0]), np.asarray(mesh[1]))
            self.body = Poly3DCollection([np.zeros((3, 3))], edgecolor="none", zorder=10)
            ax.add_collection3d(self.body, autolim=False)
            artists.append(self.body)
            for line in self.lines:
                line.set_visible(False)
        # control targets (generated under hints): every target faint, the current frame's bold; a free
        # height is drawn on the floor
        self.hints = None
        if hints is not None:
            targets = np.where(np.isnan(hints[..., 1:2]) & ~np.isnan(hints[..., :1]), layout.floor, hints[..., 1:2])
            self.hints = _to_mpl(np.concatenate([hints[..., :1], targets, hints[..., 2:]], axis=-1))
            (self.hint_all,) = ax.plot(
                [], [], [], ls="none", marker=".", ms=2.5, color=_HINT_COLOR, alpha=0.35, zorder=4
            )
            (self.hint_now,) = ax.plot(
                [], [], [], ls="none", marker="o", ms=6, mfc="none", mec=_HINT_COLOR, mew=1.6, zorder=40
            )
            artists += [self.hint_all, self.hint_now]
        clip = TransformedBbox(Bbox.from_bounds(*rect), fig.transFigure)
        for artist in artists:
            artist.set_clip_box(clip)

    def _draw_mesh(self, t: int) -> None:
        """The body at frame t, shaded per face (Poly3DCollection sorts the triangles by depth itself)."""
        vertices, faces = self.mesh
        triangles = vertices[t][faces]
        self.body.set_verts(triangles)
        self.body.set_facecolor(_mesh_shading(triangles, self.eye))

    def _in_box(self, pts: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
        out = pts.copy()
        out[(np.abs(pts[:, 0] - cx) > r) | (np.abs(pts[:, 1] - cy) > r)] = np.nan
        return out

    def update(self, t: int) -> None:
        lay, ax = self.layout, self.ax
        r, fz = lay.radius, lay.floor
        cx, cy = lay.centers[t, 0], -lay.centers[t, 1]  # box centre in matplotlib x, y
        ax.set_xlim(cx - r, cx + r)
        ax.set_ylim(cy - r, cy + r)
        ax.set_zlim(fz, fz + lay.top)

        x0, x1, y0, y1 = cx - r, cx + r, cy - r, cy + r
        self.floor.set_verts([np.array([[x0, y0, fz], [x1, y0, fz], [x1, y1, fz], [x0, y1, fz]])])
        s = lay.step
        xs = np.arange(math.ceil(x0 / s), math.floor(x1 / s) + 1) * s
        ys = np.arange(math.ceil(y0 / s), math.floor(y1 / s) + 1) * s
        segs = [((x, y0, fz), (x, y1, fz)) for x in xs] + [((x0, y, fz), (x1, y, fz)) for y in ys]
        self.grid.set_segments(segs)

        lift = 1e-3 * r  # trajectory just above the grid
        for line, pts in ((self.path_all, self.traj), (self.path_done, self.traj[: t + 1])):
            p = self._in_box(pts, cx, cy, r)
            line.set_data_3d(p[:, 0], p[:, 1], p[:, 2] + lift)

        if self.hints is not None:
            every = self._in_box(self.hints.reshape(-1, 3), cx, cy, r)
            now = self._in_box(self.hints[t], cx, cy, r)
            self.hint_all.set_data_3d(every[:, 0], every[:, 1], every[:, 2])
            self.hint_now.set_data_3d(now[:, 0], now[:, 1], now[:, 2])

        if self.mesh is not None:
            self._draw_mesh(t)
            return
        frame = self.joints[t]
        depth = [float((frame[c] @ self.eye).mean()) for c in self.chains]
        for rank, k in enumerate(np.argsort(depth)):  # far chains first, near ones on top
            pts = frame[self.chains[k]]
            self.lines[k].set_data_3d(pts[:, 0], pts[:, 1], pts[:, 2])
            self.lines[k].set_zorder(10 + rank)


def _mesh_shading(triangles: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """(F, 4) RGBA per triangle: a light grey lit from over the camera's shoulder (Lambert, two-sided)."""
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    light = eye + np.array([0.0, 0.0, 0.6])
    light /= np.linalg.norm(light)
    shade = 0.35 + 0.6 * np.abs(normals @ light)
    rgb = np.clip(shade[:, None] * np.array(_MESH_COLOR), 0.0, 1.0)
    return np.concatenate([rgb, np.ones((len(rgb), 1))], axis=1)


def _check_mesh(mesh: Any, frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices (T, V, 3), faces (F, 3)) of a body mesh, checked against the motion's length."""
    if mesh is None:
        return None
    vertices, faces = np.asarray(mesh[0], dtype=np.float64), np.asarray(mesh[1])
    if vertices.ndim != 3 or vertices.shape[0] != frames or vertices.shape[2] != 3:
        raise ValueError(f"mesh: vertices must have shape ({frames}, V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu" or faces.size == 0:
        raise ValueError(f"mesh: faces must be (F, 3) vertex indices, got {faces.shape} {faces.dtype}")
    if faces.min() < 0 or faces.max() >= vertices.shape[1]:
        raise ValueError(f"mesh: face indices must lie in 0..{vertices.shape[1] - 1}")
    return vertices, faces


def _check_hints(hints: Any, joints: np.ndarray) -> np.ndarray | None:
    if hints is None:
        return None
    hints = np.asarray(hints, dtype=np.float64)
    if hints.shape != joints.shape:
        raise ValueError(f"hints: expected the joints' shape {joints.shape}, got {hints.shape}")
    return hints


def _check_captions(captions: Any, frames: int) -> list[tuple[int, str]] | None:
    """(start frame, text) pairs sorted by frame, each start inside the motion; None when absent."""
    if not captions:
        return None
    checked = []
    for item in captions:
        start, text = int(item[0]), str(item[1])
        if not 0 <= start < frames:
            raise ValueError(f"captions: start frame {start} is outside the motion's {frames} frames")
        checked.append((start, text))
    return sorted(checked)


def _caption_at(captions: list[tuple[int, str]], frame: int) -> str:
    """The text of the last caption starting at or before `frame` ("" before the first)."""
    current = ""
    for start, text in captions:
        if start > frame:
            break
        current = text
    return current


def _wrap_title(title: str | None, width_in: float) -> str:
    if not title:
        return ""
    chars = max(16, int(_MAX_WRAP * width_in / 5.0))
    return "\n".join(textwrap.wrap(" ".join(str(title).split()), chars)[:4])


def _new_figure(figsize: tuple[float, float], dpi: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _prepare(joints, fps, parents, chains, colors, joint_names, follow) -> tuple[np.ndarray, float, _Skeleton, _Layout]:
    arr = _check_joints(joints)
    fps = float(fps)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if abs(fps - round(fps)) < 1e-3 * fps:  # BVH Frame Time 0.0333333 -> 30.00003 fps -> 30
        fps = float(round(fps))
    skel = _resolve_skeleton(arr, parents, chains, colors, joint_names)
    layout = _layout(arr[:, skel.joints], fps, follow, skel.joints.index(skel.root))
    return arr, fps, skel, layout


# ----------------------------------------------------------------------------- public API


def render_animation(
    joints: Any,
    path: str | os.PathLike,
    title: str | None = None,
    fps: float = 20.0,
    parents: Sequence[int] | None = None,
    chains: Sequence[Sequence[int]] | None = None,
    *,
    colors: Sequence[str] | None = None,
    joint_names: Sequence[str] | None = None,
    figsize: tuple[float, float] = (5.0, 5.0),
    dpi: float = 96.0,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool = True,
    max_fps: float = 30.0,
    linewidth: float = 3.0,
    hints: np.ndarray | None = None,
    captions: Sequence[tuple[int, str]] | None = None,
    mesh: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Render a stick-figure animation of ``joints`` (T, J, 3; metres, y up) to ``path``.

    The output format comes from the suffix: ``.mp4`` (H.264 via ffmpeg: imageio-ffmpeg's binary, else
    ``ffmpeg`` on PATH; with neither, a ``.gif`` is written next to it with a warning) or ``.gif``
    (Pillow). The file is written atomically; the path actually written is returned.

    Args:
        joints: (T, J, 3) joint positions. 22 joints without ``parents`` = HumanML3D's SMPL skeleton.
        path: output file, ``.mp4`` or ``.gif``.
        title: text over the figure (e.g. the prompt), wrapped over up to 4 lines.
        fps: frame rate of ``joints``. Playback is real time: every frame is kept up to ``max_fps``;
            above it every k-th frame is kept (k = ceil(fps / max_fps)) at fps / k, same duration.
        parents: (J,) parent index per joint (-1 for roots) for non-SMPL skeletons (BVH rigs).
        chains: joint-index paths to draw as polylines (default: SMPL chains, or derived from parents).
        colors: one matplotlib colour per chain (default: right warm, left cool, trunk dark).
        joint_names: names used to colour a non-SMPL rig's limbs by side (``_L``, ``Left``, ...).
        figsize, dpi: frame size in inches and dots per inch (rounded to even pixels for H.264).
        elev, azim: camera elevation and azimuth in degrees (matplotlib convention, z-up after mapping;
            the default looks at a +z-facing subject from the front-left).
        follow: the camera box follows the (smoothed) root; else it covers the whole clip.
        max_fps: highest frame rate written.
        linewidth: bone line width in points.
        hints: (T, J, 3) control targets, NaN where free (a generated motion's `Motion.hints`): drawn as
            red markers, the current frame's as rings.
        captions: (start frame, text) per segment of a timeline (`Motion.captions`): the current one is shown
            in place of ``title``.
        mesh: (vertices (T, V, 3), faces (F, 3)): a body mesh drawn instead of the sticks (an SMPL body,
            `motionlcm.export.smpl`), shaded, triangles sorted by depth (about 0.5 s a frame for SMPL's
            13,776 triangles on 2 cores).
    """
    arr, fps, skel, layout = _prepare(joints, fps, parents, chains, colors, joint_names, follow)
    hints = _check_hints(hints, arr)
    captions = _check_captions(captions, len(arr))
    mesh = _check_mesh(mesh, len(arr))
    out = Path(path)
    fmt = out.suffix.lower()
    if fmt not in _FORMATS:
        raise ValueError(f"{out}: unknown output format {out.suffix!r}; expected one of {', '.join(_FORMATS)}")
    ffmpeg = None
    if fmt == ".mp4":
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            gif = out.with_suffix(".gif")
            warnings.warn(f"no ffmpeg found (pip install imageio-ffmpeg, or install ffmpeg): writing {gif} "
                          f"instead of {out}", RuntimeWarning, stacklevel=2)  # fmt: skip
            out, fmt = gif, ".gif"
    if not (max_fps > 0):
        raise ValueError(f"max_fps must be positive, got {max_fps}")
    stride = max(1, math.ceil(fps / max_fps - 1e-9))
    out_fps = fps / stride
    frames = list(range(0, len(arr), stride))

    w_px = 2 * max(8, round(figsize[0] * dpi / 2))  # even pixel sizes for yuv420p
    h_px = 2 * max(8, round(figsize[1] * dpi / 2))
    fig = _new_figure((w_px / dpi, h_px / dpi), dpi)
    texts = [_wrap_title(c, w_px / dpi) for _, c in captions] if captions else [_wrap_title(title, w_px / dpi)]
    n_lines = max((t.count("\n") + 1 if t else 0) for t in texts)
    top = 1.0 - (0.03 + 0.055 * n_lines) * 5.0 / (h_px / dpi) if n_lines else 1.0
    scene = _Scene(fig, (0.0, 0.0, 1.0, top), arr, skel, layout, elev, azim, linewidth, hints, mesh)
    ax = scene.ax
    heading = fig.text(0.5, 0.985, "" if captions else texts[0], ha="center", va="top", fontsize=10)
    clock = fig.text(0.02, 0.015, "", ha="left", va="bottom", fontsize=8, color="#555555", family="monospace")
    n = len(arr)

    def update(i: int) -> None:
        scene.update(i)
        clock.set_text(f"{i / fps:6.2f} s  {i + 1:>{len(str(n))}}/{n}")  # distinct text in every frame
        if captions:
            heading.set_text(_wrap_title(_caption_at(captions, i), w_px / dpi))

    metadata = {"title": " ".join(str(title).split())} if title else {}
    return write_atomic(  # an empty movie is refused
        out,
        lambda tmp: write_movie(fig, (ax, clock, heading), update, frames, out_fps, tmp, fmt, ffmpeg, metadata),
        require_output=True,
    )


def render_frames(
    joints: Any,
    path: str | os.PathLike,
    frames: Sequence[int] | None = None,
    title: str | None = None,
    fps: float = 20.0,
    parents: Sequence[int] | None = None,
    chains: Sequence[Sequence[int]] | None = None,
    *,
    num: int = 6,
    colors: Sequence[str] | None = None,
    joint_names: Sequence[str] | None = None,
    panel_size: float = 2.2,
    dpi: float = 80.0,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool = True,
    linewidth: float = 2.5,
    hints: np.ndarray | None = None,
    captions: Sequence[tuple[int, str]] | None = None,
    mesh: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Save still frames side by side (a frame strip) as an image (PNG, or any format matplotlib saves).

    Args:
        frames: frame indices (negative ones count from the end); default ``num`` evenly spaced frames.
        panel_size: width and height of one panel in inches.
        Other arguments as in :func:`render_animation`.
    """
    arr, fps, skel, layout = _prepare(joints, fps, parents, chains, colors, joint_names, follow)
    hints = _check_hints(hints, arr)
    captions = _check_captions(captions, len(arr))
    mesh = _check_mesh(mesh, len(arr))
    T = len(arr)
    if frames is None:
        frames = np.unique(np.linspace(0, T - 1, max(1, min(num, T))).round().astype(int)).tolist()
    picks = []
    for f in frames:
        f = int(f)
        if not -T <= f < T:
            raise ValueError(f"frame {f} out of range for a {T}-frame motion")
        picks.append(f % T)
    if not picks:
        raise ValueError("frames is empty")
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "jpg", "jpeg", "pdf", "svg", "webp"):
        raise ValueError(f"{out}: unknown image format {out.suffix!r}; expected .png, .jpg, .pdf, .svg or .webp")
    width = panel_size * len(picks)
    text = _wrap_title(title, width)
    n_lines = text.count("\n") + 1 if text else 0
    title_h = (0.12 + 0.2 * n_lines) if text else 0.0
    fig = _new_figure((width, panel_size + title_h), dpi)
    h = panel_size / (panel_size + title_h)
    for k, f in enumerate(picks):
        panel = (k / len(picks), 0.0, 1.0 / len(picks), h)
        _Scene(fig, panel, arr, skel, layout, elev, azim, linewidth, hints, mesh).update(f)
        fig.text((k + 0.04) / len(picks), h - 0.02, f"{f / fps:.2f} s", ha="left", va="top", fontsize=8,
                 color="#555555")  # fmt: skip
        if captions:  # the segment's prompt under the time, wrapped to the panel
            label = "\n".join(textwrap.wrap(_caption_at(captions, f), 28)[:3])
            fig.text((k + 0.04) / len(picks), h - 0.02 - 0.1 / panel_size, label, ha="left", va="top", fontsize=7,
                     color="#1f4e79")  # fmt: skip
    if text:
        fig.text(0.5, 1.0 - 0.06 / (panel_size + title_h), text, ha="center", va="top", fontsize=10)
    return write_atomic(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, facecolor="white"), require_output=True)
