"""The studio's HTTP API as plain functions: requests checked field by field (`ApiError` names the field), then
generation and export over a loaded pipeline. No sockets here (server.py); docs/studio.md documents the API.

    POST /api/generate  {"prompt": str, "seconds": float, "steps": int, "guidance": float|null, "seed": int|null}
        -> {"joints": [[[x, y, z] * 22] * T], "fps": 20, "seed": int, "steps", "guidance", "frames", "ms": {...}}
    POST /api/export    {"joints": [[[x, y, z] * 22] * T], "fps": float, "format": "bvh"|"npy"|"json",
                         "target_fps": float|null, "prompt": str|null}  -> the file's bytes
    GET  /api/health    -> {"status": "ok", "model", "kind", "backend", "queue"}
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_BODY = 1 << 20  # bytes of a request body (issue 16: "a body over 1 MB" is refused)
MAX_PROMPT = 500  # characters
MAX_SEED = 2**62 - 1  # as `motionlcm generate --seed`
MIN_SECONDS, MAX_SECONDS = 0.5, 9.8  # 10 frames .. HumanML3D's longest motion (196 frames at 20 fps)
EXPORT_FORMATS = {"bvh": "text/plain; charset=utf-8", "npy": "application/octet-stream", "json": "application/json"}


class ApiError(ValueError):
    """A refused request: HTTP `status` and a message that names the field."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field = status, field

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


