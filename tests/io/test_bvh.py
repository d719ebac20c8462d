"""Tests for motionlcm.io.bvh: parsing, forward kinematics, Euler conversions, writing, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from motionlcm.io import bvh as bvh_mod
from motionlcm.io.bvh import (
    BVH,
    BVHError,
    euler_to_matrix,
    format_bvh,
    matrix_to_euler,
    nearest_euler,
    parse_bvh,
    read_bvh,
    write_bvh,
)

ORDERS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]
BN_FILES = [
    "dataset-2_raise-up-right-hand_normal_001.bvh",
    "dataset-2_run_active_001.bvh",
    "dataset-2_walk-turn-left_normal_001.bvh",
    "dataset-2_walk-turn-right_normal_004.bvh",
    "dataset-2_walk_normal_001.bvh",
    "dataset-2_wave-left-hand_elderly_001.bvh",
]
BN_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")


# ----------------------------------------------------------------------------- helpers


def reference_fk(bvh: BVH) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Plain per-frame, per-joint FK with scipy Euler matrices (independent of the module)."""
    F, J = bvh.num_frames, bvh.num_joints
    pos = np.zeros((F, J, 3))
    ends = {j: np.zeros((F, 3)) for j in bvh.end_sites}
    for f in range(F):
        world_r, world_p = [None] * J, [None] * J
        col = 0
        for j in range(J):
            trans = bvh.offsets[j].copy()
            axes, angles = "", []
            for name in bvh.channels[j]:
                value = bvh.motion[f, col]
                col += 1
                axis = "XYZ".index(name[0].upper())
                if name.lower().endswith("position"):
                    trans[axis] = value
                else:
                    axes += name[0].upper()
                    angles.append(value)
            local = Rotation.from_euler(axes, angles, degrees=True).as_matrix() if axes else np.eye(3)
            p = bvh.parents[j]
            if p < 0:
                world_r[j], world_p[j] = local, trans
            else:
                world_r[j] = world_r[p] @ local
                world_p[j] = world_p[p] + world_r[p] @ trans
            pos[f, j] = world_p[j]
            if j in bvh.end_sites:
                ends[j][f] = world_p[j] + world_r[j] @ bvh.end_sites[j]
    return pos, ends


def assert_same_hierarchy(a: BVH, b: BVH) -> None:
    assert a.names == b.names
    np.testing.assert_array_equal(a.parents, b.parents)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert a.channels == b.channels
    assert sorted(a.end_sites) == sorted(b.end_sites)
    for j in a.end_sites:
        np.testing.assert_array_equal(a.end_sites[j], b.end_sites[j])
    assert a.frame_time == b.frame_time


@pytest.fixture(scope="module")
def bn_clips(bn_fixture_dir: Path) -> dict[str, BVH]:
    return {name: read_bvh(bn_fixture_dir / name) for name in BN_FILES}


# ----------------------------------------------------------------------------- real data


def test_bn_fixture_structure(bn_clips: dict[str, BVH]) -> None:
    frames = {"dataset-2_walk_normal_001.bvh": 96, "dataset-2_walk-turn-right_normal_004.bvh": 215}
    for name, clip in bn_clips.items():
        assert clip.num_joints == 22
        assert clip.names[:3] == ["joint_Root", "Hips", "Spine"]
        assert clip.parents[0] == -1 and (clip.parents[1:] >= 0).all()
        assert all(ch == BN_CHANNELS for ch in clip.channels)
        assert {clip.rotation_order(j) for j in range(22)} == {"ZXY"}
        assert clip.channel_slice(1) == slice(6, 12)
        assert clip.motion.shape == (clip.num_frames, 132)
        assert clip.fps == pytest.approx(30.0, rel=1e-5)
        assert sorted(clip.names[j] for j in clip.end_sites) == [
            "Hand_L",
            "Hand_R",
            "Head",
            "Toes_L",
            "Toes_R",
        ]
        if name in frames:
            assert clip.num_frames == frames[name]
    walk = bn_clips["dataset-2_walk_normal_001.bvh"]
    np.testing.assert_array_equal(walk.offsets[1], [-0.726466, 93.3139, -2.00062])
    np.testing.assert_array_equal(walk.motion[0, 6:12], [1.12056, 93.1488, -543.347, 90.2825, -6.48326, 0.618737])


