"""Export motions as binary glTF 2.0 (.glb): a skinned skeleton, a stick mesh bound to it and one animation.

Any skeleton given as a `BVH` clip works (`bvh_to_glb`); 22-joint SMPL motions go through `joints_to_bvh`
first (`joints_to_glb`). glTF is metres, +Y up, +Z forward, right-handed: the axes of our joints, so positions
are only scaled. docs/gltf.md says what the file holds and which tools were tested.

The file holds, in this order:
- one node per BVH joint (same names and hierarchy), rest translation = the OFFSET in metres, no rotation;
  an extra root node "<skeleton>" above them only when the BVH has several roots (a skin needs a common root);
- a skin over those nodes whose inverse bind matrices undo each joint's rest position;
- one mesh node (at the scene root, no transform, as skinned meshes must be) with a box ("stick") along every
  bone and to every End Site (a cube at a leaf joint without one), flat normals, one grey material; every
  vertex is weighted 1.0 to one joint: the one the bone turns with (its parent), except the tail end of a bone
  whose child has position channels, which follows the child so that the stick keeps reaching it;
- one animation at the clip's frame rate: a LINEAR translation track for each joint with position channels
  (the root) and a LINEAR rotation track (unit quaternions x, y, z, w) for each joint with rotation channels.
  Joints without channels (fixed joints) keep their rest pose.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from motionlcm.data.skeleton import FPS
from motionlcm.export.bvh_export import UNITS, joints_to_bvh
from motionlcm.io.bvh import BVH
from motionlcm.io.gltf import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GlbBuilder, write_glb

__all__ = ["bvh_to_glb", "joints_to_glb", "write_glb"]

GENERATOR = "motionlcm glTF export"
STICK_WIDTH = (0.08, 0.003, 0.015)  # half-width of a bone's box: 8% of its length, clipped to 3..15 mm
JOINT_CUBE = 0.01  # metres: half-size of the cube drawn at a leaf joint that has no End Site
MIN_BONE = 1e-6  # metres: shorter bones (and End Sites) get no box
MATERIAL = {  # light grey, not metallic (glTF's default material is fully metallic: black without lights)
    "name": "stick",
    "pbrMetallicRoughness": {"baseColorFactor": [0.8, 0.8, 0.8, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.6},
}


# ----------------------------------------------------------------------------- checks


def _check_clip(bvh: BVH, metres_per_unit: float) -> float:
    """The scale to metres; ValueError naming what glTF cannot hold (no frames, NaN or inf)."""
    scale = float(metres_per_unit)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"metres_per_unit must be a positive number, got {metres_per_unit!r}")
    if bvh.num_frames < 1:
        raise ValueError("the BVH clip has no frames")
    finite = np.isfinite(bvh.motion).all(axis=1)
    if not finite.all():
        raise ValueError(f"the BVH motion has NaN or inf in frame {int(np.argmin(finite))}")
    if not np.isfinite(bvh.offsets).all() or not all(np.isfinite(v).all() for v in bvh.end_sites.values()):
        raise ValueError("the BVH skeleton has a NaN or inf OFFSET")
    return scale


# ----------------------------------------------------------------------------- skeleton


def _rest_positions(bvh: BVH, scale: float) -> np.ndarray:
    """World positions (J, 3) of the joints in the rest pose (all rotations zero), metres."""
    rest = bvh.offsets * scale
    for j, p in enumerate(bvh.parents.tolist()):
        if p >= 0:
            rest[j] = rest[p] + rest[j]
    return rest


def _add_skeleton(builder: GlbBuilder, bvh: BVH, scale: float) -> list[int]:
    """One node per joint (node j = BVH joint j); returns the scene's skeleton root node(s)."""
    for j in range(bvh.num_joints):
        kids = np.flatnonzero(bvh.parents == j).tolist()
        node: dict[str, Any] = {"name": bvh.names[j], "translation": (bvh.offsets[j] * scale).tolist()}
        if kids:
            node["children"] = kids
        builder.add("nodes", node)
    roots = np.flatnonzero(bvh.parents < 0).tolist()
    if len(roots) == 1:
        return roots
    return [builder.add("nodes", {"name": "<skeleton>", "children": roots})]


def _add_skin(builder: GlbBuilder, rest: np.ndarray, root: int) -> int:
    """A skin over nodes 0..J-1 (and the extra root, if any); the bind pose is the rest pose."""
    joints = list(range(len(rest))) + ([root] if root >= len(rest) else [])
    bind = np.broadcast_to(np.eye(4, dtype=np.float32), (len(joints), 4, 4)).copy()
    bind[: len(rest), :3, 3] = -rest  # inverse of "translate to the joint's rest position"
    matrices = builder.add_accessor(bind, "MAT4")
    return builder.add("skins", {"joints": joints, "skeleton": root, "inverseBindMatrices": matrices})


