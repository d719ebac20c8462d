"""motionlcm.io.atomic: all-or-nothing publishing under a lock, and staging folders that never outlive their run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from motionlcm.io import atomic
from motionlcm.io.atomic import prepare_staging, publish_files, remove_stale_staging, staging_folder


def stage_files(out: Path, names: list[str], text: str) -> Path:
    stage = out / f".stage-{text}"
    stage.mkdir(parents=True)
    for name in names:
        (stage / name).write_text(text)
    return stage


def test_publish_refuses_an_existing_file_and_moves_nothing(tmp_path):
    (tmp_path / "b.npy").write_text("theirs")
    stage = stage_files(tmp_path, ["a.npy", "b.npy"], "ours")
    with pytest.raises(ValueError, match=r"b\.npy: exists; pass --force"):
        publish_files(stage, tmp_path, ["a.npy", "b.npy"])
    assert not (tmp_path / "a.npy").exists() and (tmp_path / "b.npy").read_text() == "theirs"
    publish_files(stage, tmp_path, ["a.npy", "b.npy"], force=True)
    assert (tmp_path / "a.npy").read_text() == (tmp_path / "b.npy").read_text() == "ours"


def test_a_failure_half_way_restores_the_replaced_files(tmp_path, monkeypatch):
    (tmp_path / "b.npy").write_text("theirs")
    stage = stage_files(tmp_path, ["a.npy", "b.npy", "c.npy"], "ours")
    original = atomic._swap_in

    def fail_on_c(staged, target, backup):
        if target.name == "c.npy":
            raise OSError("disk full")
        original(staged, target, backup)

    monkeypatch.setattr(atomic, "_swap_in", fail_on_c)
    with pytest.raises(OSError, match="disk full"):
        publish_files(stage, tmp_path, ["a.npy", "b.npy", "c.npy"], force=True)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["b.npy"]
    assert (tmp_path / "b.npy").read_text() == "theirs"


def test_two_concurrent_publishes_into_one_folder_one_wins(tmp_path, monkeypatch):
    """The second run checks while the first is moving its files: the lock makes it wait, then refuse."""
    names = ["a.npy", "a.json"]
    first, second = stage_files(tmp_path, names, "first"), stage_files(tmp_path, names, "second")
    moving = threading.Event()
    original = atomic._swap_in

    def slow_swap(staged, target, backup):
        if staged.parent == first:
            moving.set()
            time.sleep(0.3)
        original(staged, target, backup)

    monkeypatch.setattr(atomic, "_swap_in", slow_swap)
    results = {}

    def run(stage, key):
        try:
            results[key] = publish_files(stage, tmp_path, names)
        except ValueError as error:
            results[key] = error

    winner = threading.Thread(target=run, args=(first, "first"))
    winner.start()
    assert moving.wait(10)
    run(second, "second")
    winner.join()
    assert results["first"] == [tmp_path / name for name in names]
    assert isinstance(results["second"], ValueError) and "exists; pass --force" in str(results["second"])
    assert all((tmp_path / name).read_text() == "first" for name in names)


def test_stale_staging_of_dead_processes_is_removed_and_live_ones_kept(tmp_path, dead_pid):
    dead, live = tmp_path / f".bn.importing-{dead_pid}", tmp_path / f".bn.importing-{os.getpid()}"
    other = tmp_path / f".other.importing-{dead_pid}"
    for folder in (dead, live, other):
        (folder / "new_joints").mkdir(parents=True)
    prepare_staging(tmp_path, ".bn.importing-")
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert remove_stale_staging(tmp_path / "missing", ".bn.importing-") == []


def test_staging_folder_is_removed_on_error_and_names_its_process(tmp_path):
    with pytest.raises(RuntimeError), staging_folder(tmp_path, ".x-") as stage:
        assert stage.name.startswith(f".x-{os.getpid()}-")
        (stage / "f").write_text("partial")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_sigterm_unwinds_so_the_staging_folder_is_removed(tmp_path):
    script = (
        "import sys, time\n"
        "from motionlcm.io.atomic import staging_folder\n"
        f"with staging_folder({str(tmp_path)!r}, '.x-') as stage:\n"
        "    print(stage, flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as child:
        stage = Path(child.stdout.readline().strip())
        assert stage.is_dir()
        child.terminate()
        assert child.wait(30) == 128 + 15
    assert list(tmp_path.iterdir()) == []


def test_json_with_non_finite_numbers_is_refused_and_nothing_is_written(tmp_path):
    from motionlcm.io.atomic import write_json_atomic

    with pytest.raises(ValueError, match=r"out\.json: refusing to write non-finite numbers"):
        write_json_atomic(tmp_path / "out.json", {"fid": float("nan")})
    assert not list(tmp_path.iterdir())
    write_json_atomic(tmp_path / "out.json", {"fid": 0.5})
    assert (tmp_path / "out.json").read_text() == '{\n  "fid": 0.5\n}\n'


def test_generate_refuses_a_model_whose_weights_produce_nan(student_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from motionlcm.generate import Request, generate

    model = tmp_path / "model"
    shutil.copytree(student_dir, model)
    weights = load_file(model / "denoiser.safetensors")
    key = next(k for k, v in weights.items() if v.is_floating_point() and v.ndim == 2)
    weights[key] = weights[key] * 1e38  # finite weights whose products overflow to inf, then NaN
    save_file(weights, model / "denoiser.safetensors")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="the model produced NaN or infinite values"):
        generate(
            [Request("a person walks.")], out, model=str(model), seconds=1.0, formats=("npy", "json"), progress=False
        )
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_write_atomic_keeps_the_suffix_gives_open_permissions_and_cleans_up(tmp_path):
    from motionlcm.io.atomic import write_atomic

    seen = []
    out = write_atomic(tmp_path / "clip.mp4", lambda tmp: (seen.append(tmp.name), tmp.write_bytes(b"x")))
    assert out == tmp_path / "clip.mp4" and out.read_bytes() == b"x"
    assert seen[0].startswith(".clip.") and seen[0].endswith(".partial.mp4")  # ffmpeg picks the format by suffix
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask  # as open() creates a file
    with pytest.raises(RuntimeError, match="clip.gif: the writer produced no output"):
        write_atomic(tmp_path / "clip.gif", lambda tmp: None, require_output=True)
    with pytest.raises(OSError):
        write_atomic(
            tmp_path / "clip.mp4", lambda tmp: (tmp.write_bytes(b"half"), (_ for _ in ()).throw(OSError("disk full")))
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"] and out.read_bytes() == b"x"


@pytest.mark.parametrize("what", ["npy", "mp4"])
def test_a_full_disk_while_generating_is_one_line_and_leaves_nothing(student_dir, tmp_path, capsys, monkeypatch, what):
    import errno

    from motionlcm.cli import main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if what == "npy":
        monkeypatch.setattr("motionlcm.io.atomic.np.save", full)
    else:
        monkeypatch.setattr("motionlcm.render.movie.GifWriter.finish", full)
        monkeypatch.setattr("motionlcm.render.movie.Mp4Writer.finish", full)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's file")
    code = main(["generate", "a person walks.", "--model", str(student_dir), "--seconds", "1", "-o", str(out),
                 "--format", "npy,mp4,json", "-q"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # no partial file, no staging folder


def test_write_folder_atomic_replaces_whole_folders_with_open_permissions(tmp_path):
    from motionlcm.io.atomic import write_folder_atomic

    mask = os.umask(0)
    os.umask(mask)

    def fill(tmp):
        (tmp / "weights.bin").write_bytes(b"new")
        os.chmod(tmp / "weights.bin", 0o600)  # as safetensors writes its files

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    write_folder_atomic(target, fill)
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]  # replaced whole, nothing merged
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((target / "weights.bin").stat().st_mode) == 0o666 & ~mask

    def broken(tmp):
        (tmp / "half.bin").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_folder_atomic(target, broken)
    assert (target / "weights.bin").read_bytes() == b"new"  # the previous folder is untouched
    dead_pid = 2**22 + 1  # above Linux's pid_max default: no such process
    stale = tmp_path / f".model.partial-{dead_pid}-abc"
    stale.mkdir()
    write_folder_atomic(target, fill)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no partial or replaced folder is left
