"""BVH export of 22-joint SMPL motions: hierarchy, FK round trips at any heading, files, resampling, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionlcm.data.features import features_to_joints
from motionlcm.data.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS
from motionlcm.export import (
    BVH_NAMES,
    JOINT_ORDERS,
    bvh_to_joints,
    features_to_bvh,
    fit_skeleton,
    joints_to_bvh,
    rest_offsets,
)
from motionlcm.io.bvh import format_bvh, read_bvh, write_bvh

EXACT = 1e-4  # metres: real data fits the exported skeleton exactly (float32 input, 6-decimal text)
BOUND = 0.01  # metres: the 1 cm requirement
LEAVES = {"left_foot", "right_foot", "head", "left_wrist", "right_wrist"}


# ----------------------------------------------------------------------------- motions


@pytest.fixture(scope="module")
def real(humanml3d_sample_dir: Path) -> dict[str, np.ndarray]:
    """The two real HumanML3D clips (a kick and a tennis serve), (T, 22, 3) metres."""
    return {p.stem: np.load(p).astype(np.float64) for p in sorted((humanml3d_sample_dir / "new_joints").glob("*.npy"))}


def yawed(joints: np.ndarray, degrees: float) -> np.ndarray:
    """The motion turned about the vertical axis through the origin."""
    return joints @ Rotation.from_euler("y", degrees, degrees=True).as_matrix().T


def turning(joints: np.ndarray, total: float = 180.0) -> np.ndarray:
    """Each frame turned about its own pelvis by an angle easing from 0 to `total` degrees: a turn on the spot."""
    s = np.linspace(0.0, 1.0, len(joints))
    angles = total * s * s * (3 - 2 * s)
    rot = Rotation.from_euler("y", angles[:, None], degrees=True).as_matrix()  # (T, 3, 3)
    pivot = joints[:, :1] * np.array([1.0, 0.0, 1.0])
    return np.einsum("tij,tkj->tki", rot, joints - pivot) + pivot


def stretchy(joints: np.ndarray, amount: float = 0.04, seed: int = 0) -> np.ndarray:
    """Like a generated motion: bone directions kept, lengths wobbling smoothly by up to ~`amount` (relative)."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(joints))[:, None]
    scale = 1 + amount * np.sin(t * rng.uniform(0.05, 0.3, NUM_JOINTS) + rng.uniform(0, 6.3, NUM_JOINTS))
    out = joints.copy()
    for j in range(1, NUM_JOINTS):  # parents precede children in SMPL order
        out[:, j] = out[:, PARENTS[j]] + (joints[:, j] - joints[:, PARENTS[j]]) * scale[:, j : j + 1]
    return out