def test_bn_physical_facts(bn_clips: dict[str, BVH]) -> None:
    for clip in bn_clips.values():
        pos, _ = clip.forward_kinematics()
        # the dummy joint_Root sits at the origin, so min y over all joints is exactly the floor (0)
        np.testing.assert_array_equal(pos[:, 0], 0.0)
        assert abs(pos[..., 1].min()) < 0.5
        # the lowest real joint (a toe joint centre) is a few cm above that floor
        assert 2.0 < pos[:, 1:, 1].min() < 8.0
        assert 80.0 < np.median(pos[:, 1, 1]) < 100.0  # Hips height
        assert 130.0 < np.median(pos[:, clip.names.index("Head"), 1]) < 170.0  # head above hips
        # non-Hips position channels repeat the OFFSET
        trans = clip.local_translations()
        np.testing.assert_allclose(trans[:, 2:], np.broadcast_to(clip.offsets[2:], trans[:, 2:].shape), atol=1e-4)
        # bones (excluding the Hips trajectory) are rigid and as long as their OFFSET
        child = np.arange(2, 22)
        lengths = np.linalg.norm(pos[:, child] - pos[:, clip.parents[child]], axis=-1)
        np.testing.assert_allclose(
            lengths, np.broadcast_to(np.linalg.norm(clip.offsets[child], axis=-1), lengths.shape), atol=1e-3
        )


@pytest.mark.parametrize("name", BN_FILES)
def test_bn_write_read_roundtrip(bn_clips: dict[str, BVH], tmp_path: Path, name: str) -> None:
    clip = bn_clips[name]
    out = tmp_path / name
    write_bvh(out, clip)
    back = read_bvh(out)
    assert_same_hierarchy(clip, back)
    assert np.abs(back.motion - clip.motion).max() <= 0.5e-6 + 1e-12
    np.testing.assert_allclose(back.forward_kinematics()[0], clip.forward_kinematics()[0], atol=1e-4, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no .tmp left behind
    text = out.read_text()
    assert "\n\tJOINT Hips\n\t{\n\t\tOFFSET " in text and "\n\t\t\t\t\tJOINT Head\n" in text
    assert "\nFrame Time: " in text and "\r" not in text


def test_write_precision_is_honoured(bn_clips: dict[str, BVH]) -> None:
    clip = bn_clips["dataset-2_run_active_001.bvh"]
    back = parse_bvh(format_bvh(clip, precision=2))
    err = np.abs(back.motion - clip.motion).max()
    assert 1e-4 < err <= 0.5e-2 + 1e-12
    assert parse_bvh(format_bvh(clip, precision=0)).motion.tolist() == np.round(clip.motion).tolist()


def test_formatting_is_compact() -> None:
    clip = BVH(
        ["a"],
        [-1],
        [[0, 0, 0]],
        [("Xposition", "Yposition", "Zposition")],
        {},
        1 / 30,
        np.array([[100.0, -0.0000001, 1.5]]),
    )
    text = format_bvh(clip)
    assert text.endswith("Frames: 1\nFrame Time: 0.03333333333333333\n100 0 1.5\n")
    assert parse_bvh(text).frame_time == 1 / 30


def test_fk_matches_reference_loop_on_real_clip(bn_clips: dict[str, BVH]) -> None:
    clip = bn_clips["dataset-2_walk-turn-left_normal_001.bvh"]
    short = BVH(
        clip.names,
        clip.parents,
        clip.offsets,
        clip.channels,
        clip.end_sites,
        clip.frame_time,
        clip.motion[::10],
    )
    pos, rot = short.forward_kinematics()
    ref_pos, ref_ends = reference_fk(short)
    np.testing.assert_allclose(pos, ref_pos, atol=1e-8)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-10)
    ends = short.end_site_positions()
    assert sorted(ends) == sorted(ref_ends)
    for j in ends:
        np.testing.assert_allclose(ends[j], ref_ends[j], atol=1e-8)


