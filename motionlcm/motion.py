"""`Motion`: the one motion type. What the pipeline generates, what `Motion.load` reads from a user's file
(.npy / .npz arrays, .bvh of any rig), and what saves itself as .npy, BVH and animations.

Joints are (T, J, 3) in metres, y up, at `fps`. The 22-joint SMPL skeleton of HumanML3D is the default
(`parents` None); a BVH of another rig keeps its own hierarchy (`parents`, `names`). `features` holds the
263-d HumanML3D features when they are known (a generated motion, a features file).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from motionlcm.data.skeleton import FPS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".webp")
MOVIE_SUFFIXES = (".mp4", ".gif")


@dataclass
class Motion:
    """A motion: joints (T, J, 3) in metres, y up, at `fps` frames per second.

    Args:
        joints: (T, J, 3) positions.
        fps: frame rate (HumanML3D: 20).
        text: the prompt or title, when there is one.
        features: (T, 263) HumanML3D features, when known (SMPL-22 motions only).
        settings: how the motion was made (steps, guidance, seed, model kind, ...).
        parents: parent index per joint; None for the 22-joint SMPL skeleton.
        names: joint names (a BVH's), or None.
        hints: (T, 22, 3) control targets the motion was generated under (NaN where free), or None.
        captions: (start frame, prompt) of each segment of a timeline (`motionlcm.timeline`), or None; renders
            show the current one.
    """

    joints: np.ndarray
    fps: float = FPS
    text: str | None = None
    features: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    parents: list[int] | None = None
    names: list[str] | None = None
    hints: np.ndarray | None = None
    captions: list[tuple[int, str]] | None = None

    @property
    def frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def is_smpl(self) -> bool:
        """True for the 22-joint SMPL skeleton (what BVH export and the 263-d features describe)."""
        return self.parents is None and self.joints.shape[1:] == (22, 3)

    # ------------------------------------------------------------------------------------------ files

    @classmethod
    def load(cls, path: str | os.PathLike) -> Motion:
        """Read a motion file: .npy / .npz joints (T, 22, 3), flat (T, 66) or 263-d features (T, 263)
        (`motionlcm.io.motion_file`; an .npz may add `fps` and `text`), or a .bvh of any rig (y up; units
        detected from the skeleton height).

        Raises:
            ValueError: one line naming the file and the problem (missing, unreadable, wrong shape, NaN, suffix).
        """
        from motionlcm.io.motion_file import read_motion_array

        p = Path(path)
        if p.suffix.lower() == ".bvh":
            if not p.is_file():
                raise ValueError(f"{p}: no such file")
            return _load_bvh(p)
        array = read_motion_array(p, suffixes=(".npy", ".npz", ".bvh"))  # .bvh is handled above
        if array.kind == "joints":
            return cls(array.array, array.fps or FPS, array.title)
        from motionlcm.data.features import features_to_joints

        joints = np.asarray(features_to_joints(array.array))
        if not np.isfinite(joints).all():
            raise ValueError(f"{p}: the features give NaN/inf joints")
        return cls(joints, array.fps or FPS, array.title, features=array.array)

    def save_npy(self, path: str | Path, features_path: str | Path | None = None) -> Path:
        """Write the joints (T, J, 3) to `path` and, if given, the 263-d features to `features_path`."""
        from motionlcm.io.atomic import save_npy_atomic

        if features_path is not None:
            if self.features is None:
                raise ValueError(f"{features_path}: this motion has no 263-d features")
            save_npy_atomic(features_path, self.features.astype(np.float32))
        return save_npy_atomic(path, self.joints.astype(np.float32))

    def to_bvh(self, fps: float | None = None, rig: Any = None, skeleton: Any = None) -> Any:
        """The motion as a BVH clip at `fps` (default: the native rate): the 22 SMPL joints in centimetres, or,
        with `rig` (a rig file or `motionlcm.data.rig.Rig`), on that rig's skeleton (the rig file's
        `reference` BVH, or `skeleton`): its names, hierarchy, offsets, channels and units
        (`motionlcm.export.retarget`)."""
        from motionlcm.export.bvh_export import joints_to_bvh

        if not self.is_smpl:
            raise ValueError("BVH export needs the 22-joint SMPL skeleton; this motion has another rig")
        if rig is None:
            if skeleton is not None:
                raise ValueError("skeleton: a reference skeleton needs a rig file that maps it (rig=...)")
            return joints_to_bvh(self.joints, fps=self.fps, target_fps=fps)
        from motionlcm.export.retarget import RigSkeleton, retarget

        clip = retarget(self.joints, RigSkeleton.load(rig, skeleton), fps=self.fps)
        return clip if fps is None or fps == self.fps else clip.resampled(fps)

    def save_bvh(self, path: str | Path, fps: float | None = None, rig: Any = None, skeleton: Any = None) -> Path:
        """Write a BVH clip (see `to_bvh`); rotations resampled by slerp when `fps` differs from the native."""
        from motionlcm.io.bvh import write_bvh

        write_bvh(path, self.to_bvh(fps, rig=rig, skeleton=skeleton))
        return Path(path)

    def to_glb(self, fps: float | None = None, rig: Any = None, skeleton: Any = None) -> bytes:
        """The motion as a binary glTF 2.0 (a skinned skeleton, a stick mesh bound to it, one animation; see
        docs/gltf.md): the skeleton of `to_bvh` with the same arguments (the SMPL one, or your rig's), in
        metres."""
        from motionlcm.data.rig import Rig
        from motionlcm.export.gltf_export import bvh_to_glb
        from motionlcm.export.retarget import to_standard_axes

        if rig is None:
            return bvh_to_glb(self.to_bvh(fps, skeleton=skeleton), 0.01)
        rig = rig if isinstance(rig, Rig) else Rig.load(rig)
        return bvh_to_glb(to_standard_axes(self.to_bvh(fps, rig=rig, skeleton=skeleton), rig.axes), rig.scale)

    def save_glb(self, path: str | Path, fps: float | None = None, rig: Any = None, skeleton: Any = None) -> Path:
        """Write `to_glb` to `path` (atomically)."""
        from motionlcm.export.gltf_export import write_glb

        write_glb(path, self.to_glb(fps, rig=rig, skeleton=skeleton))
        return Path(path)

    def render(self, path: str | Path, title: str | None = None, fps: float | None = None, **kwargs: Any) -> Path:
        """A stick-figure animation at the motion's real speed (.mp4, or .gif when no ffmpeg is available; .gif)
        or a strip of frames (an image suffix such as .png); returns the path written. Other keyword
        arguments go to the renderer (`motionlcm.render`)."""
        from motionlcm.render import render_animation, render_frames

        out = Path(path)
        suffix = out.suffix.lower()
        args = dict(title=self.text if title is None else title, fps=self.fps if fps is None else fps,
                    parents=self.parents, joint_names=self.names, **kwargs)  # fmt: skip
        if self.hints is not None:
            args.setdefault("hints", self.hints)  # the control targets it was generated under
        if self.captions:
            args.setdefault("captions", self.captions)  # a timeline's prompt per segment
        if suffix in MOVIE_SUFFIXES:
            return render_animation(self.joints, out, **args)
        if suffix in IMAGE_SUFFIXES:
            return render_frames(self.joints, out, **args)
        raise ValueError(f"{out}: unknown output format {out.suffix!r}; expected .mp4, .gif or an image (.png)")


def render_file(
    path_in: str | os.PathLike,
    path_out: str | os.PathLike,
    title: str | None = None,
    fps: float | None = None,
    **kwargs: Any,
) -> Path:
    """`Motion.load(path_in).render(path_out, ...)`: what `motionlcm render` does. `fps` defaults to the
    file's (20 for arrays, the Frame Time for BVH), `title` to one stored in an npz."""
    return Motion.load(path_in).render(path_out, title=title, fps=fps, **kwargs)


def _bvh_unit_scale(height: float) -> float:
    """Metres per file unit from the standing height: m, cm or mm, whichever gives the most human height."""
    if not height > 0:
        return 1.0
    return min((1.0, 0.01, 0.001), key=lambda s: abs(math.log(height * s / 1.7)))


def _load_bvh(p: Path) -> Motion:
    from motionlcm.io.bvh import read_bvh

    try:
        bvh = read_bvh(p)
        pos, _ = bvh.forward_kinematics()
    except Exception as err:  # noqa: BLE001 - one line for any parse or FK failure
        msg = " ".join(str(err).split())
        raise ValueError(msg if str(p) in msg else f"{p}: {msg}") from None
    if bvh.num_frames == 0:
        raise ValueError(f"{p}: the BVH has no frames")
    if not np.isfinite(pos).all():
        raise ValueError(f"{p}: forward kinematics gave NaN/inf")
    scale = _bvh_unit_scale(float(np.ptp(pos[0, :, 1])))
    return Motion(pos * scale, float(bvh.fps), parents=[int(x) for x in bvh.parents], names=list(bvh.names))