def parse_json(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object (size checked by the server before reading)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ApiError(400, None, f"body: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise ApiError(400, None, "body: must be a JSON object")
    return data


def _check_fields(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(400, unknown[0], f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _number(data: dict[str, Any], name: str, default: Any, low: float, high: float, optional: bool = False) -> Any:
    value = data.get(name, default)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(422, name, f"{name}: must be a finite number, got {json.dumps(value)}")
    if not low <= value <= high:
        raise ApiError(422, name, f"{name}: must lie in {low:g}..{high:g}, got {value:g}")
    return float(value)


def _integer(data: dict[str, Any], name: str, default: Any, low: int, high: int, optional: bool = False) -> Any:
    value = data.get(name, default)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, name, f"{name}: must be an integer, got {json.dumps(value)}")
    if not low <= value <= high:
        raise ApiError(422, name, f"{name}: must lie in {low}..{high}, got {value}")
    return int(value)


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    seconds: float = 4.0
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> GenerateRequest:
        _check_fields(data, {"prompt", "seconds", "steps", "guidance", "seed"})
        prompt = data.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(422, "prompt", f"prompt: must be a string, got {json.dumps(prompt)}")
        prompt = " ".join(prompt.split())
        if not prompt:
            raise ApiError(422, "prompt", "prompt: empty")
        if len(prompt) > MAX_PROMPT:
            raise ApiError(422, "prompt", f"prompt: at most {MAX_PROMPT} characters, got {len(prompt)}")
        return cls(
            prompt=prompt,
            seconds=_number(data, "seconds", 4.0, MIN_SECONDS, MAX_SECONDS),
            steps=_integer(data, "steps", None, 1, 50, optional=True),
            guidance=_number(data, "guidance", None, 0.0, 30.0, optional=True),
            seed=_integer(data, "seed", None, 0, MAX_SEED, optional=True),
        )


def generate(pipe: Any, request: GenerateRequest) -> dict[str, Any]:
    """One motion for the request, as the page draws it (joints rounded to 0.1 mm)."""
    start = time.perf_counter()
    try:
        steps, guidance = pipe.resolve_sampling(request.steps, request.guidance)
        if pipe.kind == "student" and steps not in _student_steps(pipe):
            raise ValueError(f"--steps: this student samples with {sorted(_student_steps(pipe))} steps")
    except ValueError as err:
        field = "steps" if "steps" in str(err) else "guidance"
        raise ApiError(422, field, f"{field}: {str(err).split(': ', 1)[-1]}") from None
    seed = request.seed if request.seed is not None else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
    motion = pipe(request.prompt, seconds=request.seconds, steps=steps, guidance=guidance, seed=seed)[0]
    generated = time.perf_counter()
    joints = np.round(motion.joints.astype(np.float64), 4).tolist()
    return {
        "prompt": request.prompt,
        "joints": joints,
        "fps": motion.fps,
        "frames": len(joints),
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
        "ms": {"generate": (generated - start) * 1000.0, "serialise": (time.perf_counter() - generated) * 1000.0},
    }


def _student_steps(pipe: Any) -> set[int]:
    """Step counts a student samples with: its schedule's map (V2), else any (V1's grid)."""
    step_map = pipe.scheduler.config.get("timesteps_step_map") if hasattr(pipe.scheduler, "config") else None
    return set(step_map) if step_map else set(range(1, 51))


def parse_joints(value: Any, name: str = "joints") -> np.ndarray:
    """(T, 22, 3) finite metres from nested lists; at most 10,000 frames (the body limit bounds it anyway)."""
    try:
        joints = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ApiError(422, name, f"{name}: must be [[[x, y, z] * 22] * frames] numbers") from None
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or not 2 <= joints.shape[0] <= 10_000:
        raise ApiError(422, name, f"{name}: must have shape (frames >= 2, 22, 3), got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ApiError(422, name, f"{name}: contains NaN or infinite values")
    return joints.astype(np.float32)


def export(data: dict[str, Any]) -> tuple[bytes, str, str]:
    """(file bytes, content type, file name) of the given joints as BVH (22 SMPL joints, centimetres, solved
    rotations; docs/bvh-export.md), an .npy array, or a JSON settings record."""
    from motionlcm.export.bvh_export import check_output_frames, joints_to_bvh
    from motionlcm.io.bvh import format_bvh

    _check_fields(data, {"joints", "fps", "format", "target_fps", "prompt", "settings"})
    fmt = data.get("format", "bvh")
    if fmt not in EXPORT_FORMATS:
        raise ApiError(422, "format", f"format: must be one of {', '.join(EXPORT_FORMATS)}, got {json.dumps(fmt)}")
    joints = parse_joints(data.get("joints"))
    fps = _number(data, "fps", 20.0, 1.0, 1000.0)
    target = _number(data, "target_fps", None, 1.0, 1000.0, optional=True)
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, joints)
        return buffer.getvalue(), EXPORT_FORMATS[fmt], "motion.npy"
    if fmt == "json":
        settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        record = {"prompt": data.get("prompt"), "fps": fps, "frames": len(joints), **settings}
        return json.dumps(record, indent=1).encode(), EXPORT_FORMATS[fmt], "motion.json"
    try:
        check_output_frames(len(joints), fps, target, where="joints")
    except ValueError as err:
        raise ApiError(422, "target_fps", str(err)) from None
    clip = joints_to_bvh(joints, fps=fps, target_fps=target)
    return format_bvh(clip).encode("utf-8"), EXPORT_FORMATS[fmt], "motion.bvh"


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "motionlcm studio", "version": "1", "description": "docs/studio.md"},
    "paths": {
        "/api/generate": {
            "post": {
                "summary": "Text to one motion (joints in metres, y up, 20 fps)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["prompt"],
                                "additionalProperties": False,
                                "properties": {
                                    "prompt": {"type": "string", "maxLength": MAX_PROMPT},
                                    "seconds": {
                                        "type": "number",
                                        "minimum": MIN_SECONDS,
                                        "maximum": MAX_SECONDS,
                                        "default": 4,
                                    },
                                    "steps": {"type": "integer", "nullable": True},
                                    "guidance": {"type": "number", "nullable": True},
                                    "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED, "nullable": True},
                                },
                            }
                        }
                    },
                },  # fmt: skip
                "responses": {
                    "200": {"description": "joints, fps, seed, steps, guidance, frames, ms"},
                    "4XX": {"description": "{error, field}"},
                    "503": {"description": "busy: the queue is full, try again"},
                },  # fmt: skip
            }
        },
        "/api/export": {
            "post": {
                "summary": "Joints to a BVH, NPY or JSON file",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["joints"],
                                "additionalProperties": False,
                                "properties": {
                                    "joints": {"type": "array"},
                                    "fps": {"type": "number", "default": 20},
                                    "format": {"type": "string", "enum": list(EXPORT_FORMATS), "default": "bvh"},
                                    "target_fps": {"type": "number", "nullable": True},
                                    "prompt": {"type": "string"},
                                    "settings": {"type": "object"},
                                },
                            }
                        }
                    },
                },  # fmt: skip
                "responses": {"200": {"description": "the file"}, "4XX": {"description": "{error, field}"}},
            }
        },
        "/api/health": {
            "get": {"summary": "status, model, backend, queue", "responses": {"200": {"description": "ok"}}}
        },
    },
}