# ----------------------------------------------------------------------------- Euler angles


@pytest.mark.parametrize("order", ORDERS)
def test_euler_matches_scipy_and_roundtrips(order: str) -> None:
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, size=(200, 3))
    angles[:, 1] = rng.uniform(-89, 89, size=200)  # away from gimbal lock
    mats = euler_to_matrix(angles, order)
    np.testing.assert_allclose(mats, Rotation.from_euler(order, angles, degrees=True).as_matrix(), atol=1e-12)
    back = matrix_to_euler(mats, order)
    np.testing.assert_allclose(back, angles, atol=1e-8)
    scipy_mats = Rotation.random(50, random_state=1).as_matrix()
    np.testing.assert_allclose(
        matrix_to_euler(scipy_mats, order),
        Rotation.from_matrix(scipy_mats).as_euler(order, degrees=True),
        atol=1e-8,
    )


@pytest.mark.parametrize("order", ORDERS)
def test_matrix_to_euler_at_gimbal_lock(order: str) -> None:
    angles = np.array([[30.0, 90.0, 20.0], [-70.0, -90.0, 45.0], [0.0, 90.0, 0.0]])
    mats = euler_to_matrix(angles, order)
    back = matrix_to_euler(mats, order)
    np.testing.assert_allclose(back[:, 1], angles[:, 1], atol=1e-5)
    np.testing.assert_allclose(euler_to_matrix(back, order), mats, atol=1e-7)


def test_euler_shapes_and_partial_orders() -> None:
    angles = np.zeros((4, 5, 3))
    assert euler_to_matrix(angles, "ZXY").shape == (4, 5, 3, 3)
    np.testing.assert_allclose(euler_to_matrix([90.0], "Z"), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)
    two = euler_to_matrix([30.0, 40.0], "YX")
    np.testing.assert_allclose(two, Rotation.from_euler("YX", [30, 40], degrees=True).as_matrix(), atol=1e-12)
    with pytest.raises(ValueError):
        euler_to_matrix(angles, "XY")
    with pytest.raises(ValueError):
        matrix_to_euler(np.eye(3), "XYX")


# ----------------------------------------------------------------------------- synthetic rig

SYNTHETIC_LINES = [
    "HIERARCHY",
    "ROOT Pelvis",
    "{",
    "  OFFSET 0 0 0",
    "\tCHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation",
    "  JOINT Spine",
    " \t{",
    "\t OFFSET 0 10 0",
    "\t\tCHANNELS  3\tXrotation Yrotation   Zrotation",
    "\t\tJOINT Head",
    "\t\t{",
    "\t\t   OFFSET 0 5 0",
    "\t\t   CHANNELS 3 Zrotation Yrotation Xrotation",
    "\t\t   End site",
    "\t\t   {",
    "\t\t      OFFSET 0 3 0",
    "\t\t   }",
    "\t\t}",
    "\t}",
    "\tJOINT Tail",
    "\t{",
    "\t\tOFFSET 0 -2 -4",
    "\t\tCHANNELS 0",
    "\t\tEnd Site",
    "\t\t{",
    "\t\t\tOFFSET 0 0 -5",
    "\t\t}",
    "\t}",
    "}",
    "ROOT Prop",
    "{",
    "\tOFFSET 5 6 7",
    "\tCHANNELS 2 Zposition Xposition",
    "}",
    "MOTION",
    "Frames:\t3",
    "Frame Time: 0.04",
    "1 2 3  0 0 0  0 0 0  0 0 0  -1 -2",
    "1 2 3\t90 0 0  0 0 0  0 0 0  -1 -2",
    "1 2 3  0 0 0  90 0 0  10 20 30  -1 -2",
]  # 14 channels; motion lines are 38-40


