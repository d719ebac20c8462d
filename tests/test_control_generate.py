"""`motionlcm generate` with control: trajectory CSVs, keyframes and hints files reach the motion (checked on
the written joints), the .json records the control, and bad control input is one line, exit 2, nothing
written."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "motionlcm.cli", *args], capture_output=True, text=True)


def test_trajectory_and_keyframe_are_met_and_recorded(control_dir, student_dir, tmp_path):
    path = tmp_path / "path.csv"
    path.write_text("time_s,x,z\n0,0,0\n1.5,0.4,1.2\n3,0.0,2.0\n")
    out = tmp_path / "out"
    result = run_cli("generate", "a person walks", "--model", str(student_dir), "--trajectory", str(path),
                     "--keyframe", "2.0:pelvis:0.2,0.9,1.6", "--format", "npy,json,gif", "--seed", "3",
                     "-o", str(out), "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    joints = np.load(out / "000_a_person_walks.npy")
    assert joints.shape == (80, 22, 3)  # 4 s: the default covers the 3 s path
    np.testing.assert_allclose(joints[30, 0, [0, 2]], [0.4, 1.2], atol=0.05 + 1e-4)  # motion_warp.ROOT_TOLERANCE
    np.testing.assert_allclose(joints[40, 0], [0.2, 0.9, 1.6], atol=0.05 + 1e-4)
    meta = json.loads((out / "000_a_person_walks.json").read_text())
    control = meta["control"]
    assert control["controller"] == "pelvis" and control["controlled_points"] == 61
    assert control["avg_err_m"] < 0.05 and len(control["hints_sha256"]) == 64
    assert "--trajectory" in meta["command"] and "--keyframe 2.0:pelvis:0.2,0.9,1.6" in meta["command"]


def test_hints_file_sets_the_length(control_dir, student_dir, tmp_path):
    hints = np.full((30, 22, 3), np.nan, np.float32)
    hints[::5, 0] = np.stack([np.linspace(0, 1, 6), np.full(6, 0.9), np.zeros(6)], -1)
    np.save(tmp_path / "h.npy", hints)
    out = tmp_path / "out"
    result = run_cli("generate", "a person walks", "--model", str(student_dir), "--control", str(tmp_path / "h.npy"),
                     "--format", "npy", "-o", str(out), "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    joints = np.load(out / "000_a_person_walks.npy")
    assert joints.shape == (30, 22, 3)
    np.testing.assert_allclose(
        joints[::5, 0], hints[::5, 0], atol=0.05 + 1e-4
    )  # within motion_warp.ROOT_TOLERANCE per axis


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("shape", r"h\.npy: expected shape \(T, 22, 3\)"),
        ("nan", r"h\.npy: every value is NaN"),
        ("unsorted", r"path\.csv: row 3: times must increase"),
        ("late", r"--keyframe '9:pelvis:0,1,0': 9 s is outside the motion"),
        ("joint", r"no controller controls any frames of left_knee"),
        ("length", r"h\.npy: 30 frames, but the motion has 40"),
    ],
)
def test_bad_control_input_is_one_line_and_writes_nothing(control_dir, student_dir, tmp_path, setup, message):
    hints = np.full((30, 22, 3), np.nan, np.float32)
    hints[0, 0] = 0.0
    args = []
    if setup == "shape":
        np.save(tmp_path / "h.npy", np.zeros((30, 21, 3), np.float32))
        args = ["--control", str(tmp_path / "h.npy")]
    elif setup == "nan":
        np.save(tmp_path / "h.npy", np.full((30, 22, 3), np.nan, np.float32))
        args = ["--control", str(tmp_path / "h.npy")]
    elif setup == "unsorted":
        (tmp_path / "path.csv").write_text("0,0,0\n1,1,0\n0.5,1,1\n")
        args = ["--trajectory", str(tmp_path / "path.csv")]
    elif setup == "late":
        args = ["--keyframe", "9:pelvis:0,1,0", "--seconds", "4"]
    elif setup == "joint":
        args = ["--keyframe", "1:left_knee:0.1,0.5,0.3"]
    else:
        np.save(tmp_path / "h.npy", hints)
        args = ["--control", str(tmp_path / "h.npy"), "--frames", "40"]
    out = tmp_path / "out"
    result = run_cli("generate", "a person walks", "--model", str(student_dir), *args, "-o", str(out), "-q")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and __import__("re").search(message, lines[0]), result.stderr
    assert not out.exists() or not any(out.iterdir())
