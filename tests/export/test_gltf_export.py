"""glTF export of real motions: the file's own forward kinematics and skinning reproduce the joints, any BVH
rig works, and three tools read it: the Khronos glTF-Validator and three.js under Node (tests/js, skipped
without `node` or without `npm ci` run there) and Blender's importer (skipped without `blender`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionlcm.data.skeleton import JOINT_NAMES
from motionlcm.export import bvh_to_glb, joints_to_bvh, joints_to_glb, write_glb
from motionlcm.io.bvh import BVH, read_bvh
from motionlcm.io.gltf import pack_glb, read_accessor, read_glb

JS = Path(__file__).resolve().parents[1] / "js"
CM = 0.01  # metres per BVH unit of joints_to_bvh and of the Bandai-Namco files
BOUND = 0.01  # metres: the 1 cm requirement
FLOAT32 = 1e-4  # metres: what float32 storage and float32 players leave of an exact round trip
CLIPS = ["dataset-2_walk-turn-right_normal_004", "Mdataset-2_run_active_001"]  # a turn; a mirrored run


# ----------------------------------------------------------------------------- motions


@pytest.fixture(scope="module", params=CLIPS)
def joints(request, bn_dataset_dir: Path) -> np.ndarray:
    """A real imported Bandai-Namco clip, (T, 22, 3) metres, 20 fps."""
    return np.load(bn_dataset_dir / "new_joints" / f"{request.param}.npy").astype(np.float64)


@pytest.fixture(scope="module")
def rig(bn_fixture_dir: Path) -> BVH:
    """A user's rig as it comes: a raw Bandai-Namco BVH (22 joints of its own names, 6 channels on every joint,
    zero-length End Sites, centimetres, 30 fps)."""
    return read_bvh(bn_fixture_dir / "dataset-2_walk-turn-left_normal_001.bvh")


def with_fixed_joints(clip: BVH, fixed: list[str]) -> BVH:
    """The clip with the channels of the `fixed` joints removed: they keep their rest pose."""
    moving = [j for j, name in enumerate(clip.names) if name not in fixed]
    columns = np.concatenate([np.arange(clip.motion.shape[1])[clip.channel_slice(j)] for j in moving])
    channels = [() if name in fixed else ch for name, ch in zip(clip.names, clip.channels, strict=True)]
    return BVH(
        clip.names, clip.parents, clip.offsets, channels, clip.end_sites, clip.frame_time, clip.motion[:, columns]
    )


def two_roots(clip: BVH) -> BVH:
    """Two copies of a rig side by side, each its own root (a legal BVH; glTF needs a common root added)."""
    J = clip.num_joints
    parents = np.concatenate([clip.parents, np.where(clip.parents < 0, -1, clip.parents + J)])
    names = clip.names + [f"{n}.001" for n in clip.names]
    offsets = np.concatenate([clip.offsets, clip.offsets])
    motion = np.concatenate([clip.motion, clip.motion], axis=1)
    motion[:, clip.motion.shape[1]] += 100.0  # second root's Xposition: one metre to the side
    ends = {**clip.end_sites, **{j + J: v for j, v in clip.end_sites.items()}}
    return BVH(names, parents, offsets, clip.channels * 2, ends, clip.frame_time, motion)


# ----------------------------------------------------------------------------- an independent player


def quaternion_matrices(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions x, y, z, w (glTF order, also scipy's) -> (..., 3, 3)."""
    return Rotation.from_quat(q.reshape(-1, 4)).as_matrix().reshape(*q.shape[:-1], 3, 3)