def synthetic_text(newline: str = "\n") -> str:
    return newline.join(SYNTHETIC_LINES) + newline


def test_synthetic_rig_crlf_mixed_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "rig.bvh"
    path.write_bytes(synthetic_text("\r\n").encode())
    clip = read_bvh(path)
    assert clip.names == ["Pelvis", "Spine", "Head", "Tail", "Prop"]
    assert clip.parents.tolist() == [-1, 0, 1, 0, -1]
    assert [clip.rotation_order(j) for j in range(5)] == ["YXZ", "XYZ", "ZYX", "", ""]
    assert clip.channels[3] == () and clip.channel_slice(3) == slice(12, 12)
    assert clip.channels[4] == ("Zposition", "Xposition")
    assert sorted(clip.end_sites) == [2, 3] and clip.frame_time == 0.04
    assert clip.motion.shape == (3, 14)

    pos, _ = clip.forward_kinematics()
    ends = clip.end_site_positions()
    # hand-computed: frame 0 rest pose at root (1, 2, 3); Prop takes x=-2, z=-1 from channels, y from OFFSET
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 12, 3], [1, 17, 3], [1, 0, -1], [-2, 6, -1]], atol=1e-12)
    np.testing.assert_allclose(ends[2][0], [1, 20, 3], atol=1e-12)
    np.testing.assert_allclose(ends[3][0], [1, 0, -6], atol=1e-12)
    # frame 1: root Yrotation 90 maps (x, y, z) -> (z, y, -x): Tail offset (0, -2, -4) -> (-4, -2, 0)
    np.testing.assert_allclose(pos[1, 3], [-3, 0, 3], atol=1e-12)
    # frame 2: Spine Xrotation 90 maps (0, 5, 0) -> (0, 0, 5)
    np.testing.assert_allclose(pos[2, 2], [1, 12, 8], atol=1e-12)

    ref_pos, ref_ends = reference_fk(clip)
    np.testing.assert_allclose(pos, ref_pos, atol=1e-10)
    for j in ends:
        np.testing.assert_allclose(ends[j], ref_ends[j], atol=1e-10)

    back = parse_bvh(format_bvh(clip))
    assert_same_hierarchy(clip, back)
    np.testing.assert_array_equal(back.motion, clip.motion)
    assert parse_bvh(synthetic_text("\n")).motion.tolist() == clip.motion.tolist()


def test_local_translations_replace_offset() -> None:
    clip = parse_bvh(synthetic_text())
    trans = clip.local_translations()
    np.testing.assert_array_equal(trans[:, 0], [[1, 2, 3]] * 3)
    np.testing.assert_array_equal(trans[:, 1], [[0, 10, 0]] * 3)
    np.testing.assert_array_equal(trans[:, 4], [[-2, 6, -1]] * 3)
    rots = clip.local_rotations()
    np.testing.assert_array_equal(rots[:, 3], np.broadcast_to(np.eye(3), (3, 3, 3)))


# ----------------------------------------------------------------------------- from_rotations