def fk_error(clip, joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(bvh_to_joints(clip) - joints, axis=-1)


# ----------------------------------------------------------------------------- an independent reader


def _parse_joint(tokens: list[str], i: int, parent: int, joints: list[dict]) -> int:
    """Recursive descent over `ROOT|JOINT name { OFFSET .. CHANNELS n .. (JOINT ..)* (End Site {..})? }`."""
    index = len(joints)
    joint = {"name": tokens[i + 1], "parent": parent}
    joints.append(joint)
    assert tokens[i + 2] == "{"
    i += 3
    while tokens[i] != "}":
        if tokens[i] == "OFFSET":
            joint["offset"], i = np.array(tokens[i + 1 : i + 4], dtype=float), i + 4
        elif tokens[i] == "CHANNELS":
            n = int(tokens[i + 1])
            joint["channels"], i = tokens[i + 2 : i + 2 + n], i + 2 + n
        elif tokens[i] == "JOINT":
            i = _parse_joint(tokens, i, index, joints)
        else:  # End Site { OFFSET x y z }
            assert tokens[i : i + 4] == ["End", "Site", "{", "OFFSET"] and tokens[i + 7] == "}"
            joint["end"], i = np.array(tokens[i + 4 : i + 7], dtype=float), i + 8
    return i + 1


def independent_fk(text: str) -> tuple[list[dict], np.ndarray]:
    """Parse BVH text and run FK with scipy rotations; returns the joints and (F, J, 3) positions."""
    head, motion = text.split("MOTION")
    joints: list[dict] = []
    _parse_joint(head.split(), 1, -1, joints)
    lines = motion.strip().splitlines()
    frames, frame_time = int(lines[0].split()[1]), float(lines[1].split()[2])
    values = np.array([line.split() for line in lines[2:]], dtype=float)
    assert values.shape[0] == frames and frame_time > 0
    pos, rot, col = [], [], 0
    for joint in joints:
        trans = np.tile(joint["offset"], (frames, 1))
        local = Rotation.identity(frames)
        for name in joint["channels"]:
            axis, kind = "xyz".index(name[0].lower()), name[1:].lower()
            if kind == "position":
                trans[:, axis] = values[:, col]
            else:  # channels listed A, B, C compose as R_A R_B R_C (BVH convention)
                local = local * Rotation.from_euler("xyz"[axis], values[:, col : col + 1], degrees=True)
            col += 1
        p = joint["parent"]
        rot.append(local if p < 0 else rot[p] * local)
        pos.append(trans if p < 0 else pos[p] + rot[p].apply(trans))
    return joints, np.stack(pos, axis=1)


# ----------------------------------------------------------------------------- hierarchy


def test_hierarchy_names_channels_units(real: dict[str, np.ndarray]) -> None:
    joints = real["000000"]
    clip = joints_to_bvh(joints)
    assert sorted(clip.names) == sorted(JOINT_NAMES) and tuple(clip.names) == BVH_NAMES
    assert clip.names[0] == "pelvis" and clip.parents[0] == -1
    for k, name in enumerate(clip.names[1:], start=1):  # SMPL parents, parents before children
        assert clip.names[clip.parents[k]] == JOINT_NAMES[PARENTS[JOINT_NAMES.index(name)]]
        assert clip.parents[k] < k
    assert {clip.names[k] for k in clip.end_sites} == LEAVES
    orders = {n: JOINT_ORDERS[JOINT_NAMES.index(n)] for n in clip.names}
    assert clip.channels[0] == ("Xposition", "Yposition", "Zposition") + tuple(f"{a}rotation" for a in orders["pelvis"])
    assert all(clip.channels[k] == tuple(f"{a}rotation" for a in orders[n]) for k, n in enumerate(clip.names) if k)
    assert clip.frame_time == pytest.approx(1 / 20) and clip.num_frames == len(joints)
    # centimetres: bone lengths are 100 x the motion's (median) bone lengths, the root channels its trajectory
    knee = clip.names.index("left_knee")
    thigh = np.linalg.norm(joints[:, 4] - joints[:, 1], axis=-1)
    assert np.linalg.norm(clip.offsets[knee]) == pytest.approx(100 * np.median(thigh), rel=1e-6)
    np.testing.assert_allclose(clip.motion[:, :3], 100 * joints[:, 0], atol=1e-9)
    in_metres = joints_to_bvh(joints, units="m")
    np.testing.assert_allclose(in_metres.offsets * 100, clip.offsets, atol=1e-9)
    np.testing.assert_allclose(bvh_to_joints(in_metres, units="m"), joints, atol=EXACT)


def test_rest_pose_is_a_t_pose_on_the_floor(real: dict[str, np.ndarray]) -> None:
    off = rest_offsets(real["012314"])
    rest = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        rest[j] = rest[PARENTS[j]] + off[j]
    rest += off[0]
    assert rest[:, 1].min() == pytest.approx(0.0, abs=1e-12)  # feet on the floor
    for left, right in ((20, 21), (18, 19)):  # wrists and elbows straight out to the sides, left at +x
        assert rest[left, 0] > rest[16, 0] > 0 > rest[17, 0] > rest[right, 0]
        assert rest[left, 1] == pytest.approx(rest[16, 1]) and rest[right, 1] == pytest.approx(rest[17, 1])
    assert rest[15, 1] > rest[12, 1] > rest[9, 1] > rest[0, 1] > rest[4, 1] > rest[7, 1]


# ----------------------------------------------------------------------------- FK round trips


@pytest.mark.parametrize("name", ["000000", "012314"])
def test_fk_reproduces_real_sample(real: dict[str, np.ndarray], name: str) -> None:
    assert fk_error(joints_to_bvh(real[name]), real[name]).max() < EXACT


@pytest.mark.parametrize("degrees", [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 179.99, -90.01])
def test_fk_at_every_heading_and_yaw_invariant_locals(real: dict[str, np.ndarray], degrees: float) -> None:
    base = joints_to_bvh(real["012314"])
    clip = joints_to_bvh(yawed(real["012314"], degrees))
    assert fk_error(clip, yawed(real["012314"], degrees)).max() < EXACT
    # only the root rotation depends on the heading; every other joint's rotation is the same
    np.testing.assert_allclose(clip.local_rotations()[:, 1:], base.local_rotations()[:, 1:], atol=1e-9)
    np.testing.assert_allclose(clip.offsets, base.offsets, atol=1e-9)


@pytest.mark.parametrize("total", [180.0, -180.0, 540.0])
def test_fk_through_turns_with_continuous_channels(real: dict[str, np.ndarray], total: float) -> None:
    for start in (0.0, 180.0):  # from facing +z, and from facing backwards
        joints = turning(yawed(real["000000"], start), total)
        clip = joints_to_bvh(joints)
        assert fk_error(clip, joints).max() < EXACT
        rotations = np.concatenate([clip.motion[:, clip.channel_slice(k)][:, -3:] for k in range(22)], axis=1)
        assert np.abs(np.diff(rotations, axis=0)).max() < 60  # no +-360 wraps or Euler-branch flips
        yaw = clip.motion[:, 3]  # pelvis order YZX: the heading is its first angle
        assert yaw[-1] - yaw[0] == pytest.approx(total, abs=25)


def test_fk_on_imported_bandai_namco_clips(bn_dataset_dir: Path) -> None:
    paths = sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy"))
    assert len(paths) == 12
    for path in paths:
        features = np.load(path).astype(np.float64)
        clip = features_to_bvh(features)
        assert fk_error(clip, features_to_joints(features)).max() < 1e-3, path.name


def test_varying_bone_lengths_fit_within_bound_or_stretch_exactly(real: dict[str, np.ndarray]) -> None:
    joints = stretchy(yawed(real["012314"], 135.0), amount=0.015)  # bones off their median by up to 0.7 cm
    bones = np.linalg.norm(joints[:, 1:] - joints[:, list(PARENTS[1:])], axis=-1)
    assert (bones.max(0) - bones.min(0)).max() > 0.0125
    with pytest.warns(UserWarning, match=r"off by up to 1\.\d cm .*stretch=True"):
        greedy = joints_to_bvh(joints, refine=False)
    fitted = joints_to_bvh(joints)
    assert fk_error(fitted, joints).max() < min(BOUND, 0.75 * fk_error(greedy, joints).max())
    offsets, _, positions = fit_skeleton(joints)
    np.testing.assert_allclose(bvh_to_joints(fitted), positions, atol=1e-9)  # the fit is what gets written
    stretched = joints_to_bvh(joints, stretch=True)
    assert all(len(ch) == 6 for ch in stretched.channels)
    assert fk_error(stretched, joints).max() < 1e-9


def test_given_offsets_are_kept(real: dict[str, np.ndarray]) -> None:
    shared = rest_offsets(real["000000"])
    joints = stretchy(real["012314"], amount=0.02)
    with pytest.warns(UserWarning, match="fixed-skeleton BVH is off by up to"):
        clip = joints_to_bvh(joints, offsets=shared)
    order = [JOINT_NAMES.index(n) for n in clip.names]
    np.testing.assert_allclose(clip.offsets, 100 * shared[order], atol=1e-12)
    assert fk_error(clip, joints).max() < 0.05  # different skeletons: a fit, not a reproduction


def test_single_rotation_order_option(real: dict[str, np.ndarray]) -> None:
    clip = joints_to_bvh(real["012314"], order="zxy")
    assert all(ch[-3:] == ("Zrotation", "Xrotation", "Yrotation") for ch in clip.channels)
    assert fk_error(clip, real["012314"]).max() < EXACT


# ----------------------------------------------------------------------------- files


def test_written_file_reads_back(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    joints = turning(yawed(real["012314"], 200.0))
    write_bvh(tmp_path / "clip.bvh", joints_to_bvh(joints))
    back = read_bvh(tmp_path / "clip.bvh")
    assert tuple(back.names) == BVH_NAMES and back.frame_time == pytest.approx(0.05)
    assert fk_error(back, joints).max() < EXACT


@pytest.mark.parametrize("options", [{}, {"order": "ZYX"}, {"stretch": True}, {"target_fps": 30}])
def test_independent_reader_agrees(real: dict[str, np.ndarray], options: dict) -> None:
    joints = stretchy(turning(real["000000"]), amount=0.02) if options.get("stretch") else turning(real["000000"])
    clip = joints_to_bvh(joints, **options)
    parsed, positions = independent_fk(format_bvh(clip))
    assert [j["name"] for j in parsed] == list(clip.names)
    assert {j["name"] for j in parsed if "end" in j} == LEAVES
    smpl = positions[:, [clip.names.index(n) for n in JOINT_NAMES]] / 100
    np.testing.assert_allclose(smpl, bvh_to_joints(clip), atol=1e-6)
    if "target_fps" not in options:
        assert np.linalg.norm(smpl - joints, axis=-1).max() < EXACT


# ----------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_resampling_keeps_duration_and_shared_frames(real: dict[str, np.ndarray], fps: int) -> None:
    for joints in (real["000000"], turning(real["012314"][:-1])):  # T - 1 = 115 and 168 source intervals
        T = len(joints)
        clip = joints_to_bvh(joints, target_fps=fps)
        assert clip.num_frames == (T - 1) * fps // 20 + 1
        assert clip.frame_time == pytest.approx(1 / fps)
        assert f"Frame Time: {1 / fps}" in format_bvh(clip)
        duration = (T - 1) / 20
        assert duration - 1 / fps < (clip.num_frames - 1) / fps <= duration + 1e-9
        times = np.arange(clip.num_frames) * 20 / fps  # in source frames
        i0 = np.minimum(np.floor(times + 1e-9).astype(int), T - 2)
        w = (times - i0)[:, None, None]
        linear = (1 - w) * joints[i0] + w * joints[i0 + 1]
        err = fk_error(clip, linear)
        shared = np.isclose(times, np.round(times))
        assert err[shared].max() < EXACT
        # elsewhere slerped rotations follow arcs, the linear blend of positions cuts chords: close, not equal
        step = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max()
        assert err.mean() < 0.002 and err.max() < 0.5 * step


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "joints, kwargs, message",
    [
        (np.zeros((10, 21, 3)), {}, "joints must have shape (T, 22, 3)"),
        (np.zeros((22, 3)), {}, "joints must have shape (T, 22, 3)"),
        (np.zeros((0, 22, 3)), {}, "joints must have shape (T, 22, 3)"),
        ("nan", {}, "NaN or inf in 1 frame(s), first at frame 3"),
        (np.zeros((4, 22, 3)), {}, "zero-length bone pelvis -> left_hip at frame 0"),
        (None, {"fps": 0}, "fps must be a positive number, got 0"),
        (None, {"fps": -20}, "fps must be a positive number"),
        (None, {"fps": float("nan")}, "fps must be a positive number"),
        (None, {"target_fps": 0}, "target_fps must be a positive number"),
        (None, {"units": "inch"}, "units must be one of cm, m"),
        (None, {"order": "ZZY"}, "Tait-Bryan"),
        (None, {"offsets": np.zeros((21, 3))}, "offsets must be a finite (22, 3) array"),
    ],
)
def test_bad_input_raises_one_line_value_error(real: dict[str, np.ndarray], joints, kwargs, message) -> None:
    good = real["000000"][:8]
    if joints is None:
        joints = good
    elif isinstance(joints, str):
        joints = good.copy()
        joints[3, 5, 1] = np.nan
    with pytest.raises(ValueError) as err:
        joints_to_bvh(joints, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_features_and_foreign_clips(real: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"features must be a finite \(T, 263\) array"):
        features_to_bvh(np.zeros((5, 262)))
    clip = joints_to_bvh(real["000000"][:4])
    clip.names[3] = "toe"
    with pytest.raises(ValueError, match="BVH lacks SMPL joint"):
        bvh_to_joints(clip)