def play(gltf: dict, binary: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample the first animation at its keyframes and run forward kinematics over the node tree.

    Returns the key times (F,), world rotations (F, N, 3, 3) and world positions (F, N, 3) of every node.
    """
    nodes, animation = gltf["nodes"], gltf["animations"][0]
    times = read_accessor(gltf, binary, animation["samplers"][0]["input"])
    F, N = len(times), len(nodes)
    assert all("scale" not in n and "matrix" not in n for n in nodes)
    local_t = np.array([n.get("translation", [0.0, 0.0, 0.0]) for n in nodes])[None].repeat(F, 0)
    local_q = np.array([n.get("rotation", [0.0, 0.0, 0.0, 1.0]) for n in nodes])[None].repeat(F, 0)
    for channel in animation["channels"]:
        sampler = animation["samplers"][channel["sampler"]]
        assert sampler["interpolation"] == "LINEAR"
        assert np.array_equal(read_accessor(gltf, binary, sampler["input"]), times)
        target = {"translation": local_t, "rotation": local_q}[channel["target"]["path"]]
        target[:, channel["target"]["node"]] = read_accessor(gltf, binary, sampler["output"])
    rot, pos = np.zeros((F, N, 3, 3)), np.zeros((F, N, 3))

    def visit(node: int, parent_rot: np.ndarray, parent_pos: np.ndarray) -> None:
        pos[:, node] = parent_pos + np.einsum("fij,fj->fi", parent_rot, local_t[:, node])
        rot[:, node] = parent_rot @ quaternion_matrices(local_q[:, node])
        for child in nodes[node].get("children", []):
            visit(child, rot[:, node], pos[:, node])

    for root in gltf["scenes"][gltf.get("scene", 0)]["nodes"]:
        visit(root, np.broadcast_to(np.eye(3), (F, 3, 3)), np.zeros((F, 3)))
    return times, rot, pos


def joint_positions(gltf: dict, binary: bytes, names: list[str]) -> np.ndarray:
    """World positions (F, len(names), 3) of the named nodes."""
    _, _, pos = play(gltf, binary)
    index = {node.get("name"): k for k, node in enumerate(gltf["nodes"])}
    return pos[:, [index[n] for n in names]]


def skinned_vertices(gltf: dict, binary: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear blend skinning of the one mesh at every keyframe: (F, V, 3) posed vertices, the bind-pose
    vertices (V, 3) and the skin joint of each vertex (V,)."""
    _, rot, pos = play(gltf, binary)
    body = next(n for n in gltf["nodes"] if "mesh" in n)
    skin = gltf["skins"][body["skin"]]
    attributes = gltf["meshes"][body["mesh"]]["primitives"][0]["attributes"]
    bind = read_accessor(gltf, binary, attributes["POSITION"]).astype(np.float64)
    joint_ids = read_accessor(gltf, binary, attributes["JOINTS_0"])
    weights = read_accessor(gltf, binary, attributes["WEIGHTS_0"])
    inverse_bind = read_accessor(gltf, binary, skin["inverseBindMatrices"]).astype(np.float64)
    world = np.zeros(rot.shape[:2] + (4, 4))
    world[..., :3, :3], world[..., :3, 3], world[..., 3, 3] = rot, pos, 1.0
    joint_matrix = world[:, skin["joints"]] @ inverse_bind  # (F, skin joints, 4, 4)
    homogeneous = np.concatenate([bind, np.ones((len(bind), 1))], axis=1)
    posed = np.zeros((len(rot), len(bind), 3))
    for slot in range(4):
        moved = np.einsum("fvij,vj->fvi", joint_matrix[:, joint_ids[:, slot]], homogeneous)[..., :3]
        posed += weights[None, :, slot, None] * moved
    return posed, bind, joint_ids[:, 0]


# ----------------------------------------------------------------------------- the file itself


def chain(clip: BVH, j: int) -> list[int]:
    """Joint j and its ancestors."""
    return [j] + (chain(clip, int(clip.parents[j])) if clip.parents[j] >= 0 else [])


def test_round_trip_reproduces_the_motion(joints: np.ndarray) -> None:
    gltf, binary = read_glb(joints_to_glb(joints))
    times, _, _ = play(gltf, binary)
    assert np.allclose(times, np.arange(len(joints)) / 20, atol=1e-6)
    error = np.linalg.norm(joint_positions(gltf, binary, JOINT_NAMES) - joints, axis=-1)
    assert error.max() < BOUND, (error.max(), np.unravel_index(error.argmax(), error.shape))
    clip = joints_to_bvh(joints)  # the glTF plays the BVH clip, to float32 precision
    expected, _ = clip.forward_kinematics()
    assert np.abs(joint_positions(gltf, binary, clip.names) - expected * CM).max() < FLOAT32


def test_skeleton_skin_mesh_and_animation(joints: np.ndarray) -> None:
    clip = joints_to_bvh(joints)
    gltf, binary = read_glb(joints_to_glb(joints))
    nodes = gltf["nodes"]
    # one node per joint, the BVH's names and hierarchy, rest translation = OFFSET in metres, no rotation
    assert [n["name"] for n in nodes[:22]] == clip.names and len(nodes) == 23 and "mesh" in nodes[22]
    for j, node in enumerate(nodes[:22]):
        assert np.allclose(node["translation"], clip.offsets[j] * CM) and "rotation" not in node
        assert node.get("children", []) == np.flatnonzero(clip.parents == j).tolist()
    assert gltf["scenes"][gltf["scene"]]["nodes"] == [0, 22]  # the skeleton root and the skinned mesh
    assert set(nodes[22]) == {"name", "mesh", "skin"}  # a skinned mesh node has no transform of its own
    # the skin: all joints; inverse bind matrices undo the rest positions
    skin = gltf["skins"][nodes[22]["skin"]]
    assert skin["joints"] == list(range(22)) and skin["skeleton"] == 0
    rest = np.array([np.sum([clip.offsets[k] for k in chain(clip, j)], axis=0) for j in range(22)]) * CM
    inverse_bind = read_accessor(gltf, binary, skin["inverseBindMatrices"])
    assert np.allclose(inverse_bind[:, :3, :3], np.eye(3)) and np.allclose(inverse_bind[:, :3, 3], -rest, atol=1e-6)
    # the mesh: unit normals, one joint per vertex with weight 1, POSITION bounds
    primitive = gltf["meshes"][nodes[22]["mesh"]]["primitives"][0]
    attributes = primitive["attributes"]
    assert set(attributes) == {"POSITION", "NORMAL", "JOINTS_0", "WEIGHTS_0"}
    positions = read_accessor(gltf, binary, attributes["POSITION"])
    assert gltf["accessors"][attributes["POSITION"]]["min"] == positions.min(axis=0).tolist()
    assert gltf["accessors"][attributes["POSITION"]]["max"] == positions.max(axis=0).tolist()
    assert np.allclose(np.linalg.norm(read_accessor(gltf, binary, attributes["NORMAL"]), axis=1), 1, atol=1e-6)
    weights = read_accessor(gltf, binary, attributes["WEIGHTS_0"])
    assert np.array_equal(weights, np.tile(np.float32([1, 0, 0, 0]), (len(positions), 1)))
    indices = read_accessor(gltf, binary, primitive["indices"])
    assert len(indices) % 3 == 0 and indices.max() < len(positions) and "mode" not in primitive  # triangles
    # the animation: root translation + 22 rotations, LINEAR, times in seconds, continuous unit quaternions
    (animation,) = gltf["animations"]
    paths = [(c["target"]["node"], c["target"]["path"]) for c in animation["channels"]]
    assert paths == [(0, "translation")] + [(j, "rotation") for j in range(22)]
    times = gltf["accessors"][animation["samplers"][0]["input"]]
    assert (
        times["min"] == [0.0] and np.isclose(times["max"][0], (len(joints) - 1) / 20) and times["count"] == len(joints)
    )
    for sampler in animation["samplers"][1:]:
        q = read_accessor(gltf, binary, sampler["output"]).astype(np.float64)
        assert q.shape == (len(joints), 4) and np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-6)
        assert (np.sum(q[1:] * q[:-1], axis=1) >= 0).all()  # no sign flips: LINEAR takes the short way


