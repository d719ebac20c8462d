"""Tests for motionlcm.data.check: a clean folder passes; each kind of defect is reported with its file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from motionlcm.data.check import DatasetReport, check_dataset
from tests.data.test_humanml3d import add_clip, caption, make_dataset_dir


@pytest.fixture
def dataset_dir(tmp_path, humanml3d_sample_dir) -> Path:
    return make_dataset_dir(tmp_path, humanml3d_sample_dir)


def _lines_with(lines: list[str], *parts: str) -> list[str]:
    return [line for line in lines if all(part in line for part in parts)]


def _edit_npy(path: Path, edit: Callable[[np.ndarray], np.ndarray]) -> None:
    np.save(path, edit(np.load(path)))


def test_clean_folder_passes_with_summary(dataset_dir) -> None:
    report = check_dataset(dataset_dir, progress=False)
    assert report.errors == [] and report.warnings == [] and report.ok
    s = report.summary
    assert s["clips_per_split"] == {"train": 3, "val": 1, "test": 1}
    assert s["clips"] == s["clips_readable"] == 5
    assert s["rows"] == 116 + 170 + 30 + 100 + 60
    assert s["minutes"] == pytest.approx(476 / 20 / 60)
    hist = s["length_histogram_s"]
    assert list(hist) == ["0-1", "1-2", "2-3", "3-4", "4-5", "5-6", "6-7", "7-8", "8-9", "9-10", "10+"]
    assert {k: v for k, v in hist.items() if v} == {"1-2": 1, "3-4": 1, "5-6": 2, "8-9": 1}
    assert s["pass_length_filter"] == 4  # short_00 (30 rows) fails 40 <= rows < 200
    assert s["captions"] == 4 + 4 + 1 + 1 + 1 and s["span_captions"] == 2
    assert s["captions_per_clip"] == {"min": 1, "mean": pytest.approx(11 / 5), "max": 4}
    text = report.format()
    assert "train 3, val 1, test 1" in text and "Result: OK (0 errors, 0 warnings)" in text


def test_optional_split_files_are_checked_for_consistency(dataset_dir) -> None:
    (dataset_dir / "train_val.txt").write_text("000000\n012314\nshort_00\nval_000\n")
    (dataset_dir / "all.txt").write_text("000000\n012314\nshort_00\nval_000\n")  # test_000 missing
    report = check_dataset(dataset_dir, progress=False)
    assert report.errors == []
    assert len(report.warnings) == 1
    assert _lines_with(report.warnings, "all.txt", "1 missing", "test_000")


def _nan_clip(root: Path) -> None:
    def poison(a: np.ndarray) -> np.ndarray:
        a[10, 100] = np.nan
        return a

    _edit_npy(root / "new_joint_vecs" / "012314.npy", poison)


def _bad_line(text: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        with open(root / "texts" / "012314.txt", "a") as f:
            f.write(text + "\n")

    return write


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "nan_motion": (_nan_clip, ("new_joint_vecs/012314.npy", "non-finite", "row 10, col 100")),
    "wrong_dim": (
        lambda r: _edit_npy(r / "new_joint_vecs" / "val_000.npy", lambda a: a[:, :251]),
        ("new_joint_vecs/val_000.npy", "shape (100, 251)"),
    ),
    "missing_motion": (
        lambda r: (r / "new_joint_vecs" / "test_000.npy").unlink(),
        ("new_joint_vecs/test_000.npy", "missing"),
    ),
    "joints_frames": (
        lambda r: _edit_npy(r / "new_joints" / "val_000.npy", lambda a: a[:-1]),
        ("new_joints/val_000.npy", "99 frames", "100 rows"),
    ),
    "joints_shape": (
        lambda r: _edit_npy(r / "new_joints" / "000000.npy", lambda a: a[:, :21]),
        ("new_joints/000000.npy", "expected (T, 22, 3)"),
    ),
    "missing_text": (lambda r: (r / "texts" / "test_000.txt").unlink(), ("texts/test_000.txt", "missing")),
    "three_fields": (_bad_line("a man walks#a/DET man/NOUN walk/VERB#0.0"), ("texts/012314.txt:5:", "4 '#'")),
    "bad_float": (_bad_line("a man walks#a/DET#zero#1.0"), ("texts/012314.txt:5:", "numbers", "'zero'")),
    "from_after_to": (_bad_line("a man walks#a/DET#3.0#1.0"), ("texts/012314.txt:5:", "from 3.0 > to 1.0")),
    "empty_text": (lambda r: (r / "texts" / "val_000.txt").write_text(""), ("texts/val_000.txt", "no valid")),
    "split_overlap": (
        lambda r: (r / "test.txt").write_text("test_000\nval_000\n"),
        ("test.txt", "1 names also in val.txt", "val_000"),
    ),
    "missing_split": (lambda r: (r / "val.txt").unlink(), ("val.txt", "split file missing")),
    "empty_train": (lambda r: (r / "train.txt").write_text("\n"), ("train.txt", "empty split file")),
    "missing_std": (lambda r: (r / "Std.npy").unlink(), ("Std.npy", "missing")),
    "mean_shape": (lambda r: np.save(r / "Mean.npy", np.zeros((22, 3))), ("Mean.npy", "shape (22, 3)")),
    "std_nan": (
        lambda r: _edit_npy(r / "Std.npy", lambda a: np.where(np.arange(263) == 3, np.nan, a)),
        ("Std.npy", "1 non-finite"),
    ),
    "std_zero": (
        lambda r: _edit_npy(r / "Std.npy", lambda a: np.where(np.arange(263) >= 259, 0.0, a)),
        ("Std.npy", "4 values <= 0", "dim 259"),
    ),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_each_defect_is_an_error_naming_its_file(dataset_dir, kind) -> None:
    corrupt, parts = CORRUPTIONS[kind]
    corrupt(dataset_dir)
    report = check_dataset(dataset_dir, progress=False)
    assert not report.ok
    assert _lines_with(report.errors, *parts), report.errors
    assert "Result: FAILED" in report.format() and parts[0] in report.format()


WARNINGS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "orphan_clip": (
        lambda r: add_clip(r, "extra_1", np.zeros((50, 263), np.float32), [caption("x")], np.zeros((50, 22, 3))),
        ("new_joint_vecs/", "1 files in no split", "extra_1"),
    ),
    "joints_missing": (lambda r: (r / "new_joints" / "test_000.npy").unlink(), ("new_joints/test_000.npy",)),
    "blank_line": (_bad_line("\n"), ("texts/012314.txt:5:", "blank line")),
    "span_past_end": (_bad_line("a man walks#a/DET#8.0#9.5"), ("texts/012314.txt:5:", "past the clip end")),
    "std_not_block_constant": (
        lambda r: _edit_npy(r / "Std.npy", lambda a: a * np.linspace(1, 2, 263, dtype=np.float32)),
        ("Std.npy", "block ric"),
    ),
    "empty_test": (lambda r: (r / "test.txt").write_text(""), ("test.txt", "empty split file")),
    "duplicate_name": (lambda r: (r / "val.txt").write_text("val_000\nval_000\n"), ("val.txt", "val_000")),
}


@pytest.mark.parametrize("kind", list(WARNINGS))
def test_suspicious_but_loadable_data_is_a_warning(dataset_dir, kind) -> None:
    corrupt, parts = WARNINGS[kind]
    corrupt(dataset_dir)
    report = check_dataset(dataset_dir, progress=False)
    assert report.errors == []
    assert _lines_with(report.warnings, *parts), report.warnings


def test_not_a_directory(tmp_path) -> None:
    report = check_dataset(tmp_path / "missing")
    assert isinstance(report, DatasetReport) and not report.ok
    assert "not a directory" in report.errors[0]


def test_real_sample_without_splits_fails(humanml3d_sample_dir) -> None:
    report = check_dataset(humanml3d_sample_dir, progress=False)
    assert {e.split(":")[0] for e in report.errors} == {"train.txt", "val.txt", "test.txt"}
    assert _lines_with(report.warnings, "new_joint_vecs/", "000000", "012314")