# ----------------------------------------------------------------------------- stick mesh

Box = tuple[np.ndarray, np.ndarray, np.ndarray]  # positions (24, 3), normals (24, 3), triangle indices (36,)


def _box(center: np.ndarray, axes: np.ndarray) -> Box:
    """A box with flat faces: 24 vertices (4 per face), their normals and 36 indices (counter-clockwise seen
    from outside, glTF's front faces). `axes` (3, 3): half-extent vectors, a right-handed orthogonal triple."""
    units = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    positions, normals = [], []
    for k in range(3):
        for sign, (a, b) in ((1, (k + 1, k + 2)), (-1, (k + 2, k + 1))):  # e_a x e_b = sign * axis k
            a, b = a % 3, b % 3
            face_center = center + sign * axes[k]
            positions.append(face_center + corners[:, :1] * axes[a] + corners[:, 1:] * axes[b])
            normals.append(np.broadcast_to(sign * units[k], (4, 3)))
    quads = np.arange(6)[:, None] * 4 + np.array([0, 1, 2, 0, 2, 3])
    return np.concatenate(positions), np.concatenate(normals), quads.reshape(-1)


def _stick(head: np.ndarray, tail: np.ndarray) -> Box:
    """A thin box from `head` to `tail` (a bone)."""
    along = (tail - head) / 2
    length = 2 * np.linalg.norm(along)
    fraction, least, most = STICK_WIDTH
    width = float(np.clip(fraction * length, least, most))
    direction = along / np.linalg.norm(along)
    helper = np.eye(3)[np.argmin(np.abs(direction))]  # the world axis least parallel to the bone
    side = np.cross(direction, helper)
    side /= np.linalg.norm(side)
    axes = np.stack([along, side * width, np.cross(direction, side) * width])  # along x side = up: right-handed
    return _box(head + along, axes)


def _translated(bvh: BVH, j: int) -> bool:
    """Whether joint j has position channels (its offset from the parent may change)."""
    return any(c.lower().endswith("position") for c in bvh.channels[j])


def _bone(bvh: BVH, rest: np.ndarray, parent: int, child: int) -> tuple[np.ndarray, Box]:
    """The stick of a bone, bound to the parent joint (it turns with it). When the child has position channels
    the tail end is bound to the child instead, so that the stick still reaches it."""
    box = _stick(rest[parent], rest[child])
    owners = np.full(len(box[0]), parent)
    if _translated(bvh, child):
        bone = rest[child] - rest[parent]
        owners[(box[0] - rest[parent]) @ bone > bone @ bone / 2] = child
    return owners, box


def _boxes(bvh: BVH, rest: np.ndarray, scale: float) -> list[tuple[np.ndarray, Box]]:
    """(joint of each vertex, box) of every box in the rest pose, in joint order: the bone from the parent,
    then a stick to the End Site or, for a leaf joint without one, a small cube."""
    out = []
    for j, p in enumerate(bvh.parents.tolist()):
        if p >= 0 and np.linalg.norm(rest[j] - rest[p]) > MIN_BONE:
            out.append(_bone(bvh, rest, p, j))
        end = bvh.end_sites.get(j, np.zeros(3)) * scale
        if np.linalg.norm(end) > MIN_BONE:
            out.append((np.full(24, j), _stick(rest[j], rest[j] + end)))
        elif not (bvh.parents == j).any():
            out.append((np.full(24, j), _box(rest[j], np.eye(3) * JOINT_CUBE)))
    return out


def _add_mesh(builder: GlbBuilder, bvh: BVH, rest: np.ndarray, scale: float) -> int:
    """The stick mesh in the bind (rest) pose, one primitive, every vertex bound to one joint; returns its index."""
    boxes = _boxes(bvh, rest, scale)
    positions = np.concatenate([box[0] for _, box in boxes]).astype(np.float32)
    normals = np.concatenate([box[1] for _, box in boxes]).astype(np.float32)
    starts = np.cumsum([0] + [len(box[0]) for _, box in boxes])
    indices = np.concatenate([box[2] + start for (_, box), start in zip(boxes, starts[:-1], strict=True)])
    joint_ids = np.zeros((len(positions), 4), np.uint8 if len(rest) < 256 else np.uint16)
    joint_ids[:, 0] = np.concatenate([owners for owners, _ in boxes])
    weights = np.zeros((len(positions), 4), np.float32)
    weights[:, 0] = 1.0
    attributes = {
        "POSITION": builder.add_accessor(positions, "VEC3", target=ARRAY_BUFFER, bounds=True),
        "NORMAL": builder.add_accessor(normals, "VEC3", target=ARRAY_BUFFER),
        "JOINTS_0": builder.add_accessor(joint_ids, "VEC4", target=ARRAY_BUFFER),
        "WEIGHTS_0": builder.add_accessor(weights, "VEC4", target=ARRAY_BUFFER),
    }
    index_type = np.uint16 if len(positions) <= 65535 else np.uint32
    primitive = {
        "attributes": attributes,
        "indices": builder.add_accessor(indices.astype(index_type), "SCALAR", target=ELEMENT_ARRAY_BUFFER),
        "material": builder.add("materials", MATERIAL),
    }
    return builder.add("meshes", {"name": "sticks", "primitives": [primitive]})