def expected_box_centres(clip: BVH, gltf: dict, binary: bytes) -> np.ndarray:
    """(F, boxes, 3): where each box of the stick mesh should be centred, in the order they are written
    (joint order: the bone from the parent, then the End Site's stick or a leaf's cube), from the file's FK."""
    _, rot, pos = play(gltf, binary)
    index = {node.get("name"): k for k, node in enumerate(gltf["nodes"])}
    rot, pos = rot[:, [index[n] for n in clip.names]], pos[:, [index[n] for n in clip.names]]
    centres = []
    for j, p in enumerate(clip.parents.tolist()):
        if p >= 0:
            centres.append((pos[:, p] + pos[:, j]) / 2)
        if j in clip.end_sites and np.linalg.norm(clip.end_sites[j]) > 0:
            centres.append(pos[:, j] + rot[:, j] @ clip.end_sites[j] * CM / 2)
        elif j not in clip.parents:
            centres.append(pos[:, j])
    return np.stack(centres, axis=1)


@pytest.mark.parametrize("stretch", [False, True], ids=["fixed-skeleton", "stretch"])
def test_the_mesh_follows_the_bones(joints: np.ndarray, stretch: bool) -> None:
    """Skinned with the file's own inverse bind matrices, every box stays centred on its posed bone, also when
    bones stretch (stretch=True: every joint has position channels)."""
    clip = joints_to_bvh(joints, stretch=stretch)
    gltf, binary = read_glb(bvh_to_glb(clip, CM))
    posed, bind, owner = skinned_vertices(gltf, binary)
    assert len(bind) % 24 == 0  # boxes of 24 vertices (4 per face, flat normals)
    centres = posed.reshape(len(posed), -1, 24, 3).mean(axis=2)  # (F, boxes, 3)
    assert centres.shape[1] == 21 + 5  # a box per bone and per End Site
    assert np.abs(centres - expected_box_centres(clip, gltf, binary)).max() < FLOAT32
    first = owner.reshape(-1, 24)[0]  # pelvis -> left_hip: bound to the pelvis, tail to the hip if it moves
    assert set(first) == ({0, 1} if stretch else {0})


