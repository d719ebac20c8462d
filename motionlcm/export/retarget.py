"""Retargeting: generated motion back onto a user's own skeleton, through the rig file that imported it.

A rig file (`motionlcm.data.rig.Rig`, docs/rig-files.md) says how a studio's BVH skeleton maps onto the 22
SMPL joints: each SMPL joint is a source joint, a weighted blend of source joints, or a source joint plus an
offset in its frame. The import runs that mapping forwards (skeleton pose -> 22 joints) and then gives the
joints HumanML3D's uniform bone lengths, keeping every bone's direction. Retargeting runs it backwards:

1. the (T, 22, 3) joints (metres, HumanML3D axes) go into the rig's units and axes;
2. the skeleton's joint rotations are solved so that every SMPL bone (joint -> parent, as the mapping places
   both ends on the skeleton) points where the generated bone points. Lengths stay the skeleton's own, as
   they were in the user's clips; rotations no bone direction constrains (a thigh's twist, a hand without
   mapped fingers) stay as close to the skeleton file's first frame (its rest pose) as the directions allow.
   One least-squares problem over all frames (torch, L-BFGS), started from that pose with the whole body
   turned into place (the pelvis's hips and spine, Kabsch);
3. the root is placed so that the mapped pelvis follows the generated one, its trajectory scaled back by the
   import's leg ratio (right thigh + shin, HumanML3D `uniform_skeleton`; `features.retarget_to_skeleton`);
4. the clip is written in the reference skeleton's own layout: its joint names, hierarchy, offsets, channel
   lists and rotation orders. Joints the mapping does not reach (fingers, twist bones, props) keep their
   pose of the skeleton file's first frame; position channels of non-root joints keep their first-frame
   values (the bone).

On a real clip imported with a rig and exported back with the same rig, the mapped joints come back within
millimetres of the original BVH's (tests/export/test_retarget.py, docs/export.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.quaternion import quaternion_to_matrix
from motionlcm.data.rig import Rig
from motionlcm.data.skeleton import FPS, JOINT_NAMES, NUM_JOINTS, PARENTS, kabsch
from motionlcm.io.bvh import BVH, matrix_to_euler, nearest_euler, read_bvh

LEG = (2, 5, 8)  # right hip, knee, ankle: the leg whose length HumanML3D's uniform skeleton scales by
PELVIS_BRANCH = (1, 2, 3)  # left hip, right hip, spine1: the pelvis's turn
REST_WEIGHT = 1e-4  # pull of each joint's turn angle (squared) towards the base pose, against bone directions
ITERATIONS = 200  # L-BFGS iterations (each with its own line search)
BLOCK = 256  # frames solved together


@dataclass(frozen=True)
class RigSkeleton:
    """A rig file and the skeleton it maps, checked against each other."""

    rig: Rig
    skeleton: BVH
    source: str  # where the skeleton came from, for messages

    @classmethod
    def load(cls, rig: Rig | str | Path, skeleton: BVH | str | Path | None = None) -> RigSkeleton:
        """`rig`: a Rig or a rig file; `skeleton`: a BVH (or its file) with the rig's skeleton, else the rig
        file's `reference`. Errors name the file and the missing joints."""
        rig = rig if isinstance(rig, Rig) else Rig.load(rig)
        where = str(rig.path or rig.name)
        if skeleton is None:
            if rig.reference is None:
                raise ValueError(
                    f"{where}: the rig file names no reference skeleton (key 'reference'); give one with --skeleton"
                )
            skeleton = rig.reference
        source = str(skeleton) if not isinstance(skeleton, BVH) else "<skeleton>"
        bvh = skeleton if isinstance(skeleton, BVH) else read_bvh(skeleton)
        missing = sorted(rig.source_joints() - set(bvh.names))
        if missing:
            raise ValueError(f"{where}: joint(s) {', '.join(missing)} are not in the skeleton {source}")
        for j, name in enumerate(bvh.names):
            if len(bvh.rotation_order(j)) not in (0, 3):
                raise ValueError(
                    f"{source}: joint {name!r} has {len(bvh.rotation_order(j))} rotation channels; 0 or 3 are supported"
                )
        if int((bvh.parents < 0).sum()) != 1:
            raise ValueError(f"{source}: the skeleton must have one root joint, it has {int((bvh.parents < 0).sum())}")
        return cls(rig, bvh, source)


