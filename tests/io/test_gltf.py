"""Tests for motionlcm.io.gltf: the .glb container (header, chunks, padding), accessors, the reader, errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from motionlcm.io.bvh import read_bvh
from motionlcm.io.gltf import (
    ARRAY_BUFFER,
    ELEMENT_ARRAY_BUFFER,
    GlbBuilder,
    GlbError,
    pack_glb,
    read_accessor,
    read_glb,
    write_glb,
)


@pytest.fixture(scope="module")
def real_motion(bn_fixture_dir: Path) -> np.ndarray:
    """World joint positions (F, 22, 3) in metres of a real Bandai-Namco clip (a run, cm in the file)."""
    positions, _ = read_bvh(bn_fixture_dir / "dataset-2_run_active_001.bvh").forward_kinematics()
    return positions * 0.01


def chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each chunk, read with struct alone."""
    out, offset = [], 12
    while offset < len(data):
        size, kind = struct.unpack_from("<II", data, offset)
        out.append((kind, data[offset + 8 : offset + 8 + size]))
        offset += 8 + size
    return out


# ----------------------------------------------------------------------------- container


@pytest.mark.parametrize("binary", [b"", b"\x01", b"\x01\x02\x03\x04", bytes(range(7))])
def test_container_layout_and_padding(binary: bytes) -> None:
    gltf = {"asset": {"version": "2.0"}, "extras": {"note": "é"}}  # non-ASCII: lengths are in bytes
    data = pack_glb(gltf, binary)
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data)) and data[:4] == b"glTF"
    parts = chunks(data)
    assert [kind for kind, _ in parts] == ([0x4E4F534A, 0x004E4942] if binary else [0x4E4F534A])
    assert all(len(payload) % 4 == 0 for _, payload in parts) and len(data) % 4 == 0
    text = parts[0][1]
    assert text.rstrip(b" ") == json.dumps(gltf, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert len(text) - len(text.rstrip(b" ")) < 4  # padded with up to 3 spaces
    if binary:
        payload = parts[1][1]
        assert payload[: len(binary)] == binary and payload[len(binary) :] == b"\0" * (len(payload) - len(binary))
        assert len(payload) - len(binary) < 4  # padded with up to 3 zeros
    assert read_glb(data) == (gltf, parts[1][1] if binary else b"")


def test_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        pack_glb({"asset": {"version": "2.0"}, "extras": {"x": float("nan")}})


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:10], "12-byte header"),
        (lambda d: b"glTX" + d[4:], "not a .glb file"),
        (lambda d: d[:4] + struct.pack("<I", 1) + d[8:], "version 1"),
        (lambda d: d[:8] + struct.pack("<I", len(d) + 4) + d[12:], "header says"),
        (lambda d: d[:-4], "header says"),
        (lambda d: d[:8] + struct.pack("<I", len(d) + 4) + d[12:] + b"\0\0\0\0", "truncated chunk header"),
        (lambda d: d[:12] + struct.pack("<I", 10**6) + d[16:], "past the end"),
        (lambda d: d[:16] + struct.pack("<I", 0x004E4942) + d[20:], "first chunk must be the JSON chunk"),
    ],
    ids=["short", "magic", "version", "length-long", "length-short", "chunk-header", "chunk-size", "chunk-order"],
)
def test_reader_rejects_malformed_files(mutate, message: str) -> None:
    data = pack_glb({"asset": {"version": "2.0"}}, b"\1\2\3\4")
    with pytest.raises(GlbError, match=message):
        read_glb(mutate(data))


def test_write_glb_is_atomic_and_checks_the_bytes(tmp_path: Path) -> None:
    data = pack_glb({"asset": {"version": "2.0"}})
    path = write_glb(tmp_path / "a" / "clip.glb", data)
    assert path.read_bytes() == data
    with pytest.raises(ValueError, match="b'glTF'"):
        write_glb(tmp_path / "bad.glb", b'{"asset": {}}')
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "clip.glb"]  # no partial file left


# ----------------------------------------------------------------------------- accessors