def test_any_rig_round_trips(rig: BVH) -> None:
    """A raw BVH of another skeleton: every joint has position channels, so every joint gets a translation
    track and every stick stretches to its child; zero-length End Sites give a cube at the leaf instead."""
    gltf, binary = read_glb(bvh_to_glb(rig, CM))
    expected, _ = rig.forward_kinematics()
    assert np.abs(joint_positions(gltf, binary, rig.names) - expected * CM).max() < FLOAT32
    paths = [(c["target"]["node"], c["target"]["path"]) for c in gltf["animations"][0]["channels"]]
    assert paths == [(j, path) for j in range(rig.num_joints) for path in ("translation", "rotation")]
    times = read_accessor(gltf, binary, gltf["animations"][0]["samplers"][0]["input"])
    assert np.allclose(np.diff(times), rig.frame_time, atol=1e-5)  # the rig's own 30 fps
    posed, _, _ = skinned_vertices(gltf, binary)
    centres = posed.reshape(len(posed), -1, 24, 3).mean(axis=2)
    assert np.abs(centres - expected_box_centres(rig, gltf, binary)).max() < FLOAT32


def test_fixed_joints_keep_their_rest_pose(joints: np.ndarray) -> None:
    clip = with_fixed_joints(joints_to_bvh(joints), ["left_foot", "right_foot", "head"])
    gltf, binary = read_glb(bvh_to_glb(clip, CM))
    animated = {gltf["nodes"][c["target"]["node"]]["name"] for c in gltf["animations"][0]["channels"]}
    assert animated == set(clip.names) - {"left_foot", "right_foot", "head"}
    expected, _ = clip.forward_kinematics()
    assert np.abs(joint_positions(gltf, binary, clip.names) - expected * CM).max() < FLOAT32


