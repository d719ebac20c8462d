"""User values that scale memory are bounded and checked before anything is allocated: frame rates and
clip lengths of export / generate / render, --num of generate, and the shapes .npy headers declare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motionlcm.cli import main
from motionlcm.data.check import check_dataset
from motionlcm.export.bvh_export import MAX_FRAMES, joints_to_bvh, output_frames
from motionlcm.io.bvh import BVH
from tests.data.test_humanml3d import make_dataset_dir
from tests.io.test_npy import forge

REAL_LOAD = np.load


def refuse(*args, **kwargs):
    raise AssertionError("loaded or resampled before the input was checked")


@pytest.fixture
def nothing_loaded(monkeypatch):
    """np.load and BVH resampling fail the test: every refusal here must come before either."""
    monkeypatch.setattr(np, "load", refuse)
    monkeypatch.setattr(BVH, "resampled", refuse)


@pytest.fixture
def joints_file(tmp_path) -> Path:
    np.save(tmp_path / "walk.npy", np.zeros((200, 22, 3), np.float32))
    return tmp_path / "walk.npy"


def refused(capsys, args: list[str], *words: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    return err[0]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--fps", "1e9"], ["--fps must be in 1..1000", "1e+09"]),
        (["--fps", "nan"], ["--fps must be a positive number"]),
        (["--fps", "0.5"], ["--fps must be in 1..1000"]),
        (["--source-fps", "1e-300"], ["--source-fps must be in 1..1000"]),
        (
            ["--fps", "1000", "--source-fps", "1"],
            ["walk.npy at --fps 1000", "199,001 frames", f"at most {MAX_FRAMES:,}"],
        ),
    ],
)
def test_export_bounds_the_frame_rates_and_the_clip_length(nothing_loaded, joints_file, capsys, options, words):
    refused(capsys, ["export", str(joints_file), *options], *words)
    assert not joints_file.with_suffix(".bvh").exists()


@pytest.mark.parametrize(
    ("shape", "descr", "words"),
    [
        ((10**9, 22, 3), "<f4", ["(1000000000, 22, 3)", "would take"]),
        ((5000, 263), "<f4", ["shorter than its header says"]),
        ((5,), "|O", ["Python objects"]),
        ((5, 22, 3), "<U4", ["not a plain numeric array"]),
        ((5, 21, 3), "<f4", ["expected joints (T, 22, 3) or features (T, 263)"]),
        ((0, 22, 3), "<f4", ["no frames"]),
    ],
)
def test_export_checks_the_npy_header_before_loading(nothing_loaded, tmp_path, capsys, shape, descr, words):
    path = forge(tmp_path / "m.npy", shape, descr, data=b"\0" * (5 * 22 * 3 * 4))
    refused(capsys, ["export", str(path)], str(path), *words)
    assert not (tmp_path / "m.bvh").exists()


def test_render_bounds_fps_and_checks_the_header(nothing_loaded, joints_file, tmp_path, capsys):
    refused(capsys, ["render", str(joints_file), "-o", str(tmp_path / "a.gif"), "--fps", "1e9"], "--fps", "1..1000")
    forged = forge(tmp_path / "big.npy", (10**6, 22, 3))
    refused(capsys, ["render", str(forged), "-o", str(tmp_path / "a.gif")], str(forged), "shorter than its header")
    assert not (tmp_path / "a.gif").exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--num", "1000000000000"], ["--num 1000000000000", "at most 100000"]),
        (["--fps", "1e9"], ["--fps must be in 1..1000"]),
    ],
)
def test_generate_refuses_before_loading_the_model(tmp_path, capsys, options, words):
    out = tmp_path / "out"
    refused(
        capsys, ["generate", "a person walks", "--model", str(tmp_path / "no-model"), "-o", str(out), *options], *words
    )
    assert not out.exists()


def test_data_check_reports_a_forged_header_without_loading_it(tmp_path, humanml3d_sample_dir, monkeypatch):
    root = make_dataset_dir(tmp_path, humanml3d_sample_dir)
    forged = {
        forge(root / "new_joint_vecs" / "val_000.npy", (10**10, 263)),
        forge(root / "new_joints" / "000000.npy", (116, 22, 3)),
    }

    def load_unless_forged(path, *args, **kwargs):
        assert Path(path) not in forged, f"{path} loaded before its header was checked"
        return REAL_LOAD(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", load_unless_forged)
    errors = check_dataset(root, progress=False).errors
    assert [e for e in errors if e.startswith("new_joint_vecs/val_000.npy: ") and "would take" in e], errors
    assert [e for e in errors if e.startswith("new_joints/000000.npy: ") and "shorter than" in e], errors


def test_the_library_refuses_too_many_frames_before_resampling(monkeypatch):
    monkeypatch.setattr(BVH, "resampled", refuse)
    joints = np.zeros((3, 22, 3))
    joints[:, :, 1] = np.arange(22) * 0.1  # no zero-length bone
    with pytest.raises(ValueError, match="target_fps must be in 1..1000"):
        joints_to_bvh(joints, target_fps=1e9)
    assert output_frames(196, 20.0, 1000.0) == 9751
    with pytest.raises(ValueError, match="at most 100,000"):
        joints_to_bvh(np.repeat(joints, 1000, axis=0), fps=1.0, target_fps=1000.0)