@pytest.mark.parametrize("order", ["ZXY", "YXZ"])
def test_from_rotations_write_read_fk(tmp_path: Path, order: str) -> None:
    names = ["root", "a", "b", "c", "d", "e"]
    parents = [-1, 0, 1, 2, 0, 4]
    rng = np.random.default_rng(3)
    offsets = rng.normal(scale=10.0, size=(6, 3))
    F = 20
    rotations = Rotation.random(F * 6, random_state=4).as_matrix().reshape(F, 6, 3, 3)
    root_positions = rng.normal(scale=50.0, size=(F, 3))
    clip = BVH.from_rotations(
        names,
        parents,
        offsets,
        rotations,
        root_positions,
        1 / 20,
        order=order,
        end_sites={3: np.array([0.0, 4.0, 0.0]), 5: np.array([1.0, 0.0, 0.0])},
    )
    assert clip.channels[0] == ("Xposition", "Yposition", "Zposition") + tuple(f"{a}rotation" for a in order)
    assert all(clip.rotation_order(j) == order and len(clip.channels[j]) == 3 for j in range(1, 6))
    np.testing.assert_allclose(clip.local_rotations(), rotations, atol=1e-10)

    # expected positions straight from the inputs (root position replaces its OFFSET)
    world_r, world_p = np.zeros((F, 6, 3, 3)), np.zeros((F, 6, 3))
    for j, p in enumerate(parents):
        if p < 0:
            world_r[:, j], world_p[:, j] = rotations[:, j], root_positions
        else:
            world_r[:, j] = world_r[:, p] @ rotations[:, j]
            world_p[:, j] = world_p[:, p] + world_r[:, p] @ offsets[j]
    path = tmp_path / "gen.bvh"
    write_bvh(path, clip)
    back = read_bvh(path)
    assert_same_hierarchy(clip, back)
    pos, rot = back.forward_kinematics()
    np.testing.assert_allclose(pos, world_p, atol=1e-4)
    np.testing.assert_allclose(rot, world_r, atol=1e-6)
    np.testing.assert_allclose(back.end_site_positions()[3], world_p[:, 3] + world_r[:, 3] @ [0, 4, 0], atol=1e-4)


def test_bvh_rejects_inconsistent_fields() -> None:
    with pytest.raises(ValueError, match="depth-first"):
        BVH(["r", "a", "b", "c"], [-1, 0, 0, 1], np.zeros((4, 3)), [()] * 4, {}, 0.1, np.zeros((1, 0)))
    with pytest.raises(ValueError, match="parents must precede"):
        BVH(["r", "a"], [1, -1], np.zeros((2, 3)), [()] * 2, {}, 0.1, np.zeros((1, 0)))
    with pytest.raises(ValueError, match="motion has shape"):
        BVH(["r"], [-1], np.zeros((1, 3)), [("Xrotation",)], {}, 0.1, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="cannot be written"):
        BVH(["left\nhand"], [-1], np.zeros((1, 3)), [()], {}, 0.1, np.zeros((1, 0)))
    with pytest.raises(ValueError, match="unknown channel"):
        BVH(["r"], [-1], np.zeros((1, 3)), [("Xscale",)], {}, 0.1, np.zeros((1, 1)))


# ----------------------------------------------------------------------------- malformed files


def edit(lines: list[str], index: int, new: list[str]) -> list[str]:
    """Replace line ``index`` (1-based) by ``new`` (possibly empty)."""
    return lines[: index - 1] + new + lines[index:]