def retarget(joints: np.ndarray, target: RigSkeleton, fps: float = FPS, iterations: int = ITERATIONS) -> BVH:
    """(T, 22, 3) joints in metres (HumanML3D axes) -> a BVH clip on the rig's skeleton at `fps`."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) < 1:
        raise ValueError(f"joints must have shape (T, {NUM_JOINTS}, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or infinite values")
    rig, skeleton = target.rig, target.skeleton
    goal = (joints @ rig.axes) / rig.scale  # (T, 22, 3) in the skeleton's units and axes
    model = _MappedSkeleton(rig, skeleton)
    base = np.repeat(model.base[None], len(goal), axis=0)  # (T, J, 3, 3): the reference's first pose
    base[:, model.root] = np.eye(3)
    rest = model.mapped(torch.from_numpy(base[:1]))[1][0].numpy()  # the mapped points of the base pose
    base[:, model.root] = _pelvis_turn(rest, goal)  # the whole body turned into place, frame by frame
    # frames are independent problems: solved in blocks, so a long take converges as a short clip does
    solved = [_solve(model, torch.from_numpy(base[s : s + BLOCK]), goal[s : s + BLOCK], iterations)
              for s in range(0, len(goal), BLOCK)]  # fmt: skip
    local, mapped = (np.concatenate(parts) for parts in zip(*solved, strict=True))
    # the pelvis follows the generated one, scaled back from the uniform skeleton's leg to the rig's
    leg = _leg_length(rest) / _leg_length(goal[0])
    root = goal[:, 0] * leg - mapped[:, 0]
    return _clip(skeleton, model.translations, local, root, fps)


def _leg_length(points: np.ndarray) -> float:
    hip, knee, ankle = (points[j] for j in LEG)
    return float(np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee))


def _pelvis_turn(rest: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations that turn the rest pose's pelvis branch (hips, spine) onto the goal's, per frame."""
    rest_dirs = rest[list(PELVIS_BRANCH)] - rest[0]
    rest_dirs /= np.linalg.norm(rest_dirs, axis=-1, keepdims=True)
    goal_dirs = goal[:, list(PELVIS_BRANCH)] - goal[:, :1]
    goal_dirs /= np.linalg.norm(goal_dirs, axis=-1, keepdims=True)
    return kabsch(np.broadcast_to(rest_dirs, goal_dirs.shape), goal_dirs)


