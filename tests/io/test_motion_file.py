"""The one motion-array reader (render, export): real HumanML3D data in every accepted form, and hostile
or broken files refused in one line before anything large is allocated."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

from motionlcm.io.motion_file import read_motion_array


@pytest.fixture(scope="module")
def sample(humanml3d_sample_dir):
    joints = np.load(humanml3d_sample_dir / "new_joints" / "000000.npy")
    features = np.load(humanml3d_sample_dir / "new_joint_vecs" / "000000.npy")
    return joints, features


def test_every_accepted_form_reads_back_the_same_numbers(sample, tmp_path):
    joints, features = sample
    np.save(tmp_path / "j.npy", joints.astype(np.float32))
    np.save(tmp_path / "flat.npy", joints.reshape(len(joints), 66))
    np.save(tmp_path / "batch.npy", features[None])
    np.savez_compressed(tmp_path / "m.npz", features=features, fps=np.float64(30), caption=np.array("a kick"))
    np.savez(tmp_path / "only.npz", joints)
    got = {name: read_motion_array(tmp_path / name) for name in ("j.npy", "flat.npy", "batch.npy", "m.npz", "only.npz")}
    np.testing.assert_allclose(got["j.npy"].array, joints, atol=1e-6)
    np.testing.assert_array_equal(got["flat.npy"].array, joints)
    assert got["batch.npy"].kind == "features" and got["batch.npy"].array.shape == features.shape
    assert (got["m.npz"].kind, got["m.npz"].fps, got["m.npz"].title) == ("features", 30.0, "a kick")
    np.testing.assert_array_equal(got["m.npz"].array, features)
    assert got["only.npz"].kind == "joints" and got["only.npz"].fps is None and got["j.npy"].frames == len(joints)


def _npz_with_header(path, shape, dtype="<f4", payload=b""):
    """An .npz whose `joints` member declares `shape` but holds only `payload` bytes (a hostile header)."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("joints.npy", buffer.getvalue() + payload)


def test_hostile_and_broken_files_are_one_line_errors(sample, tmp_path):
    joints, _ = sample
    cases = {}
    _npz_with_header(tmp_path / "huge.npz", (10**9, 22, 3))
    cases["huge.npz"] = "would take"
    _npz_with_header(tmp_path / "short.npz", (100, 22, 3), payload=b"\0" * 64)
    cases["short.npz"] = "shorter than its header says"
    np.savez(tmp_path / "obj.npz", joints=np.array([{"a": 1}], dtype=object))
    cases["obj.npz"] = "Python objects"
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 truncated")
    cases["zip.npz"] = "cannot read"
    np.savez(tmp_path / "nan.npz", joints=np.where(np.arange(len(joints))[:, None, None] == 3, np.nan, joints))
    cases["nan.npz"] = "NaN"
    np.savez(tmp_path / "fps.npz", joints=joints, fps=np.float64(-2))
    cases["fps.npz"] = "fps must be a positive number"
    np.save(tmp_path / "shape.npy", joints[:, :21])
    cases["shape.npy"] = "expected joints (T, 22, 3) or features (T, 263)"
    np.save(tmp_path / "empty.npy", np.zeros((0, 263)))
    cases["empty.npy"] = "no frames"
    (tmp_path / "fake.npy").write_bytes(b"PK\x03\x04")
    cases["fake.npy"] = "not a .npy file"
    for name, message in cases.items():
        with pytest.raises(ValueError) as err:
            read_motion_array(tmp_path / name)
        text = str(err.value)
        assert str(tmp_path / name) in text and message in text and "\n" not in text, (name, text)
    with pytest.raises(ValueError, match=r"expected \.npy$"):
        read_motion_array(tmp_path / "j.npz", suffixes=(".npy",))