def test_several_roots_get_a_common_root(rig: BVH) -> None:
    clip = two_roots(rig)
    gltf, binary = read_glb(bvh_to_glb(clip, CM))
    assert gltf["nodes"][44]["name"] == "<skeleton>" and gltf["nodes"][44]["children"] == [0, 22]
    assert gltf["skins"][0]["skeleton"] == 44 and gltf["skins"][0]["joints"] == list(range(45))
    expected, _ = clip.forward_kinematics()
    assert np.abs(joint_positions(gltf, binary, clip.names) - expected * CM).max() < FLOAT32


def test_bad_input_is_refused_by_name(joints: np.ndarray, rig: BVH) -> None:
    with pytest.raises(ValueError, match=r"shape \(T, 22, 3\).*\(10, 21, 3\)"):
        joints_to_glb(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match=r"shape \(T, 22, 3\)"):
        joints_to_glb(joints[0])
    broken = joints.copy()
    broken[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf .* first at frame 5"):
        joints_to_glb(broken)
    with pytest.raises(ValueError, match="fps"):
        joints_to_glb(joints, fps=0)
    for scale in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="metres_per_unit must be a positive number"):
            bvh_to_glb(rig, scale)
    motion = rig.motion.copy()
    motion[7, 4] = np.inf
    clip = BVH(rig.names, rig.parents, rig.offsets, rig.channels, rig.end_sites, rig.frame_time, motion)
    with pytest.raises(ValueError, match="NaN or inf in frame 7"):
        bvh_to_glb(clip, CM)


def test_write_glb(joints: np.ndarray, tmp_path: Path) -> None:
    data = joints_to_glb(joints[:10])
    path = write_glb(tmp_path / "out" / "clip.glb", data)
    assert path.read_bytes() == data and read_glb(data)[0]["asset"]["version"] == "2.0"
    assert [p.name for p in path.parent.iterdir()] == ["clip.glb"]


# ----------------------------------------------------------------------------- tools that read it


def node_json(script: str, *args: object) -> dict:
    """Run tests/js/<script> under Node and parse the JSON it prints."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH (Node 20 runs the glTF-Validator and three.js checks)")
    if not (JS / "node_modules").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `(cd tests/js && npm ci)`")
    run = subprocess.run(["node", str(JS / script), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads(run.stdout)


def validate(path: Path) -> dict:
    report = node_json("validate.mjs", path)
    lock = json.loads((JS / "package-lock.json").read_text())
    assert report["validatorVersion"] == lock["packages"]["node_modules/gltf-validator"]["version"]
    return report


def assert_valid(data: bytes, tmp_path: Path) -> None:
    """The Khronos glTF-Validator reports no error, warning or info (hints are not asked for either)."""
    report = validate(write_glb(tmp_path / "clip.glb", data))
    issues = report["issues"]
    assert (issues["numErrors"], issues["numWarnings"], issues["numInfos"], issues["numHints"]) == (0, 0, 0, 0), issues
    assert report["info"]["animationCount"] == 1 and report["info"]["hasSkins"] is True


def test_khronos_validator_finds_nothing_in_a_motion(joints: np.ndarray, tmp_path: Path) -> None:
    assert_valid(joints_to_glb(joints), tmp_path)


@pytest.mark.parametrize("variant", ["as-is", "two-roots", "fixed-joints"])
def test_khronos_validator_finds_nothing_in_a_rig(variant: str, rig: BVH, tmp_path: Path) -> None:
    clip = {
        "as-is": lambda: rig,
        "two-roots": lambda: two_roots(rig),
        "fixed-joints": lambda: with_fixed_joints(rig, ["Head", "Hips"]),
    }[variant]()
    assert_valid(bvh_to_glb(clip, CM), tmp_path)


def test_khronos_validator_is_really_checking(joints: np.ndarray, tmp_path: Path) -> None:
    """A control: the same file without POSITION's required min/max is reported as an error."""
    gltf, binary = read_glb(joints_to_glb(joints))
    position = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    del position["min"], position["max"]
    report = validate(write_glb(tmp_path / "broken.glb", pack_glb(gltf, binary)))
    codes = {m["code"] for m in report["issues"]["messages"]}
    assert report["issues"]["numErrors"] >= 1 and "MESH_PRIMITIVE_POSITION_ACCESSOR_WITHOUT_BOUNDS" in codes, codes


