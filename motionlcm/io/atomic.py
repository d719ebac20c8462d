"""Atomic file writes: write to a temporary sibling, then rename, so a crash never leaves half a file.

Also all-or-nothing publishing of a set of files: stage them in a hidden folder (`staging_folder`), then move
them into place under a lock on the output folder (`publish_files`). SIGTERM unwinds like an exception so the
staging folder is removed, and staging folders of processes that died anyway (SIGKILL, power cut) are
removed by the next run (`remove_stale_staging`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[Path], None], require_output: bool = False) -> Path:
    """The one atomic file writer: `write(tmp)` fills a temporary file in `path`'s folder, which is then
    renamed over `path`; on any error (or SIGTERM, see `sigterm_exits`) the temporary file is removed and
    an existing `path` is left untouched.

    The temporary name keeps `path`'s suffix (`.<stem>.XXXX.partial<suffix>`), so writers that choose a
    format by suffix (ffmpeg, Pillow, matplotlib) work. Permissions: 0666 minus the umask, as `open()`
    gives a new file. `require_output` refuses an empty result (a writer that silently wrote nothing).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        write(tmp)
        if require_output and (not tmp.is_file() or tmp.stat().st_size == 0):
            raise RuntimeError(f"{path}: the writer produced no output")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | Path, write: Callable[[BinaryIO], None], durable: bool = False) -> Path:
    """`write(handle)` into a binary file handle, then `write_atomic`'s rename; `durable` forces the data
    to disk before the rename (an fsync: slower, for files that must survive a power cut)."""

    def to_file(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())

    return write_atomic(path, to_file)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """UTF-8 text to `path`, atomically (newlines written as given)."""
    return write_bytes_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def save_npy_atomic(path: str | Path, array: np.ndarray) -> Path:
    """`np.save` to exactly `path` (no ".npy" appended), atomically."""
    return write_bytes_atomic(path, lambda handle: np.save(handle, np.asarray(array), allow_pickle=False))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """JSON (indented, UTF-8) to `path`, atomically. NaN and infinities are refused (a ValueError naming
    the file): they are not JSON, and other readers reject the whole file."""
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as error:
        raise ValueError(f"{path}: refusing to write non-finite numbers into JSON ({error})") from None
    return write_text_atomic(path, text)


def write_folder_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """The one atomic folder writer: `write(tmp)` fills a new hidden sibling folder
    (`.<name>.partial-<pid>-XXXX`), which then replaces `path` (`swap_folder`); on any error, or SIGTERM,
    the temporary folder is removed and `path` is left untouched. Partial folders of processes that died
    (SIGKILL, power cut) are removed first. Permissions: 0777 minus the umask for the folder, as `mkdir` gives,
    and 0666 minus the umask for every file in it, as `open()` gives.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.partial-"
    with sigterm_exits():
        remove_stale_staging(path.parent, prefix)
        tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=path.parent))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
            write(tmp)
            for file in tmp.rglob("*"):  # writers such as safetensors make 0600 files: one rule for all
                if file.is_file() and not file.is_symlink():
                    os.chmod(file, 0o666 & ~_umask())
            swap_folder(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return path


def swap_folder(new: Path, path: Path) -> None:
    """Put the finished folder `new` at `path`: a plain rename when `path` is free; otherwise the old folder
    is renamed aside, `new` renamed in, and only then the old one removed (if the second rename fails, the
    old folder is put back)."""
    if not path.exists() and not path.is_symlink():
        new.rename(path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.replaced-{os.getpid()}-", dir=path.parent))
    old.rmdir()
    path.rename(old)
    try:
        new.rename(path)
    except BaseException:
        old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- SIGTERM


_handler_pid: int | None = None  # the process that installed `_exit_on_sigterm`


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    if os.getpid() != _handler_pid:  # a forked child (a pool worker): die as SIGTERM does by default
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(128 + signum)


def _install_sigterm_exit() -> Any:
    """Make SIGTERM raise SystemExit(143) in this process, so `finally` blocks run; returns the previous
    handler, or None when nothing was changed (not the main thread, or SIGTERM already has a handler)."""
    global _handler_pid
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    _handler_pid = os.getpid()
    return signal.signal(signal.SIGTERM, _exit_on_sigterm)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within the block SIGTERM raises SystemExit(143) (a handler someone else installed is kept)."""
    previous = _install_sigterm_exit()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- staging folders