def test_accessors_round_trip_real_data_with_types_alignment_and_bounds(real_motion: np.ndarray) -> None:
    builder = GlbBuilder()
    positions = real_motion.reshape(-1, 3).astype(np.float32)
    times = (np.arange(len(real_motion)) / 30).astype(np.float32)
    joints = (np.arange(len(positions) * 4) % 22).astype(np.uint8).reshape(-1, 4)
    indices = np.arange(len(positions) - 1, -1, -1).astype(np.uint16)
    odd = np.array([1, 2, 3], dtype=np.uint16)  # 6 bytes: the next view must start 2 bytes later, aligned
    matrices = np.broadcast_to(np.eye(4, dtype=np.float32), (22, 4, 4)).copy()
    matrices[:, :3, 3] = -real_motion[0]
    made = {
        "positions": builder.add_accessor(positions, "VEC3", target=ARRAY_BUFFER, bounds=True),
        "times": builder.add_accessor(times, "SCALAR", bounds=True),
        "joints": builder.add_accessor(joints, "VEC4", target=ARRAY_BUFFER),
        "odd": builder.add_accessor(odd, "SCALAR", target=ELEMENT_ARRAY_BUFFER),
        "indices": builder.add_accessor(indices, "SCALAR", target=ELEMENT_ARRAY_BUFFER),
        "matrices": builder.add_accessor(matrices, "MAT4"),
    }
    gltf, binary = read_glb(builder.glb())
    assert gltf["asset"] == {"version": "2.0", "generator": "motionlcm"}
    assert gltf["buffers"] == [{"byteLength": len(builder.binary)}] and len(binary) == len(builder.binary) + (
        -len(builder.binary) % 4
    )
    expected = {  # name: (componentType, type, target)
        "positions": (5126, "VEC3", 34962),
        "times": (5126, "SCALAR", None),
        "joints": (5121, "VEC4", 34962),
        "odd": (5123, "SCALAR", 34963),
        "indices": (5123, "SCALAR", 34963),
        "matrices": (5126, "MAT4", None),
    }
    for name, index in made.items():
        accessor = gltf["accessors"][index]
        view = gltf["bufferViews"][accessor["bufferView"]]
        assert (accessor["componentType"], accessor["type"], view.get("target")) == expected[name]
        assert view["byteOffset"] % 4 == 0 and view["buffer"] == 0
    values = {name: read_accessor(gltf, binary, index) for name, index in made.items()}
    for name, original in [("positions", positions), ("times", times), ("joints", joints), ("indices", indices)]:
        assert values[name].dtype == original.dtype and np.array_equal(values[name], original), name
    assert gltf["accessors"][made["positions"]]["count"] == len(positions)
    assert np.array_equal(values["matrices"], matrices)
    # MAT4 is column-major: the translation is in elements 12..14 of each matrix
    raw = np.frombuffer(binary, np.float32, 32, gltf["bufferViews"][-1]["byteOffset"])  # matrices 0 and 1
    assert np.array_equal(raw[16 + 12 : 16 + 15], -real_motion[0, 1].astype(np.float32)) and raw[16 + 15] == 1
    # min/max are exactly the stored float32 values, per component (required for POSITION and sampler inputs)
    bounds = gltf["accessors"][made["positions"]]
    assert bounds["min"] == positions.min(axis=0).tolist() and bounds["max"] == positions.max(axis=0).tolist()
    assert np.array_equal(np.float32(bounds["max"]), positions.max(axis=0))
    assert gltf["accessors"][made["times"]]["max"] == [float(times[-1])]
    assert "min" not in gltf["accessors"][made["joints"]]


def test_reader_follows_byte_stride(real_motion: np.ndarray) -> None:
    """An interleaved view (position + normal per vertex, 24-byte stride), as other writers make."""
    positions = real_motion[0].astype(np.float32)
    normals = np.tile(np.float32([0, 1, 0]), (len(positions), 1))
    data = np.concatenate([positions, normals], axis=1).tobytes()
    gltf = {
        "asset": {"version": "2.0"},
        "bufferViews": [{"buffer": 0, "byteLength": len(data), "byteStride": 24}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(positions), "type": "VEC3"},
            {"bufferView": 0, "byteOffset": 12, "componentType": 5126, "count": len(positions), "type": "VEC3"},
            {"bufferView": 0, "byteOffset": 12, "componentType": 5126, "count": len(positions) + 1, "type": "VEC3"},
        ],
    }
    assert np.array_equal(read_accessor(gltf, data, 0), positions)
    assert np.array_equal(read_accessor(gltf, data, 1), normals)
    with pytest.raises(GlbError, match="past the end"):
        read_accessor(gltf, data, 2)


@pytest.mark.parametrize(
    "values, element, message",
    [
        (np.zeros((4, 3)), "VEC3", "component dtype"),  # float64 is not a glTF component type
        (np.zeros((4, 3), np.float32), "VEC4", "shape"),
        (np.zeros((0, 3), np.float32), "VEC3", "count >= 1"),
        (np.zeros((2, 3, 3), np.float32), "MAT3", "element type"),
        (np.array([[0, np.nan, 0]], np.float32), "VEC3", "NaN"),
        (np.array([np.inf], np.float32), "SCALAR", "NaN or infinity"),
    ],
)
def test_builder_refuses_what_glTF_cannot_hold(values: np.ndarray, element: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GlbBuilder().add_accessor(values, element)


def test_objects_get_consecutive_indices() -> None:
    builder = GlbBuilder("tester")
    assert [builder.add("nodes", {"name": n}) for n in "abc"] == [0, 1, 2]
    assert builder.add("meshes", {"primitives": []}) == 0
    gltf, binary = read_glb(builder.glb())
    assert binary == b"" and "buffers" not in gltf and gltf["asset"]["generator"] == "tester"
    assert [n["name"] for n in gltf["nodes"]] == ["a", "b", "c"]
