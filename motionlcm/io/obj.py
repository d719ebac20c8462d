"""Wavefront OBJ files: a mesh per frame (`write_obj_sequence`), as 3-D tools import a mesh animation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from motionlcm.io.atomic import write_bytes_atomic, write_folder_atomic


def _obj_text(vertices: np.ndarray, face_lines: str, frame: int) -> bytes:
    head = f"# motionlcm SMPL mesh, frame {frame}: metres, y up\n"
    verts = ("v %.6f %.6f %.6f\n" * len(vertices)) % tuple(vertices.ravel().tolist())
    return (head + verts + face_lines).encode("ascii")


def write_obj_sequence(folder: str | Path, vertices: Any, faces: Any, force: bool = False) -> list[Path]:
    """One Wavefront OBJ per frame, `frame_00000.obj`, ... in a new `folder` (vertices (T, V, 3) metres,
    faces (F, 3) 0-based indices).

    The folder is built beside its final name and renamed into place whole, each file written atomically:
    it never holds a partial or a stale frame. An existing `folder` is a ValueError; with `force` it is
    replaced, but only if it holds nothing but an earlier sequence's `frame_*.obj` files.
    """
    folder = Path(folder)
    verts = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(faces)
    if verts.ndim != 3 or verts.shape[2] != 3 or verts.shape[0] < 1 or verts.shape[1] < 1:
        raise ValueError(f"vertices: expected shape (T, V, 3) with T, V >= 1, got {verts.shape}")
    if not np.isfinite(verts).all():
        raise ValueError("vertices: NaN or inf")
    if tris.ndim != 2 or tris.shape[1] != 3 or len(tris) < 1 or not np.issubdtype(tris.dtype, np.integer):
        raise ValueError(f"faces: expected an integer array of shape (F, 3), got {tris.shape} {tris.dtype}")
    if tris.min() < 0 or tris.max() >= verts.shape[1]:
        raise ValueError(f"faces: vertex indices must be in 0..{verts.shape[1] - 1}")
    if folder.exists() or folder.is_symlink():
        if not force:
            raise ValueError(f"{folder}: exists; pass --force to overwrite")
        if folder.is_symlink() or not folder.is_dir():
            raise ValueError(f"{folder}: exists and is not a folder; refusing to replace it")
        other = [p.name for p in folder.iterdir() if not (p.name.startswith("frame_") and p.suffix == ".obj")]
        if other:
            raise ValueError(f"{folder}: holds {other[0]!r}, not only an OBJ sequence; refusing to replace it")
    face_lines = ("f %d %d %d\n" * len(tris)) % tuple((tris + 1).ravel().tolist())
    names = [f"frame_{t:05d}.obj" for t in range(len(verts))]

    def write(tmp: Path) -> None:
        for t, name in enumerate(names):
            text = _obj_text(verts[t], face_lines, t)
            write_bytes_atomic(tmp / name, lambda handle, text=text: handle.write(text))

    write_folder_atomic(folder, write)
    return [folder / name for name in names]
