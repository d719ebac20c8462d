"""Binary glTF 2.0 (.glb) files: a small writer (`GlbBuilder`, `pack_glb`, `write_glb`) and a reader for tests.

A .glb is a 12-byte header, a JSON chunk and an optional BIN chunk (glTF 2.0 specification, section "GLB File
Format Specification"). The JSON describes the scene; buffer views are byte ranges of the BIN chunk and
accessors type them (component type, element type, count). Everything is little-endian.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from motionlcm.io.atomic import write_bytes_atomic

__all__ = [
    "ARRAY_BUFFER",
    "ELEMENT_ARRAY_BUFFER",
    "GlbBuilder",
    "GlbError",
    "pack_glb",
    "read_accessor",
    "read_glb",
    "write_glb",
]

# Constants of the glTF 2.0 specification (https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html).
GLB_MAGIC = 0x46546C67  # "glTF" read as a little-endian uint32
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"
ARRAY_BUFFER = 34962  # bufferView.target of vertex attributes
ELEMENT_ARRAY_BUFFER = 34963  # bufferView.target of vertex indices

# accessor.componentType <-> numpy dtype (little-endian)
COMPONENT_TYPES = {
    5120: np.dtype("<i1"),  # BYTE
    5121: np.dtype("<u1"),  # UNSIGNED_BYTE
    5122: np.dtype("<i2"),  # SHORT
    5123: np.dtype("<u2"),  # UNSIGNED_SHORT
    5125: np.dtype("<u4"),  # UNSIGNED_INT
    5126: np.dtype("<f4"),  # FLOAT
}
_COMPONENT_OF_DTYPE = {dtype: code for code, dtype in COMPONENT_TYPES.items()}

# accessor.type -> element shape. MAT2/MAT3 are left out: with 1- and 2-byte components their columns are
# padded to 4 bytes, which this writer does not do.
ELEMENT_SHAPES = {"SCALAR": (), "VEC2": (2,), "VEC3": (3,), "VEC4": (4,), "MAT4": (4, 4)}


class GlbError(ValueError):
    """A malformed .glb file (bad header, chunk or accessor)."""


# ----------------------------------------------------------------------------- container


def _padded(data: bytes, fill: bytes) -> bytes:
    """`data` followed by `fill` bytes up to a multiple of 4 (chunks start and end 4-byte aligned)."""
    return data + fill * (-len(data) % 4)


def pack_glb(gltf: dict[str, Any], binary: bytes = b"") -> bytes:
    """The .glb file of a glTF JSON document and its binary buffer.

    The JSON chunk is padded with spaces, the BIN chunk with zeros, both to 4 bytes; the BIN chunk is left
    out when `binary` is empty. NaN and infinities are refused (they are not JSON).
    """
    try:
        text = json.dumps(gltf, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        raise ValueError(f"glTF JSON must not contain NaN or infinity ({error})") from None
    chunks = [(CHUNK_JSON, _padded(text.encode("utf-8"), b" "))]
    if binary:
        chunks.append((CHUNK_BIN, _padded(bytes(binary), b"\0")))
    body = b"".join(struct.pack("<II", len(data), kind) + data for kind, data in chunks)
    return struct.pack("<III", GLB_MAGIC, GLB_VERSION, 12 + len(body)) + body


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a .glb file into its JSON document and BIN chunk (b"" when there is none); GlbError if malformed."""
    if len(data) < 12:
        raise GlbError(f"a .glb file has a 12-byte header; got {len(data)} bytes")
    magic, version, length = struct.unpack_from("<III", data)
    if magic != GLB_MAGIC:
        raise GlbError(f"not a .glb file: magic {data[:4]!r}, expected b'glTF'")
    if version != GLB_VERSION:
        raise GlbError(f"glTF container version {version}, expected {GLB_VERSION}")
    if length != len(data):
        raise GlbError(f"header says {length} bytes, file has {len(data)}")
    chunks = _read_chunks(data)
    if not chunks or chunks[0][0] != CHUNK_JSON:
        raise GlbError("the first chunk must be the JSON chunk")
    gltf = json.loads(chunks[0][1].decode("utf-8"))
    binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == CHUNK_BIN else b""
    return gltf, binary


def _read_chunks(data: bytes) -> list[tuple[int, bytes]]:
    chunks, offset = [], 12
    while offset < len(data):
        if offset + 8 > len(data):
            raise GlbError(f"truncated chunk header at byte {offset}")
        size, kind = struct.unpack_from("<II", data, offset)
        if size % 4 or offset + 8 + size > len(data):
            raise GlbError(f"chunk at byte {offset} has length {size}: not a multiple of 4 or past the end")
        chunks.append((kind, data[offset + 8 : offset + 8 + size]))
        offset += 8 + size
    return chunks


def write_glb(path: str | Path, data: bytes) -> Path:
    """Write a .glb file's bytes to `path` atomically (a temporary file, then a rename)."""
    if not isinstance(data, (bytes, bytearray)) or data[:4] != b"glTF":
        raise ValueError("write_glb expects the bytes of a .glb file (they start with b'glTF')")
    return write_bytes_atomic(path, lambda handle: handle.write(data))


