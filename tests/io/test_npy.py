""".npy headers are checked against the file before anything is loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from motionlcm.io.npy import read_npy_header


def forge(path: Path, shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"\0" * 64) -> Path:
    """A .npy file whose header declares `shape` but which holds only `data`."""
    with open(path, "wb") as handle:
        npy_format.write_array_header_1_0(handle, {"descr": descr, "fortran_order": False, "shape": shape})
        handle.write(data)
    return path


def test_a_plain_array_gives_its_header(tmp_path):
    np.save(tmp_path / "j.npy", np.zeros((5, 22, 3), np.float32))
    header = read_npy_header(tmp_path / "j.npy")
    assert header.shape == (5, 22, 3) and header.dtype == np.float32 and header.nbytes == 5 * 22 * 3 * 4


@pytest.mark.parametrize(
    ("shape", "descr", "message"),
    [
        ((10**12, 22, 3), "<f4", "would take 264,000,000,000,000 bytes"),
        ((2**62, 263), "<f8", "at most"),
        ((1000, 22, 3), "<f4", "shorter than its header says"),
        ((-1, 22, 3), "<f4", "negative dimension"),
        ((3,), "|O", "holds Python objects"),
        ((3,), "<U8", "not a plain numeric array"),
        ((3,), [("x", "<f4")], "not a plain numeric array"),
    ],
)
def test_bad_headers_are_one_line_naming_the_file(tmp_path, shape, descr, message):
    path = forge(tmp_path / "m.npy", shape, descr)
    with pytest.raises(ValueError) as err:
        read_npy_header(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_not_numpy_and_a_missing_file(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"\x93NUM")
    with pytest.raises(ValueError, match=r"junk\.npy: not a readable \.npy file"):
        read_npy_header(tmp_path / "junk.npy")
    with pytest.raises(ValueError, match=r"gone\.npy: not a readable \.npy file"):
        read_npy_header(tmp_path / "gone.npy")


def test_a_smaller_limit_and_another_name(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((100, 263), np.float32))
    with pytest.raises(ValueError, match=r"^new_joint_vecs/m\.npy: .*at most 1,000"):
        read_npy_header(tmp_path / "m.npy", max_bytes=1000, where="new_joint_vecs/m.npy")
