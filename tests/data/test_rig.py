"""Rig files: validation, axes, resampling, and the Bandai-Namco mapping on real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from motionlcm.data.features import canonicalize_joints, joints_to_features
from motionlcm.data.rig import Rig, nominal_fps, resample_positions
from motionlcm.data.skeleton import JOINT_NAMES, PARENTS, TARGET_BONE_LENGTHS
from motionlcm.io.bvh import read_bvh

BN_RIG = Path(__file__).resolve().parents[2] / "datasets" / "bandai-namco" / "rig.yaml"


def bn_joints(path: Path) -> tuple[np.ndarray, float]:
    bvh = read_bvh(path)
    positions, rotations = bvh.forward_kinematics()
    return Rig.load(BN_RIG).map_positions(positions, rotations, bvh.names), bvh.fps


def rig_dict(**changes):
    data = yaml.safe_load(BN_RIG.read_text())
    data.update(changes)
    return data


def test_shipped_rig_loads():
    rig = Rig.load(BN_RIG)
    assert rig.scale == 0.01 and list(rig.joints) == list(JOINT_NAMES)
    assert np.array_equal(rig.axes, np.eye(3))
    assert rig.joints["spine2"].weights == {"Spine": 0.5, "Chest": 0.5}
    assert rig.joints["head"].frame_joint == "Head"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"units": "furlongs"}, "units"),
        ({"up": "y+"}, "up"),
        ({"up": "+z", "forward": "+z"}, "different axes"),
        ({"joints": {"pelvis": "Hips"}}, "joints: missing left_hip"),
        ({"frobnicate": 1}, "unknown key"),
        ({"fps": -3}, "fps"),
    ],
)
def test_bad_rig_files_name_the_key(tmp_path, changes, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(rig_dict(**changes)))
    with pytest.raises(ValueError, match=message) as info:
        Rig.load(path)
    assert "bad.yaml" in str(info.value)


def test_bad_joint_entries(tmp_path):
    joints = yaml.safe_load(BN_RIG.read_text())["joints"]
    for entry, message in [
        ({"blend": {"Spine": 0.5, "Chest": 0.6}}, "sum to 1"),
        ({"joint": "Head", "offset": [1, 2]}, "three numbers"),
        ({"blend": {"Spine": 1.0}, "offset": [0, 0, 1]}, "only allowed with joint"),
        (3, "must be a joint name"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            Rig.from_dict(rig_dict(joints={**joints, "spine2": entry}), source="r.yaml")
        assert "joints.spine2" in str(info.value)


def test_missing_source_joint_is_reported(bn_fixture_dir):
    bvh = read_bvh(bn_fixture_dir / "dataset-2_run_active_001.bvh")
    positions, rotations = bvh.forward_kinematics()
    joints = yaml.safe_load(BN_RIG.read_text())["joints"]
    rig = Rig.from_dict(rig_dict(joints={**joints, "neck": "Neck_01"}))
    with pytest.raises(ValueError, match="Neck_01"):
        rig.map_positions(positions, rotations, bvh.names)


def test_axes_and_units_convert_a_z_up_source():
    # A z-up, -y-forward source in millimetres: its up (z) must become y, its forward (-y) must become +z.
    rig = Rig.from_dict(rig_dict(units="mm", up="+z", forward="-y"))
    point = np.array([[[10.0, -20.0, 30.0]]])
    converted = (point * rig.scale) @ rig.axes.T
    left_axis = np.cross([0, 0, 1], [0, -1, 0])  # up x forward in the source = +x
    assert np.allclose(converted[0, 0], [0.001 * 10.0 * left_axis[0], 0.030, 0.020])
    assert np.isclose(np.linalg.det(rig.axes), 1.0)
    left_handed = Rig.from_dict(rig_dict(left="-x"))
    assert np.isclose(np.linalg.det(left_handed.axes), -1.0)


def test_resample_30_to_20_fps():
    frames = np.arange(273, dtype=float)[:, None, None] * np.ones((1, 2, 3))
    out = resample_positions(frames, 30.0, 20.0)
    assert out.shape[0] == 182  # floor(272 * 2 / 3) + 1 (last frame index that fits the 20 fps grid)
    assert np.allclose(out[:, 0, 0], np.arange(182) * 1.5)
    assert np.array_equal(resample_positions(frames, 20.0, 20.0), frames)
    assert nominal_fps(1 / 29.97) == pytest.approx(29.97)  # NTSC stays as it is


def test_bandai_namco_mapping_on_a_real_walk(bn_fixture_dir):
    joints, fps = bn_joints(bn_fixture_dir / "dataset-2_walk_normal_001.bvh")
    assert fps != 30.0 and nominal_fps(1 / fps) == 30.0  # Frame Time 0.0333333 is snapped to 30 fps
    fps = nominal_fps(1 / fps)
    joints = resample_positions(joints, fps)
    canon = canonicalize_joints(joints)
    bones = np.linalg.norm(canon[:, 1:] - canon[:, list(PARENTS[1:])], axis=-1)
    assert np.abs(bones - TARGET_BONE_LENGTHS[1:]).max() < 1e-9  # target skeleton on every frame
    assert abs(canon[..., 1].min()) < 1e-9
    # The pelvis blend puts the hips ~55 deg below horizontal (HumanML3D: 50-63 deg).
    hip = canon[:, 1] - canon[:, 0]
    angle = np.degrees(np.arctan2(-hip[:, 1], np.linalg.norm(hip[:, [0, 2]], axis=-1)))
    assert 45 < np.median(angle) < 65
    feats = joints_to_features(joints)
    assert 0.8 < feats[:, 2].mean() * 20 < 1.5  # walks forward at about 1 m/s
    assert abs(feats[:, 1].mean() * 20) < 0.2  # not sideways
