"""Check a .npy file's header before loading it.

`np.load` allocates what the header declares before it reads the data, so a corrupt or hostile header
(a huge shape, a truncated file, an object dtype) is refused here first, with one line naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

MAX_NPY_BYTES = 2**30  # 1 GiB of data: far more than any motion or statistics file holds
HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


def _read_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the data) as the file declares them."""
    with open(path, "rb") as handle:
        shape, dtype = read_header_from(handle)
        return shape, dtype, handle.tell()


def check_header(
    name: str, shape: tuple[int, ...], dtype: np.dtype, available: int, max_bytes: int = MAX_NPY_BYTES
) -> NpyHeader:
    """Refuse, in one line naming `name`, a declared array that is not plain numbers, has a negative or absurd
    shape (over `max_bytes`), or needs more than the `available` data bytes; else its `NpyHeader`."""
    if dtype.hasobject:
        raise ValueError(
            f"{name}: not a plain numeric array (dtype {dtype} holds Python objects, which are never unpickled)"
        )
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "fiu":
        raise ValueError(f"{name}: not a plain numeric array (dtype {dtype}; expected floats or integers)")
    if any(d < 0 for d in shape):
        raise ValueError(f"{name}: negative dimension in shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise ValueError(f"{name}: shape {shape} of {dtype} would take {nbytes:,} bytes; at most {max_bytes:,}")
    if available < nbytes:
        raise ValueError(
            f"{name}: shorter than its header says ({available:,} data bytes; shape {shape} "
            f"of {dtype} needs {nbytes:,})"
        )
    return NpyHeader(shape, dtype, nbytes)


def read_header_from(handle) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from an open binary .npy stream positioned at its magic string."""
    version = npy_format.read_magic(handle)
    if version not in HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    shape, _, dtype = HEADER_READERS[version](handle)
    return tuple(shape), dtype


def read_npy_header(path: str | Path, max_bytes: int = MAX_NPY_BYTES, where: str | None = None) -> NpyHeader:
    """The header of a plain numeric .npy file, checked against the file before anything is allocated.

    Raises:
        ValueError: one line naming the file (`where`, default the path): unreadable header, object,
            structured or non-numeric dtype, negative or absurd shape (over `max_bytes` of data), or a file
            shorter than its header says.
    """
    path = Path(path)
    name = where or str(path)
    try:
        shape, dtype, offset = _read_header(path)
        size = path.stat().st_size
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ValueError(f"{name}: not a readable .npy file ({' '.join(str(err).split())})") from None
    return check_header(name, shape, dtype, size - offset, max_bytes)