def _owner_pid(name: str, prefix: str) -> int | None:
    """The PID in a staging folder name `<prefix><pid>` or `<prefix><pid>-<anything>`."""
    head = name[len(prefix) :].partition("-")[0]
    return int(head) if name.startswith(prefix) and head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_staging(parent: str | Path, prefix: str) -> list[Path]:
    """Remove the folders `<prefix><pid>...` in `parent` whose process is gone; returns them."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    stale = [
        path
        for path in parent.iterdir()
        if path.is_dir() and not path.is_symlink() and (pid := _owner_pid(path.name, prefix)) and not _alive(pid)
    ]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def prepare_staging(parent: str | Path, prefix: str) -> None:
    """For a command that stages into `parent / f"{prefix}{os.getpid()}"`: remove stale staging folders of
    dead processes and make SIGTERM raise SystemExit(143) for the rest of the process, so the caller's
    cleanup runs (forked workers still die silently)."""
    remove_stale_staging(parent, prefix)
    _install_sigterm_exit()


@contextlib.contextmanager
def staging_folder(parent: str | Path, prefix: str) -> Iterator[Path]:
    """A new hidden folder `<prefix><pid>-<random>` in `parent`, removed on leaving (SIGTERM included).

    Stale staging folders of dead processes are removed first.
    """
    with sigterm_exits():
        remove_stale_staging(parent, prefix)
        stage = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)


# --------------------------------------------------------------------------- publishing


@contextlib.contextmanager
def directory_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the folder itself: no lock file is left behind; POSIX)."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def refuse_existing(paths: list[Path]) -> None:
    """ValueError naming the first of `paths` that exists (and how many more do)."""
    taken = [path for path in paths if path.exists() or path.is_symlink()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise ValueError(f"{taken[0]}{more}: exists; pass --force to overwrite")


def refuse_non_regular(paths: list[Path]) -> None:
    """ValueError naming the first of `paths` that exists as something other than a regular file (a folder,
    a device such as /dev/null, a FIFO, a socket or a symbolic link): --force replaces files, nothing else."""
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path}: exists and is not a regular file; refusing to replace it (even with --force)")


def check_targets(paths: list[Path], force: bool) -> None:
    """The files a command is about to write: never over a non-regular file, over an existing one only with
    --force (ValueError naming the first offender)."""
    refuse_non_regular(paths)
    if not force:
        refuse_existing(paths)


def _swap_in(staged: Path, target: Path, backup: Path) -> None:
    if target.exists() or target.is_symlink():
        target.replace(backup)
    staged.replace(target)


def _roll_back(stage: Path, out: Path, backups: Path, names: list[str]) -> None:
    """Undo `_swap_in` of `names`: staged files go back to `stage`, replaced ones back into `out`."""
    for name in reversed(names):
        with contextlib.suppress(OSError):
            if not (stage / name).exists() and (out / name).exists():
                (out / name).replace(stage / name)
            if (backups / name).exists():
                (backups / name).replace(out / name)


def publish_files(stage: str | Path, out: str | Path, names: list[str], force: bool = False) -> list[Path]:
    """Move the files `names` from `stage` (a folder inside `out`) into `out`: all of them or none.

    Under a lock on `out`, so that two runs cannot both find a name free and then both write it. Without
    `force`, an existing file is a ValueError naming it and nothing moves; with it, replaced files are kept
    aside until every file is in place and put back if anything fails.
    """
    stage, out = Path(stage), Path(out)
    with directory_lock(out):
        check_targets([out / name for name in names], force)
        backups = Path(tempfile.mkdtemp(prefix=".replaced-", dir=stage))
        done: list[str] = []
        try:
            for name in names:
                done.append(name)
                _swap_in(stage / name, out / name, backups / name)
        except BaseException:
            _roll_back(stage, out, backups, done)
            raise
    return [out / name for name in names]
