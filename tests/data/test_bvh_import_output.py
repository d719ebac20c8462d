"""`import-bvh --force` replaces only an earlier import or an empty folder, never the source library or a
user's files; bad --split values are refused before anything is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from motionlcm.cli import main

BN = Path(__file__).resolve().parents[2] / "datasets" / "bandai-namco"
CLIPS = ("dataset-2_walk_normal_001", "dataset-2_run_active_001")


@pytest.fixture
def library(bn_fixture_dir, tmp_path) -> Path:
    """A copy of two real fixture clips (the tests try to make the importer delete it)."""
    src = tmp_path / "library"
    src.mkdir()
    for name in CLIPS:
        shutil.copy(bn_fixture_dir / f"{name}.bvh", src)
    return src


def import_bvh(src: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "data",
            "import-bvh",
            str(src),
            "--rig",
            str(BN / "rig.yaml"),
            "--captions",
            str(BN / "captions.yaml"),
            "-o",
            str(out),
            "--workers",
            "1",
            "--split",
            "1,0,0",
            "-q",
            *extra,
        ]
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    return err[0]


def test_force_keeps_a_folder_of_unrelated_files(library, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "thesis.tex").write_text("years of work")
    (out / "notes" / "a.txt").write_text("a")
    before = snapshot(out)
    assert import_bvh(library, out, "--force") == 2
    one_error_line(capsys, str(out), "not an earlier import")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library", "mine"]


@pytest.mark.parametrize("inside", ["", "sub", "sub/deeper"])
def test_force_never_writes_into_or_over_the_source_library(library, capsys, inside):
    (library / "sub").mkdir()
    (library / "sub" / "keep.txt").write_text("keep")
    before = snapshot(library)
    assert import_bvh(library, library / inside, "--force") == 2
    one_error_line(capsys, "source folder", str(library))
    assert snapshot(library) == before
    assert sorted(p.name for p in library.iterdir()) == sorted([*(f"{n}.bvh" for n in CLIPS), "sub"])


def test_force_never_replaces_a_folder_holding_the_source(library, tmp_path, capsys):
    before = snapshot(library)
    assert import_bvh(library, tmp_path, "--force") == 2
    one_error_line(capsys, "source folder")
    assert snapshot(library) == before


def test_force_refuses_a_file_and_leaves_no_temporary_name(library, tmp_path, capsys):
    out = tmp_path / "dataset.txt"
    out.write_text("not a dataset")
    assert import_bvh(library, out, "--force") == 2
    one_error_line(capsys, str(out), "not a folder")
    assert out.read_text() == "not a dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.txt", "library"]


def test_force_replaces_an_earlier_import_and_an_empty_folder(library, tmp_path, capsys):
    out = tmp_path / "bn"
    out.mkdir()
    assert import_bvh(library, out) == 2  # an empty folder exists: refused without --force
    assert import_bvh(library, out, "--force") == 0
    (out / "stale.txt").write_text("from the first import")
    assert import_bvh(library, out, "--force") == 0
    assert not (out / "stale.txt").exists() and (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bn", "library"]


@pytest.mark.parametrize("split", ["nan,0,0", "1.2,-0.1,-0.1", "inf,0,0", "0,0,0", "0.5,0.2,0.2"])
def test_bad_split_is_one_line_and_writes_nothing(library, tmp_path, capsys, split):
    out = tmp_path / "bn"
    assert import_bvh(library, out, "--split", split) == 2
    one_error_line(capsys, "--split")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library"]
