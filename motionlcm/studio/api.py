"""The studio's HTTP API as plain functions: requests checked field by field (`ApiError` names the field), then
generation and export over a loaded pipeline. No sockets here (server.py); docs/studio.md documents the API.

    POST /api/generate  {"prompt": str, "seconds": float, "steps": int, "guidance": float|null, "seed": int|null,
                         "trajectory": [[time_s, x, z], ...]|null, "keyframes": [{time, joint, position}]|null}
        -> {"joints": [[[x, y, z] * 22] * T], "fps": 20, "seed": int, "steps", "guidance", "frames", "ms": {...}}
    POST /api/timeline  {"segments": [{"prompt": str, "seconds": float}, ...], "seed": int|null}
        -> as /api/generate, one continuous take, plus "segments": [{"start_frame", "prompt"}]
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

from motionlcm.data.skeleton import FPS

MAX_BODY = 1 << 20  # bytes of a request body (issue 16: "a body over 1 MB" is refused)
MAX_PROMPT = 500  # characters
MAX_SEED = 2**62 - 1  # as `motionlcm generate --seed`
MIN_SECONDS, MAX_SECONDS = 0.5, 9.8  # 10 frames .. HumanML3D's longest motion (196 frames at 20 fps)
EXPORT_FORMATS = {"bvh": "text/plain; charset=utf-8", "npy": "application/octet-stream", "json": "application/json",
                  "mp4": "video/mp4", "gif": "image/gif"}  # fmt: skip
MAX_MOVIE_FRAMES = 400  # a rendered movie takes seconds; longer motions are refused rather than queued


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


MAX_PATH_ROWS = 2000


def parse_trajectory(value: Any) -> tuple[tuple[float, float, float], ...] | None:
    """[[time_s, x, z], ...] (the pelvis on the floor, metres, the motion's own frame) as checked rows."""
    from motionlcm.data.hints import check_trajectory_row

    if value is None:
        return None
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_PATH_ROWS:
        raise ApiError(422, "trajectory", f"trajectory: a list of 2..{MAX_PATH_ROWS} [time_s, x, z] rows")
    rows: list[tuple[float, float, float]] = []
    for i, row in enumerate(value):
        ok = isinstance(row, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
        try:
            if not ok:
                raise ValueError(f"trajectory[{i}]: expected three numbers time_s,x,z")
            check_trajectory_row(tuple(float(v) for v in row), rows[-1] if rows else None, f"trajectory[{i}]")
        except ValueError as err:
            raise ApiError(422, "trajectory", str(err)) from None
        rows.append((float(row[0]), float(row[1]), float(row[2])))
    return tuple(rows)


MAX_KEYFRAMES = 200


def parse_keyframes(value: Any) -> tuple[str, ...] | None:
    """[{"time": s, "joint": name, "position": [x, y, z]}, ...] as `--keyframe` specs (checked against the motion's
    length when the hints are made)."""
    from motionlcm.data.skeleton import JOINT_NAMES

    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_KEYFRAMES:
        raise ApiError(422, "keyframes", f"keyframes: a list of 1..{MAX_KEYFRAMES} {{time, joint, position}} targets")
    specs = []
    for i, key in enumerate(value):
        where = f"keyframes[{i}]"
        if not isinstance(key, dict) or set(key) != {"time", "joint", "position"}:
            raise ApiError(422, "keyframes", f"{where}: must be {{time, joint, position}}")
        time_s, joint, position = key["time"], key["joint"], key["position"]
        numbers = [time_s, *(position if isinstance(position, list) else [])]
        if (
            not isinstance(position, list)
            or len(position) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)
        ):
            raise ApiError(422, "keyframes", f"{where}: time and position [x, y, z] must be finite numbers")  # fmt: skip
        if joint not in JOINT_NAMES:
            raise ApiError(422, "keyframes", f"{where}: joint {json.dumps(joint)} is not one of the 22 joints")
        specs.append(f"{float(time_s)!r}:{joint}:{','.join(repr(float(v)) for v in position)}")
    return tuple(specs)


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    seconds: float = 4.0
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    trajectory: tuple[tuple[float, float, float], ...] | None = None
    keyframes: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> GenerateRequest:
        _check_fields(data, {"prompt", "seconds", "steps", "guidance", "seed", "trajectory", "keyframes"})
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
            trajectory=parse_trajectory(data.get("trajectory")),
            keyframes=parse_keyframes(data.get("keyframes")),
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
    seed = _seed(request.seed)
    control = _control_hints(request)
    try:
        motion = pipe(request.prompt, seconds=request.seconds, steps=steps, guidance=guidance, seed=seed,
                      control=control)[0]  # fmt: skip
    except ValueError as err:  # with hints: no installed controller covers their joints
        if control is None:
            raise
        field = "keyframes" if request.keyframes is not None else "trajectory"
        raise ApiError(422, field, f"{field}: {err}") from None
    extra = {} if control is None else {"control": motion.settings.get("control")}
    if "prompt_read_as" in motion.settings:  # the model folder's prompt rewrites changed it (docs/captions.md)
        extra["prompt_read_as"] = motion.settings["prompt_read_as"]
    return _payload(motion, request.prompt, seed, start, steps=steps, guidance=guidance, **extra)


def _control_hints(request: GenerateRequest) -> Any:
    """The request's path and keyframes as one `Hints` at the motion's length, or None; bad ones are an
    `ApiError` naming their field."""
    from motionlcm.data.hints import hints_from_trajectory, keyframe_hints
    from motionlcm.pipeline import resolve_lengths

    if request.trajectory is None and request.keyframes is None:
        return None
    frames, hints = resolve_lengths(1, seconds=request.seconds)[0], None
    if request.trajectory is not None:
        try:
            hints = hints_from_trajectory(list(request.trajectory), frames, FPS, "trajectory")
        except ValueError as err:
            raise ApiError(422, "trajectory", str(err)) from None
    if request.keyframes is not None:
        try:
            hints = keyframe_hints(list(request.keyframes), frames, FPS, base=hints)
        except ValueError as err:
            raise ApiError(422, "keyframes", f"keyframes: {str(err).replace('--keyframe ', 'keyframe ')}") from None
    return hints


def _seed(seed: int | None) -> int:
    """The request's seed, or a fresh one (as `motionlcm generate` draws them)."""
    return seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)


