"""Read a motion array from a .npy or .npz file: the one reader behind `motionlcm render`, `motionlcm export`
and anything else that takes a user's motion file.

Accepted arrays (docs/humanml3d-format in shared docs: 22 SMPL joints, 263-d features, 20 fps):
joints (T, 22, 3) in metres, the same flattened (T, 66), or 263-d features (T, 263); a leading batch axis of
size 1 is dropped. An .npz holds the array as `joints` or `features` (or as its only member) and may add
`fps` and a `text` / `prompt` / `caption`. Every header is checked before anything is allocated and no
pickle is ever loaded; each problem is one ValueError naming the file.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motionlcm.io.npy import check_header, read_header_from, read_npy_header

JOINTS_SHAPE = (22, 3)
FEATURE_DIM = 263  # HumanML3D's feature size (motionlcm.data.features.FEATURE_DIM; io sits below data)
SUFFIXES = (".npy", ".npz")
TITLE_KEYS = ("text", "prompt", "caption")
MAX_TITLE_BYTES = 1 << 16


@dataclass(frozen=True)
class MotionArray:
    """A motion array as stored: `kind` "joints" (T, 22, 3) or "features" (T, 263), float64, finite; `fps`
    and `title` when the file records them (an .npz), else None."""

    array: np.ndarray
    kind: str
    fps: float | None = None
    title: str | None = None

    @property
    def frames(self) -> int:
        return int(self.array.shape[0])


def inspect_motion_file(path: str | os.PathLike, suffixes: tuple[str, ...] = SUFFIXES) -> tuple[str, tuple[int, ...]]:
    """The kind ("joints" or "features") and the (normalised) shape a motion file declares, from its headers
    only: nothing is loaded, so a caller can bound what it will allocate before `read_motion_array`.

    Raises:
        ValueError: as `read_motion_array`, for everything its headers can tell.
    """
    return _inspect(path, suffixes)[1:3]


def _inspect(path: str | os.PathLike, suffixes: tuple[str, ...]) -> tuple[Path, str, tuple[int, ...], tuple | None]:
    """(path, kind, normalised shape, an .npz's (motion key, every key) or None), every header checked."""
    p, suffix = _check_file(path, suffixes)
    if suffix == ".npy":
        return (p, *_shape_kind(read_npy_header(p).shape, str(p)), None)
    key, shape, keys = _npz_layout(p)
    return (p, *_shape_kind(shape, str(p)), (key, keys))


def read_motion_array(path: str | os.PathLike, suffixes: tuple[str, ...] = SUFFIXES) -> MotionArray:
    """Load and check the motion array in `path` (see the module docstring).

    Raises:
        ValueError: one line naming the file: missing, wrong suffix or content, hostile or truncated header,
            pickled objects, wrong shape, no frames, NaN or infinite values.
    """
    p, kind, shape, npz = _inspect(path, suffixes)
    fps, title = None, None
    if npz is None:
        array = _load(p, lambda: np.load(p, allow_pickle=False))
    else:
        array, fps, title = _read_npz(p, *npz)
    array = np.asarray(array, dtype=np.float64).reshape(shape)
    if not np.isfinite(array).all():
        raise ValueError(f"{p}: {kind} contain NaN/inf")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{p}: fps must be a positive number, got {fps}")
    return MotionArray(array, kind, fps, title)


def _check_file(path: str | os.PathLike, suffixes: tuple[str, ...]) -> tuple[Path, str]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        raise ValueError(f"{p}: unknown motion file type {p.suffix!r}; expected {' or '.join(suffixes)}")
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(b"\x93NUMPY" if suffix == ".npy" else b"PK\x03\x04"):
        raise ValueError(f"{p}: cannot read (not a {suffix} file)")
    return p, suffix


def _shape_kind(shape: tuple[int, ...], where: str) -> tuple[str, tuple[int, ...]]:
    """("joints", (T, 22, 3)) or ("features", (T, 263)) for a declared shape; (1, T, ...) batches and flat
    (T, 66) joints are normalised."""
    while len(shape) > 2 and shape[0] == 1 and shape[1:] != JOINTS_SHAPE:
        shape = shape[1:]
    if len(shape) == 3 and shape[1:] == JOINTS_SHAPE:
        kind = "joints"
    elif len(shape) == 2 and shape[1] == 66:
        kind, shape = "joints", (shape[0], *JOINTS_SHAPE)
    elif len(shape) == 2 and shape[1] == FEATURE_DIM:
        kind = "features"
    else:
        raise ValueError(f"{where}: expected joints (T, 22, 3) or features (T, {FEATURE_DIM}), got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{where}: the motion has no frames")
    return kind, tuple(shape)


def _load(p: Path, read):
    try:
        return read()
    except ValueError as err:  # object arrays need pickle, which is never loaded
        if "pickle" in str(err):
            raise ValueError(f"{p}: not a plain numeric array (it holds pickled Python objects)") from None
        raise ValueError(f"{p}: cannot read ({' '.join(str(err).split())})") from None
    except Exception as err:  # noqa: BLE001 - zip and numpy raise many kinds for a corrupt file
        raise ValueError(f"{p}: cannot read ({type(err).__name__}: {' '.join(str(err).split())})") from None


def _member_header(p: Path, archive: zipfile.ZipFile, key: str) -> tuple[int, ...]:
    """The member's .npy header, checked like a .npy file's before np.load allocates it; its shape."""
    info = archive.getinfo(f"{key}.npy")
    with archive.open(info) as member:
        try:
            shape, dtype = read_header_from(member)
        except (ValueError, SyntaxError, EOFError) as err:
            raise ValueError(f"{p}: array {key!r} is not a readable .npy ({' '.join(str(err).split())})") from None
        offset = member.tell()
    return check_header(f"{p}: array {key!r}", shape, dtype, info.file_size - offset).shape


def _npz_layout(p: Path) -> tuple[str, tuple[int, ...], list[str]]:
    """(the motion array's key, its declared shape, every key), every numeric member's header checked."""
    try:
        archive = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{p}: cannot read ({' '.join(str(err).split())})") from None
    with archive:
        keys = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
        key = next((k for k in ("joints", "features") if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise ValueError(f"{p}: npz has no 'joints' or 'features' array (keys: {', '.join(keys) or 'none'})")
        shape = _member_header(p, archive, key)
        if "fps" in keys:
            _member_header(p, archive, "fps")
        for name in TITLE_KEYS:  # text, not numbers: only its size is bounded
            if name in keys and archive.getinfo(f"{name}.npy").file_size > MAX_TITLE_BYTES:
                raise ValueError(f"{p}: array {name!r} is larger than {MAX_TITLE_BYTES:,} bytes")
    return key, shape, keys


def _read_npz(p: Path, key: str, keys: list[str]) -> tuple[np.ndarray, float | None, str | None]:
    """The motion array (`key`), fps and title of an .npz whose headers `_npz_layout` checked."""
    with _load(p, lambda: np.load(p, allow_pickle=False)) as data:
        array = _load(p, lambda: data[key])
        fps = float(_load(p, lambda: data["fps"])) if "fps" in keys else None
        title = next((str(_load(p, lambda k=k: data[k])) for k in TITLE_KEYS if k in keys), None)
    return array, fps, title