# ----------------------------------------------------------------------------- animation


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(F, J, 3, 3) rotation matrices -> (F, J, 4) unit quaternions (x, y, z, w), signs continuous over time
    so that interpolating between frames takes the short way."""
    quats = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat().reshape(*rotations.shape[:2], 4)
    flips = np.sum(quats[1:] * quats[:-1], axis=-1) < 0
    sign = np.concatenate([np.ones((1, quats.shape[1])), np.where(np.cumsum(flips, axis=0) % 2, -1.0, 1.0)])
    return quats * sign[..., None]


def _tracks(bvh: BVH, scale: float) -> list[tuple[int, str, np.ndarray]]:
    """(node, path, values) of every animated property: "translation" (F, 3) metres of joints with position
    channels, "rotation" (F, 4) quaternions of joints with rotation channels."""
    translations = bvh.local_translations() * scale
    rotations = _quaternions(bvh.local_rotations())
    out = []
    for j, channels in enumerate(bvh.channels):
        kinds = {c.lower()[1:] for c in channels}  # "position", "rotation"
        if "position" in kinds:
            out.append((j, "translation", translations[:, j]))
        if "rotation" in kinds:
            out.append((j, "rotation", rotations[:, j]))
    return out


def _add_animation(builder: GlbBuilder, bvh: BVH, scale: float) -> None:
    """One animation of LINEAR tracks sharing one input: the frame times in seconds."""
    tracks = _tracks(bvh, scale)
    if not tracks:
        return  # a clip without channels is its rest pose; a glTF animation needs at least one channel
    times = (np.arange(bvh.num_frames) * bvh.frame_time).astype(np.float32)
    input_ = builder.add_accessor(times, "SCALAR", bounds=True)  # min/max: required for sampler inputs
    samplers, channels = [], []
    for node, path, values in tracks:
        output = builder.add_accessor(values.astype(np.float32), "VEC3" if path == "translation" else "VEC4")
        channels.append({"sampler": len(samplers), "target": {"node": node, "path": path}})
        samplers.append({"input": input_, "output": output, "interpolation": "LINEAR"})
    builder.add("animations", {"name": "motion", "samplers": samplers, "channels": channels})


# ----------------------------------------------------------------------------- public API


def bvh_to_glb(bvh: BVH, metres_per_unit: float) -> bytes:
    """A .glb file (bytes) of any BVH clip: skinned skeleton, stick mesh and one animation (module docstring).

    Args:
        bvh: the clip, in the glTF axes (y up; our exports and most mocap files are).
        metres_per_unit: the clip's length unit in metres, e.g. 0.01 for centimetres.
    """
    scale = _check_clip(bvh, metres_per_unit)
    builder = GlbBuilder(GENERATOR)
    rest = _rest_positions(bvh, scale)
    roots = _add_skeleton(builder, bvh, scale)
    skin = _add_skin(builder, rest, roots[0])
    mesh = _add_mesh(builder, bvh, rest, scale)
    body = builder.add("nodes", {"name": "body", "mesh": mesh, "skin": skin})
    _add_animation(builder, bvh, scale)
    builder.gltf["scene"] = builder.add("scenes", {"nodes": [*roots, body]})
    return builder.glb()


def joints_to_glb(joints: Any, fps: float = FPS, **options: Any) -> bytes:
    """A .glb file (bytes) of a (T, 22, 3) SMPL motion in metres: `joints_to_bvh`, then `bvh_to_glb`.

    `options` go to `joints_to_bvh` (target_fps, offsets, refine, stretch, units); bad joints (wrong shape,
    NaN) raise its ValueError.
    """
    bvh = joints_to_bvh(joints, fps, **options)
    return bvh_to_glb(bvh, 1.0 / UNITS[options.get("units", "cm")])