def test_three_js_loads_and_plays_it(joints: np.ndarray, tmp_path: Path) -> None:
    path = write_glb(tmp_path / "clip.glb", joints_to_glb(joints))
    frames = [0, len(joints) // 2, len(joints) - 1]
    result = node_json("three_load.mjs", path, *[f / 20 for f in frames])
    lock = json.loads((JS / "package-lock.json").read_text())
    assert result["three"] == lock["packages"]["node_modules/three"]["version"].split(".")[1]
    assert (result["skinnedMeshes"], result["bones"], result["animations"]) == (1, 22, 1)
    assert sorted(result["boneNames"]) == sorted(JOINT_NAMES)
    assert abs(result["duration"] - (len(joints) - 1) / 20) < 1e-5
    assert len(result["tracks"]) == 23 and sorted(result["tracks"]) == sorted(
        ["pelvis.position"] + [f"{name}.quaternion" for name in JOINT_NAMES]
    )
    for frame in frames:  # three.js's player poses the bones where the joints were
        pose = result["poses"][str(frame / 20)]
        bones = np.array([pose[name] for name in JOINT_NAMES])
        assert np.abs(bones - joints[frame]).max() < BOUND, frame


# Blender (Debian's 3.4): import the .glb at the clip's frame rate and dump every posed bone's head in world
# space. Its glTF importer needs numpy, which Debian's Blender does not depend on. It finds the numpy of an
# activated Python 3.11 virtualenv by itself (it takes the python3.11 on PATH as its own, venv included);
# otherwise the numpy of the Python running the tests is appended to sys.path (it loads when both are 3.11);
# without any numpy the test is skipped.
BLENDER_DUMP = """
import json, sys
src, out, fps, frames, fallback = sys.argv[sys.argv.index("--") + 1:]
try:
    import numpy
except ImportError:
    sys.path.append(fallback)
    try:
        import numpy
    except ImportError as error:
        reason = f"Blender's Python {sys.version.split()[0]} has no numpy ({error}): apt-get install python3-numpy"
        json.dump({"skip": reason}, open(out, "w"))
        sys.exit(0)
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = int(fps), 1.0  # the importer puts a key at time t on frame t * fps
bpy.ops.import_scene.gltf(filepath=src)
arm = next(o for o in scene.objects if o.type == "ARMATURE")
heads = {}
for f in map(int, frames.split(",")):
    scene.frame_set(f)
    heads[f] = {b.name: list(arm.matrix_world @ b.head) for b in arm.pose.bones}
json.dump({"version": bpy.app.version_string, "meshes": sum(o.type == "MESH" for o in scene.objects),
           "heads": heads}, open(out, "w"))
"""


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not on PATH")
def test_blender_imports_it_with_the_joints_where_they_were(joints: np.ndarray, tmp_path: Path) -> None:
    path = write_glb(tmp_path / "clip.glb", joints_to_glb(joints))
    frames = [0, 1, len(joints) // 2, len(joints) - 1]
    out = tmp_path / "heads.json"
    cmd = ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", BLENDER_DUMP, "--"]
    cmd += [str(path), str(out), "20", ",".join(map(str, frames)), str(Path(np.__file__).parents[1])]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and out.exists(), run.stdout[-3000:] + run.stderr[-2000:]
    result = json.loads(out.read_text())
    if "skip" in result:
        pytest.skip(result["skip"])
    assert result["meshes"] == 1
    for frame, heads in result["heads"].items():
        assert sorted(heads) == sorted(JOINT_NAMES)
        xyz = np.array([heads[name] for name in JOINT_NAMES])
        ours = np.stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]], axis=-1)  # Blender's Z up: (x, -z, y) of glTF's
        assert np.abs(ours - joints[int(frame)]).max() < BOUND, frame