# ----------------------------------------------------------------------------- writer


def _bounds(values: np.ndarray) -> tuple[list, list]:
    """Per-component min and max (accessor.min/max), exactly the stored values (float32 stays float32)."""
    flat = values.reshape(len(values), -1)
    return flat.min(axis=0).tolist(), flat.max(axis=0).tolist()


class GlbBuilder:
    """Collects the JSON document and the binary buffer of one glTF asset; `glb()` packs them.

    Objects (nodes, meshes, ...) are appended with `add(kind, item)`, which returns their index. Arrays go
    into the buffer with `add_accessor`: one buffer view per accessor, each starting 4-byte aligned.
    """

    def __init__(self, generator: str = "motionlcm") -> None:
        self.gltf: dict[str, Any] = {"asset": {"version": "2.0", "generator": generator}}
        self.binary = bytearray()

    def add(self, kind: str, item: dict[str, Any]) -> int:
        """Append `item` to the top-level array `kind` ("nodes", "meshes", ...); returns its index."""
        items = self.gltf.setdefault(kind, [])
        items.append(item)
        return len(items) - 1

    def add_buffer_view(self, data: bytes, target: int | None = None) -> int:
        self.binary += b"\0" * (-len(self.binary) % 4)
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.binary), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.binary += data
        return self.add("bufferViews", view)

    def add_accessor(
        self, values: Any, element: str, *, target: int | None = None, bounds: bool = False, normalized: bool = False
    ) -> int:
        """Store `values` and describe them by an accessor; returns the accessor's index.

        Args:
            values: (count, *shape) array whose dtype is one of COMPONENT_TYPES (e.g. float32, uint16);
                MAT4 elements are (4, 4) matrices as written in math (they are stored column-major).
            element: "SCALAR", "VEC2", "VEC3", "VEC4" or "MAT4".
            target: ARRAY_BUFFER for vertex attributes, ELEMENT_ARRAY_BUFFER for indices, None otherwise.
            bounds: write accessor.min/max (required for POSITION and animation sampler inputs).
            normalized: integers stand for values in [0, 1] or [-1, 1].
        """
        array = np.asarray(values)
        shape = ELEMENT_SHAPES.get(element)
        if shape is None:
            raise ValueError(f"element type must be one of {', '.join(ELEMENT_SHAPES)}, got {element!r}")
        if array.ndim != 1 + len(shape) or array.shape[1:] != shape or len(array) < 1:
            raise ValueError(
                f"{element} values must have shape (count >= 1, {', '.join(map(str, shape))}), got {array.shape}"
            )
        code = _COMPONENT_OF_DTYPE.get(array.dtype.newbyteorder("<"))
        if code is None:
            raise ValueError(
                f"component dtype must be one of {sorted(map(str, _COMPONENT_OF_DTYPE))}, got {array.dtype}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{element} values contain NaN or infinity")
        stored = np.swapaxes(array, -1, -2) if element == "MAT4" else array  # column-major matrices
        view = self.add_buffer_view(np.ascontiguousarray(stored, dtype=COMPONENT_TYPES[code]).tobytes(), target)
        accessor: dict[str, Any] = {"bufferView": view, "componentType": code, "count": len(array), "type": element}
        if normalized:
            accessor["normalized"] = True
        if bounds:
            accessor["min"], accessor["max"] = _bounds(stored)
        return self.add("accessors", accessor)

    def glb(self) -> bytes:
        """The .glb file (the buffer's byteLength is its unpadded length, as the specification allows)."""
        gltf = dict(self.gltf)
        if self.binary:
            gltf["buffers"] = [{"byteLength": len(self.binary)}]
        return pack_glb(gltf, bytes(self.binary))


# ----------------------------------------------------------------------------- reader


def read_accessor(gltf: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    """The values of accessor `index` as a (count, *shape) array (MAT4 as math (4, 4) matrices).

    Handles byteStride; sparse accessors and accessors without a buffer view are not supported.
    """
    accessor = gltf["accessors"][index]
    if "sparse" in accessor or "bufferView" not in accessor:
        raise GlbError(f"accessor {index}: sparse or view-less accessors are not supported")
    view = gltf["bufferViews"][accessor["bufferView"]]
    dtype = COMPONENT_TYPES[accessor["componentType"]]
    shape = ELEMENT_SHAPES[accessor["type"]]
    count, size = accessor["count"], int(np.prod(shape, dtype=np.int64))
    stride = view.get("byteStride", size * dtype.itemsize)
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    end = start + stride * (count - 1) + size * dtype.itemsize
    if end > view.get("byteOffset", 0) + view["byteLength"] or end > len(binary):
        raise GlbError(f"accessor {index} reads past the end of its buffer view")
    rows = np.ndarray((count, size), dtype, buffer=binary, offset=start, strides=(stride, dtype.itemsize))
    values = rows.reshape((count, *shape)).copy()
    return np.swapaxes(values, -1, -2) if accessor["type"] == "MAT4" else values