BAD_FILES = {
    # name: (lines, expected 1-based line, message fragment)
    "truncated_motion": (SYNTHETIC_LINES[:-2], 39, "Frames: 3 but only 1 motion lines"),
    "wrong_value_count": (
        edit(SYNTHETIC_LINES, 39, ["1 2 3 90 0 0 0 0 0 0 0 0 -1"]),
        39,
        "expected 14 values, found 13",
    ),
    "too_many_values": (
        edit(SYNTHETIC_LINES, 38, [SYNTHETIC_LINES[37] + " 7"]),
        38,
        "expected 14 values, found 15",
    ),
    "non_numeric": (
        edit(SYNTHETIC_LINES, 40, ["1 2 3 0 0 0 90 0 0 10 2O 30 -1 -2"]),
        40,
        "non-numeric value '2O'",
    ),
    "extra_frame": (SYNTHETIC_LINES + [" ".join(["0"] * 14)], 41, "more motion lines than Frames: 3"),
    "channels_count": (
        edit(SYNTHETIC_LINES, 9, ["CHANNELS 3 Xrotation Yrotation"]),
        9,
        "CHANNELS says 3 but lists 2",
    ),
    "channels_no_count": (edit(SYNTHETIC_LINES, 9, ["CHANNELS Xrotation"]), 9, "must start with a count"),
    "unknown_channel": (
        edit(SYNTHETIC_LINES, 13, ["CHANNELS 3 Zrotation Wrotation Xrotation"]),
        13,
        "'Wrotation'",
    ),
    "missing_brace": (
        edit(SYNTHETIC_LINES, 34, []),
        34,
        "expected '}' to close ROOT 'Prop' (opened on line 31), found 'MOTION'",
    ),
    "missing_inner_brace": (edit(SYNTHETIC_LINES, 19, []), 29, "unexpected 'ROOT' in ROOT 'Pelvis'"),
    "extra_brace": (edit(SYNTHETIC_LINES, 35, ["}", "MOTION"]), 35, "found '}'"),
    "missing_frames": (edit(SYNTHETIC_LINES, 36, []), 36, "expected 'Frames: N', found 'Frame Time: 0.04'"),
    "missing_frame_time": (edit(SYNTHETIC_LINES, 37, []), 37, "expected 'Frame Time: SECONDS'"),
    "bad_frames": (edit(SYNTHETIC_LINES, 36, ["Frames: three"]), 36, "Frames must be a non-negative integer"),
    "tiny_frame_time": (
        edit(SYNTHETIC_LINES, 37, ["Frame Time: 1e-12"]),
        37,
        "Frame Time must be between 0.0001 and 10 seconds (0.1 to 10,000 fps), found '1e-12'",
    ),
    "bad_offset": (edit(SYNTHETIC_LINES, 12, ["OFFSET 0 5"]), 12, "OFFSET needs 3 numbers, found 2"),
    "missing_motion": (SYNTHETIC_LINES[:34], 35, "missing MOTION section"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_names_file_and_line(tmp_path: Path, case: str) -> None:
    lines, line, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}.bvh"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BVHError) as info:
        read_bvh(path)
    err = info.value
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert fragment in str(err)
    assert (err.path, err.line) == (str(path), line)


def test_truncated_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "cut.bvh"
    text = synthetic_text()[:-12]  # cuts into the 3rd motion line (line 40)
    path.write_text(text)
    found = len(text.split("\n")[-1].split())
    assert 0 < found < 14
    with pytest.raises(BVHError, match=rf"cut\.bvh:40: expected 14 values, found {found}$"):
        read_bvh(path)


def test_malformed_real_file(bn_fixture_dir: Path, tmp_path: Path) -> None:
    lines = (bn_fixture_dir / "dataset-2_walk_normal_001.bvh").read_text().split("\n")
    lines[211] = " ".join(lines[211].split()[:87])  # line 212
    path = tmp_path / "walk.bvh"
    path.write_text("\n".join(lines).replace("\n", "\r\n"))
    with pytest.raises(BVHError) as info:
        read_bvh(path)
    assert str(info.value) == f"{path}:212: expected 132 values, found 87"


def test_parse_bvh_default_source_and_pickling() -> None:
    with pytest.raises(BVHError, match=r"^<string>:1: expected 'HIERARCHY'") as info:
        parse_bvh("ROOT x\n")
    clone = pickle.loads(pickle.dumps(info.value))
    assert (str(clone), clone.path, clone.line) == (str(info.value), "<string>", 1)
    assert isinstance(clone, ValueError)


# ----------------------------------------------------------------------------- atomic writing


def _failing_formatter(monkeypatch: pytest.MonkeyPatch, dest: Path) -> list[bool]:
    """Make the 2nd motion chunk fail; records whether a partial file beside `dest` existed at that moment."""
    real = bvh_mod._format_motion_rows
    seen: list[bool] = []

    def flaky(rows: np.ndarray, precision: int) -> str:
        if seen:
            raise RuntimeError("disk on fire")
        seen.append(any(p.name.startswith(f".{dest.stem}.") and ".partial" in p.name for p in dest.parent.iterdir()))
        return real(rows, precision)

    monkeypatch.setattr(bvh_mod, "_CHUNK_FRAMES", 10)
    monkeypatch.setattr(bvh_mod, "_format_motion_rows", flaky)
    return seen


def test_write_is_atomic_on_failure(bn_clips: dict[str, BVH], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = bn_clips["dataset-2_walk_normal_001.bvh"]
    existing, fresh = tmp_path / "existing.bvh", tmp_path / "fresh.bvh"
    existing.write_text("old content\n")
    for dest in (existing, fresh):
        seen = _failing_formatter(monkeypatch, dest)
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_bvh(dest, clip)
        assert seen == [True]  # the failure happened while a partial file existed
        monkeypatch.undo()
    assert existing.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.bvh"]
    write_bvh(existing, clip)  # and a normal write replaces it
    assert read_bvh(existing).num_frames == 96
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.bvh"]


# ----------------------------------------------------------------------------- resampling


def test_resampled_matches_scipy_slerp(bn_clips: dict[str, BVH]) -> None:
    clip = bn_clips["dataset-2_walk_normal_001.bvh"]
    out = clip.resampled(20)
    assert out.fps == 20 and out.num_frames == 64  # 95 source steps of 1/30 s -> 63 steps of 1/20 s
    assert out.channels == clip.channels and out.names == clip.names
    times = np.arange(clip.num_frames) * clip.frame_time
    new_times = np.arange(out.num_frames) / 20
    src, got = clip.local_rotations(), out.local_rotations()
    for j in range(clip.num_joints):
        ref = Slerp(times, Rotation.from_matrix(src[:, j]))(new_times).as_matrix()
        np.testing.assert_allclose(got[:, j], ref, atol=1e-9)
    for col in range(12):  # joint_Root and Hips positions: linear
        if "position" in clip.channels[col // 6][col % 6]:
            np.testing.assert_allclose(out.motion[:, col], np.interp(new_times, times, clip.motion[:, col]), atol=1e-9)


def test_resampled_exact_frames_and_angle_continuity() -> None:
    # one joint, ZXY; Z goes 170 -> 190 (past +180), X stays beyond 90 (the non-canonical Euler branch)
    motion = np.array([[0, 0, 0, 170, 120, 10], [10, 0, 0, 190, 120, 10], [20, 0, 0, 210, 120, 10]], float)
    channels = [("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")]
    clip = BVH(["root"], [-1], [[0, 0, 0]], channels, {}, 0.5, motion)
    assert clip.resampled(1).motion.tolist() == motion[::2].tolist()
    np.testing.assert_array_equal(clip.resampled(2).motion, motion)
    fine = clip.resampled(4)
    assert fine.num_frames == 5 and fine.frame_time == 0.25
    np.testing.assert_array_equal(fine.motion[::2], motion)
    np.testing.assert_allclose(fine.motion[1::2], (motion[:-1] + motion[1:]) / 2, atol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
def test_nearest_euler_keeps_the_rotation_and_removes_jumps(order: str) -> None:
    # a smooth rotation path that wraps past +-180 and through the other Tait-Bryan branch
    times = np.linspace(0.0, 1.0, 200)
    rotations = Rotation.from_rotvec(np.outer(times, [2.0, 5.0, -3.0]))
    principal = matrix_to_euler(rotations.as_matrix(), order)
    continuous = principal.copy()
    for t in range(1, len(continuous)):
        continuous[t] = nearest_euler(principal[t], continuous[t - 1])
    np.testing.assert_allclose(euler_to_matrix(continuous, order), rotations.as_matrix(), atol=1e-9)
    assert np.abs(np.diff(principal, axis=0)).max() > 90.0  # the principal angles do jump
    assert np.abs(np.diff(continuous, axis=0)).max() < 10.0  # the chosen ones follow the motion