def _payload(motion: Any, prompt: str, seed: int, start: float, **fields: Any) -> dict[str, Any]:
    """A motion as the page draws it: joints rounded to 0.1 mm, with the times of generating and serialising."""
    generated = time.perf_counter()
    joints = np.round(motion.joints.astype(np.float64), 4).tolist()
    return {
        **fields,
        "prompt": prompt,
        "joints": joints,
        "fps": motion.fps,
        "frames": len(joints),
        "seed": seed,
        "ms": {"generate": (generated - start) * 1000.0, "serialise": (time.perf_counter() - generated) * 1000.0},
    }


MAX_TAKE_SECONDS = 120.0  # a studio take; `motionlcm generate --timeline` makes longer ones
MAX_SEGMENTS = 30


@dataclass(frozen=True)
class TimelineRequest:
    segments: tuple[tuple[str, float], ...]
    seed: int | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TimelineRequest:
        _check_fields(data, {"segments", "seed"})
        blocks = data.get("segments")
        if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_SEGMENTS:
            raise ApiError(422, "segments", f"segments: a list of 1..{MAX_SEGMENTS} {{prompt, seconds}} blocks")
        segments = []
        for i, block in enumerate(blocks):
            where = f"segments[{i}]"
            if not isinstance(block, dict):
                raise ApiError(422, where, f"{where}: must be an object {{prompt, seconds}}")
            _check_fields(block, {"prompt", "seconds"})
            try:
                one = GenerateRequest.parse({"prompt": block.get("prompt"), "seconds": block.get("seconds", 3.0)})
            except ApiError as err:
                raise ApiError(err.status, f"{where}.{err.field}", f"{where}.{err}") from None
            segments.append((one.prompt, one.seconds))
        total = sum(seconds for _, seconds in segments)
        if total > MAX_TAKE_SECONDS:
            raise ApiError(422, "segments", f"segments: {total:g} s in all; the studio makes takes of at most "
                                            f"{MAX_TAKE_SECONDS:g} s")  # fmt: skip
        return cls(tuple(segments), _integer(data, "seed", None, 0, MAX_SEED, optional=True))


