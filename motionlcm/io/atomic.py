"""Atomic file writes: write to a temporary sibling, then rename, so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_via_temp(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npy_atomic(path: str | Path, array: np.ndarray) -> Path:
    """`np.save` to exactly `path` (no ".npy" appended), atomically."""
    return _write_via_temp(Path(path), lambda handle: np.save(handle, np.asarray(array), allow_pickle=False))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """JSON (indented, UTF-8) to `path`, atomically."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return _write_via_temp(Path(path), lambda handle: handle.write(text.encode("utf-8")))
