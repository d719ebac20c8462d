"""`Motion`, the one motion type: loading every accepted file (real HumanML3D and Bandai-Namco data), saving,
BVH and rendering by suffix, and one-line errors for bad inputs and outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionlcm import motion as motion_module
from motionlcm.motion import Motion, render_file
from tests.render.test_stick import BN_CLIP, SMALL, gif_frames

load_motion = Motion.load


@pytest.fixture(scope="module")
def kick(humanml3d_sample_dir) -> np.ndarray:
    """HumanML3D 000000 (a left-leg kick), 116 frames of (22, 3)."""
    return np.load(humanml3d_sample_dir / "new_joints" / "000000.npy")


def test_bvh_fixture_renders(bn_fixture_dir, tmp_path):
    motion = load_motion(bn_fixture_dir / BN_CLIP)
    assert motion.joints.shape == (59, 22, 3)
    assert 1.2 < np.ptp(motion.joints[0, :, 1]) < 2.0  # centimetres converted to metres
    assert motion.names[0] == "joint_Root" and motion.parents[0] == -1
    out = render_file(bn_fixture_dir / BN_CLIP, tmp_path / "bn.gif", title="raise up right hand", **SMALL)
    durations = gif_frames(out)
    assert len(durations) == 59  # 30 fps: every frame kept
    assert abs(sum(durations) - 59 / 30 * 1000) <= 10


def test_bvh_frame_strip(bn_fixture_dir, tmp_path):
    out = render_file(bn_fixture_dir / BN_CLIP, tmp_path / "bn.png", panel_size=1.2, dpi=50)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (6 * 60, 60)


def test_features_file_gives_the_same_joints(humanml3d_sample_dir):
    motion = load_motion(humanml3d_sample_dir / "new_joint_vecs" / "000000.npy")
    joints = np.load(humanml3d_sample_dir / "new_joints" / "000000.npy")
    assert motion.parents is None and motion.fps == 20
    np.testing.assert_allclose(motion.joints, joints[: len(motion.joints)], atol=1e-5)


def test_npz_and_flat_inputs(kick, tmp_path):
    np.savez(tmp_path / "m.npz", joints=kick[:8], fps=np.float64(10), text=np.array("a prompt"))
    motion = load_motion(tmp_path / "m.npz")
    assert motion.joints.shape == (8, 22, 3) and motion.fps == 10 and motion.text == "a prompt"
    np.save(tmp_path / "flat.npy", kick[:8].reshape(8, 66).astype(np.float32))
    np.testing.assert_allclose(load_motion(tmp_path / "flat.npy").joints, kick[:8], atol=1e-6)
    np.save(tmp_path / "batch.npy", kick[None, :8])
    assert load_motion(tmp_path / "batch.npy").joints.shape == (8, 22, 3)


def _bad_inputs(tmp_path: Path, kick: np.ndarray) -> dict[str, tuple[Path, str]]:
    cases = {}
    np.save(tmp_path / "shape.npy", kick[:, :21])
    cases["shape"] = (tmp_path / "shape.npy", "expected joints")
    nan = kick[:5].copy()
    nan[2, 3, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases["nan"] = (tmp_path / "nan.npy", "NaN")
    feats = np.zeros((5, 263))
    feats[1, 7] = np.inf
    np.save(tmp_path / "featnan.npy", feats)
    cases["feature nan"] = (tmp_path / "featnan.npy", "NaN")
    np.save(tmp_path / "empty.npy", np.zeros((0, 22, 3)))
    cases["empty"] = (tmp_path / "empty.npy", "no frames")
    np.save(tmp_path / "obj.npy", np.array([{"joints": 1}], dtype=object), allow_pickle=True)
    cases["pickle"] = (tmp_path / "obj.npy", "not a plain numeric array")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    cases["junk"] = (tmp_path / "junk.npy", "cannot read")
    np.savez(tmp_path / "keys.npz", a=kick[:3], b=kick[:3])
    cases["npz keys"] = (tmp_path / "keys.npz", "no 'joints' or 'features'")
    (tmp_path / "m.txt").write_text("x")
    cases["suffix"] = (tmp_path / "m.txt", "unknown motion file type")
    cases["missing"] = (tmp_path / "missing.npy", "no such file")
    (tmp_path / "bad.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    cases["bvh"] = (tmp_path / "bad.bvh", "")
    return cases


def test_bad_inputs_raise_one_line_value_errors(kick, tmp_path):
    out_dir = tmp_path / "out"
    for name, (path, message) in _bad_inputs(tmp_path, kick).items():
        with pytest.raises(ValueError) as err:
            render_file(path, out_dir / "x.gif")
        text = str(err.value)
        assert str(path) in text and message in text and "\n" not in text, (name, text)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_bad_outputs(kick, tmp_path):
    np.save(tmp_path / "k.npy", kick[:5])
    with pytest.raises(ValueError, match=r"x\.avi.*unknown output format"):
        render_file(tmp_path / "k.npy", tmp_path / "x.avi")
    rig = Motion(np.zeros((3, 5, 3)), parents=[-1, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="SMPL skeleton"):
        rig.to_bvh()
    with pytest.raises(ValueError, match="no 263-d features"):
        Motion(kick[:5]).save_npy(tmp_path / "j.npy", tmp_path / "f.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy"]


def test_a_features_file_round_trips_through_save_and_bvh(humanml3d_sample_dir, tmp_path):

    motion = Motion.load(humanml3d_sample_dir / "new_joint_vecs" / "000000.npy")
    assert motion.is_smpl and motion.features.shape == (motion.frames, 263) and motion.seconds == motion.frames / 20
    motion.save_npy(tmp_path / "j.npy", tmp_path / "f.npy")
    again = Motion.load(tmp_path / "f.npy")
    np.testing.assert_allclose(again.joints, motion.joints, atol=1e-4)
    motion.save_bvh(tmp_path / "m.bvh")
    back = Motion.load(tmp_path / "m.bvh")
    assert back.parents is not None and back.frames == motion.frames
    assert np.abs(back.joints[:, 0] - motion.joints[:, 0]).max() < 0.01  # the pelvis path, in metres


def test_bvh_unit_detection():
    assert motion_module._bvh_unit_scale(170.0) == 0.01
    assert motion_module._bvh_unit_scale(1.7) == 1.0
    assert motion_module._bvh_unit_scale(1650.0) == 0.001