def timeline(pipe: Any, request: TimelineRequest) -> dict[str, Any]:
    """One continuous take of the segments (`MotionLCM.generate_timeline`), with each segment's start frame."""
    start, seed = time.perf_counter(), _seed(request.seed)
    try:
        motion = pipe.generate_timeline(list(request.segments), seed=seed)
    except ValueError as err:
        raise ApiError(422, "segments", f"segments: {err}") from None
    segments = [{"start_frame": int(frame), "prompt": text} for frame, text in motion.captions or []]
    return _payload(motion, " / ".join(prompt for prompt, _ in request.segments), seed, start, segments=segments)


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
    rotations; docs/bvh-export.md), an .npy array, a JSON settings record, or an MP4 / GIF stick-figure movie
    (render/; an .mp4 request gives a GIF when ffmpeg is missing), rendered in a temporary folder."""
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
    if fmt in ("mp4", "gif"):
        return _movie(joints, fps, fmt, data.get("prompt"))
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


def _movie(joints: np.ndarray, fps: float, fmt: str, prompt: Any) -> tuple[bytes, str, str]:
    import tempfile
    from pathlib import Path

    from motionlcm.motion import Motion

    if len(joints) > MAX_MOVIE_FRAMES:
        raise ApiError(422, "joints", f"joints: movies of at most {MAX_MOVIE_FRAMES} frames, got {len(joints)}")
    title = prompt if isinstance(prompt, str) else None
    with tempfile.TemporaryDirectory(prefix="motionlcm-studio-") as tmp:
        written = Motion(joints, fps, title).render(Path(tmp) / f"motion.{fmt}")
        kind = "gif" if written.suffix == ".gif" else fmt
        return written.read_bytes(), EXPORT_FORMATS[kind], f"motion.{kind}"


def _post(summary: str, required: list[str], properties: dict[str, Any], answer: str) -> dict[str, Any]:
    """An OpenAPI POST operation taking a closed JSON object."""
    schema = {"type": "object", "required": required, "additionalProperties": False, "properties": properties}
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": answer}, "4XX": {"description": "{error, field}"},
                          "503": {"description": "busy: the queue is full, try again"}},
        }
    }  # fmt: skip


_SEED = {"type": "integer", "minimum": 0, "maximum": MAX_SEED, "nullable": True}
_MODEL = {"type": "string", "description": "one of /api/health's models (default: the first)"}
_PROMPT = {"type": "string", "maxLength": MAX_PROMPT}


def _seconds(default: float) -> dict[str, Any]:
    return {"type": "number", "minimum": MIN_SECONDS, "maximum": MAX_SECONDS, "default": default}


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "motionlcm studio", "version": "1", "description": "docs/studio.md"},
    "paths": {
        "/api/generate": _post(
            "Text to one motion (joints in metres, y up, 20 fps), optionally steered by a path and keyframes",
            ["prompt"],
            {
                "prompt": _PROMPT,
                "seconds": _seconds(4),
                "steps": {"type": "integer", "nullable": True},
                "guidance": {"type": "number", "nullable": True},
                "seed": _SEED,
                "model": _MODEL,
                "trajectory": {
                    "type": "array",
                    "maxItems": MAX_PATH_ROWS,
                    "nullable": True,
                    "description": "pelvis path [[time_s, x, z], ...] on the floor (motion control)",
                    "items": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "number"}},
                },
                "keyframes": {
                    "type": "array",
                    "maxItems": MAX_KEYFRAMES,
                    "nullable": True,
                    "description": "joint targets [{time, joint, position: [x, y, z]}]",
                    "items": {"type": "object"},
                },
            },  # fmt: skip
            "joints, fps, seed, steps, guidance, frames, ms (and control)",
        ),
        "/api/timeline": _post(
            "Prompt blocks with durations to one continuous take (docs/timelines.md)",
            ["segments"],
            {
                "segments": {
                    "type": "array",
                    "maxItems": MAX_SEGMENTS,
                    "items": {
                        "type": "object",
                        "required": ["prompt"],
                        "additionalProperties": False,
                        "properties": {"prompt": _PROMPT, "seconds": _seconds(3)},
                    },
                },
                "seed": _SEED,
                "model": _MODEL,
            },  # fmt: skip
            "joints, fps, frames, seed, segments, ms",
        ),
        "/api/export": _post(
            "Joints to a BVH, NPY, JSON, MP4 or GIF file",
            ["joints"],
            {
                "joints": {"type": "array"},
                "fps": {"type": "number", "default": 20},
                "format": {"type": "string", "enum": list(EXPORT_FORMATS), "default": "bvh"},
                "target_fps": {"type": "number", "nullable": True},
                "prompt": {"type": "string"},
                "settings": {"type": "object"},
            },
            "the file",
        ),
        "/api/health": {
            "get": {"summary": "status, model, backend, queue", "responses": {"200": {"description": "ok"}}}
        },
    },
}