class _MappedSkeleton:
    """Forward kinematics of the skeleton and the rig's 22 mapped points, differentiable in the rotations."""

    def __init__(self, rig: Rig, skeleton: BVH) -> None:
        self.parents = skeleton.parents.tolist()
        self.root = self.parents.index(-1)
        # each joint's translation from its parent: the OFFSET, or the position channels of the first frame
        # where a rig animates them (every Bandai-Namco joint has six channels; they hold its bone)
        self.translations = skeleton.local_translations()[0] if skeleton.num_frames else skeleton.offsets
        self.offsets = torch.from_numpy(self.translations)
        # the pose every solve starts from and is pulled towards: the skeleton file's first frame
        self.base = (
            skeleton.local_rotations()[0] if skeleton.num_frames else np.tile(np.eye(3), (len(self.parents), 1, 1))
        )
        index = {name: j for j, name in enumerate(skeleton.names)}
        self.weights = torch.zeros(NUM_JOINTS, skeleton.num_joints, dtype=torch.float64)
        self.frames: list[tuple[int, int, torch.Tensor]] = []  # (smpl joint, skeleton joint, offset)
        for k, name in enumerate(JOINT_NAMES):
            source = rig.joints[name]
            for joint, w in source.weights.items():
                self.weights[k, index[joint]] = w
            if source.frame_joint is not None and any(source.offset):
                self.frames.append((k, index[source.frame_joint], torch.tensor(source.offset, dtype=torch.float64)))

    def mapped(self, base: torch.Tensor, turns: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Local rotations base @ R(turn) (T, J, 3, 3), `turns` unit quaternions (T, J, 4) (None: the base
        pose), and the 22 mapped points (T, 22, 3), root at the origin."""
        local = base if turns is None else base @ quaternion_to_matrix(turns)
        world_rot: list[torch.Tensor] = []
        world_pos: list[torch.Tensor] = []
        zero = torch.zeros(local.shape[0], 3, dtype=local.dtype)
        for j, p in enumerate(self.parents):
            if p < 0:
                world_rot.append(local[:, j])
                world_pos.append(zero)
            else:
                world_rot.append(world_rot[p] @ local[:, j])
                world_pos.append(world_pos[p] + world_rot[p] @ self.offsets[j])
        points = torch.einsum("kj,tjc->tkc", self.weights, torch.stack(world_pos, dim=1))
        if self.frames:
            extra = torch.zeros_like(points)
            for k, j, offset in self.frames:
                extra[:, k] = world_rot[j] @ offset
            points = points + extra
        return local, points


def _bones(points: torch.Tensor) -> torch.Tensor:
    """(T, 21, 3) unit vectors of the SMPL bones, parent -> joint."""
    bones = points[:, 1:] - points[:, list(PARENTS[1:])]
    return bones / torch.linalg.vector_norm(bones, dim=-1, keepdim=True).clamp_min(1e-9)


def _solve(model: _MappedSkeleton, base: torch.Tensor, goal: np.ndarray, iterations: int):
    """Local rotations (T, J, 3, 3) whose mapped bones point along the goal's (module docstring, step 2),
    and the mapped points (T, 22, 3) with the root at the origin."""
    quats = torch.zeros(base.shape[:2] + (4,), dtype=torch.float64)
    quats[..., 0] = 1.0  # each joint's turn away from the base pose, as in bvh_export's polish
    quats.requires_grad_(True)
    target = _bones(torch.from_numpy(goal))
    optimizer = torch.optim.LBFGS([quats], max_iter=iterations, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  history_size=50, line_search_fn="strong_wolfe")  # fmt: skip

    def turns() -> torch.Tensor:
        return quats / torch.linalg.vector_norm(quats, dim=-1, keepdim=True)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        unit = turns()
        bones = _bones(model.mapped(base, unit)[1])
        # 4 |xyz|^2 = (2 sin(angle / 2))^2: the squared turn angle for small turns
        loss = ((bones - target) ** 2).sum() + REST_WEIGHT * 4.0 * (unit[..., 1:] ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        local, points = model.mapped(base, turns())
    return local.numpy(), points.numpy()


def _clip(skeleton: BVH, translations: np.ndarray, local: np.ndarray, root: np.ndarray, fps: float) -> BVH:
    """The solved pose in the skeleton's own channel layout (module docstring, step 4)."""
    columns = []
    for j, channels in enumerate(skeleton.channels):
        order = skeleton.rotation_order(j)
        angles = matrix_to_euler(local[:, j], order) if order else np.zeros((len(local), 0))
        for t in range(1, len(angles)):
            angles[t] = nearest_euler(angles[t], angles[t - 1])
        position = root if skeleton.parents[j] < 0 else np.broadcast_to(translations[j], root.shape)
        rotation_column = iter(range(angles.shape[1]))
        for name in channels:
            axis = "XYZ".index(name[0].upper())
            if name.lower().endswith("position"):
                columns.append(position[:, axis])
            else:
                columns.append(angles[:, next(rotation_column)])
    motion = np.stack(columns, axis=1) if columns else np.zeros((len(local), 0))
    return BVH(
        skeleton.names, skeleton.parents, skeleton.offsets, skeleton.channels, skeleton.end_sites, 1.0 / fps, motion
    )


def to_standard_axes(clip: BVH, axes: np.ndarray) -> BVH:
    """The clip turned from a rig's axes (`Rig.axes`: rows are the rig's vectors of x left, y up, z forward)
    into those axes themselves, the axes of HumanML3D and glTF: every offset, translation and rotation
    conjugated by the same turn, so forward kinematics is the same motion turned. For glTF, which is y up."""
    turn = np.asarray(axes, dtype=np.float64)
    if np.allclose(turn, np.eye(3)):
        return clip
    if np.linalg.det(turn) < 0:
        raise ValueError("the rig's axes are left-handed: a glTF file must be right-handed (write BVH instead)")
    local = turn @ clip.local_rotations() @ turn.T
    translations = clip.local_translations() @ turn.T
    root = int(np.flatnonzero(clip.parents < 0)[0])
    turned = BVH(clip.names, clip.parents, clip.offsets @ turn.T, clip.channels,
                 {j: turn @ v for j, v in clip.end_sites.items()}, clip.frame_time, clip.motion)  # fmt: skip
    return _clip(turned, translations[0], local, translations[:, root], clip.fps)
