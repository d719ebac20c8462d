"""Timelines and long motions: prompts with durations become one continuous take of any length.

A timeline is a list of `Segment`s ("walk forward" for 3 s, "turn left" for 2 s, ...). The take is built
piece by piece, and only the take's last frames are carried from one piece to the next, so the work and
the memory of a piece do not depend on how long the take already is:

- the first piece is generated from its prompt alone, unless the take starts from the user's own clip
  (`start`), whose frames stay exactly as given;
- every later piece continues the take (temporal control, `MotionLCM.continue_motion`): the take's last
  `context_frames(n)` frames are the prefix, which the model sees as hints and which `splice_prefix` keeps
  exactly, so the piece walks on from where the take stopped, without a jump in position or velocity;
- a segment longer than the model allows (`MAX_FRAMES` minus the prefix) is made of several pieces with the
  same prompt (`piece_lengths`).

`iter_pieces` is the one loop. `generate_timeline` gathers its pieces into one `Motion`; `stream` hands out
their frames one at a time and reads the next segment from its iterable only when the previous one has
been played out, so the next prompt may change until its segment starts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from motionlcm.data.continuation import PlanarFrame, check_prefix
from motionlcm.data.humanml3d import MAX_LENGTH as MAX_FRAMES
from motionlcm.data.skeleton import FPS
from motionlcm.motion import Motion

CONTEXT_FRAMES = 20  # 1 s at 20 fps: the most frames of the take a piece continues from
# temporal controllers are trained on prefixes of up to 25 % of the motion (docs/motion-control.md,
# `control.temporal_share` configs; MotionLCM's ECCV temporal setting): prefix k of a piece of k + n frames
# stays within it when k <= n / 3
PREFIX_SHARE = 0.25
MIN_CONTEXT = 2  # frames: the seam's velocity needs two (a one-frame start is continued from its pose alone)
MAX_SECONDS = 600.0  # default limit on a timeline's total length (10 minutes)
METHODS = ("controlnet", "clt", "both", "splice")


@dataclass(frozen=True)
class Segment:
    """One entry of a timeline: a prompt and how long it lasts (seconds, any length above one frame)."""

    prompt: str
    seconds: float

    @property
    def frames(self) -> int:
        return int(round(self.seconds * FPS))


def as_segment(value: Any, where: str) -> Segment:
    """A `Segment` from a `Segment` or a (prompt, seconds) pair, checked; errors name `where`."""
    if isinstance(value, Segment):
        prompt, seconds = value.prompt, value.seconds
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        prompt, seconds = value
    else:
        raise ValueError(f"{where}: expected (prompt, seconds), got {value!r}")
    if not isinstance(prompt, str) or not " ".join(prompt.split()):
        raise ValueError(f"{where}: empty prompt")
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: seconds must be a number, got {seconds!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{where}: seconds must be positive and finite, got {seconds:g}")
    segment = Segment(" ".join(prompt.split()), seconds)
    if segment.frames < 1:
        raise ValueError(f"{where}: {seconds:g} s is shorter than one frame ({1 / FPS:g} s)")
    return segment


def check_timeline(segments: Iterable[Any], max_seconds: float = MAX_SECONDS) -> list[Segment]:
    """Every entry as a checked `Segment`, and the total within `max_seconds`."""
    checked = [as_segment(s, f"segment {i}") for i, s in enumerate(segments)]
    if not checked:
        raise ValueError("timeline: no segments")
    total = sum(s.frames for s in checked) / FPS
    if total > max_seconds:
        raise ValueError(f"timeline: {total:g} s in all is over the maximum of {max_seconds:g} s")
    return checked


def context_frames(new_frames: int, available: int) -> int:
    """How many of the take's last frames (`available`) a piece adding `new_frames` continues from: at most
    CONTEXT_FRAMES, and a share of the piece the temporal controllers were trained on (PREFIX_SHARE)."""
    share = int(new_frames * PREFIX_SHARE / (1.0 - PREFIX_SHARE))
    return max(1, min(available, CONTEXT_FRAMES, max(MIN_CONTEXT, share)))


def piece_lengths(frames: int, max_frames: int, first: bool) -> list[int]:
    """New frames per piece of a `frames`-frame segment: as few pieces as fit, of nearly equal length (the
    first piece of a take without a start clip has no prefix and may use all `max_frames`)."""
    room = max_frames if first else max_frames - CONTEXT_FRAMES
    count = max(1, math.ceil(frames / room))
    base, extra = divmod(frames, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


@dataclass
class Piece:
    """What one piece added to the take: its new frames (in the take's world frame) and how it was made."""

    segment: int
    prompt: str
    start_frame: int  # index in the take of `joints[0]`
    joints: np.ndarray  # (n, 22, 3)
    features: np.ndarray  # (n, 263): the model's own features of these frames
    seed: int
    context: int  # frames of the take it continued from (0: generated from its prompt alone)
    seconds: float  # generation time
    prefix_err_m: float | None = None  # the model's own miss on the prefix (continue_motion's record)


def _splice_only(pipe: Any, prompt: str, tail: np.ndarray, frames: int, options: dict, hints: Any = None) -> Motion:
    """A continuation without temporal control: the prompt alone (steered by spatial `hints` after the prefix,
    `Hints` in the take's frame, when given), then `clean_continuation` (alignment and hand-over at the seam,
    warping onto the hints, feet locked after it) in the prefix's frame. For models without a controller
    trained on prefixes."""
    from motionlcm.data.cleanup import clean_continuation
    from motionlcm.data.features import FOOT_CONTACT
    from motionlcm.data.hints import Hints

    frame = PlanarFrame.of_pose(tail[0])
    local_hints = None
    if hints is not None:
        local_hints = Hints(np.where(hints.mask, frame.to_local(hints.values), 0.0).astype(np.float32), hints.mask)
    control = {} if local_hints is None else {"control": local_hints, "warp": False}
    motion = pipe(prompt, frames=frames, conform=False, foot_lock=False, **control, **options)[0]
    contacts = motion.features[:, FOOT_CONTACT]
    warp = None if local_hints is None else (local_hints.values, local_hints.mask)
    local = clean_continuation(frame.to_local(tail), np.asarray(motion.joints, np.float64), contacts, hints=warp)
    joints = frame.to_world(local).astype(np.float32)
    joints[: len(tail)] = tail
    return Motion(joints, FPS, prompt, motion.features, motion.settings)


def _piece_hints(control: Any, first: int, frames: int, given: int) -> Any:
    """The take's `Hints` for take frames [first, first + frames) (free past the hints' end), those before
    frame `given` (given frames: the prefix) dropped; None where nothing is controlled."""
    from motionlcm.data.hints import Hints

    if control is None or first >= control.num_frames:
        return None
    values = np.zeros((frames, *control.values.shape[1:]), np.float32)
    mask = np.zeros(values.shape, bool)
    part = slice(first, min(first + frames, control.num_frames))
    values[: part.stop - first] = control.values[part]
    mask[: part.stop - first] = control.mask[part]
    mask[: max(0, given - first)] = False
    return Hints(values, mask) if mask.any() else None


def _spatial(method: str) -> str:
    """The control method for spatial targets of a piece generated from its prompt alone."""
    return "controlnet" if method == "splice" else method


def check_take_control(control: Any, frames: int | None, start_frames: int) -> Any:
    """Take-level control as `Hints` of `frames` frames (any number for a stream: None) from an array
    (T, 22, 3) with NaN where free, or `Hints`; targets on the start clip's frames are refused (given)."""
    from motionlcm.data.hints import Hints, hints_from_array

    if control is None:
        return None
    hints = control if isinstance(control, Hints) else hints_from_array(control, "control")
    if frames is not None and hints.num_frames != frames:
        raise ValueError(f"control: hints have {hints.num_frames} frames, the take {frames}")
    if hints.mask[:start_frames].any():
        raise ValueError(f"control: targets on the start clip's first {start_frames} frames (they are given)")
    return hints


def resolve_method(pipe: Any, method: str | None) -> str:
    """`method`, checked; None picks "controlnet" when the model has a controller for prefixes of every joint,
    else "splice"."""
    if method is None:
        try:
            pipe.controller_for(set(range(22)), temporal=True)
            return "controlnet"
        except ValueError:
            return "splice"
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    return method


def iter_pieces(
    pipe: Any,
    segments: Iterable[Any],
    seed: int = 0,
    start: np.ndarray | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    method: str | None = None,
    control: Any = None,
) -> Iterator[Piece]:
    """Generate the take piece by piece (module docstring). Segment i's pieces use seeds seed + p, p counting
    pieces from 0; `segments` is read lazily, one entry when its first piece is due. `control`: `Hints` over
    the take's frames (start clip included, in its world frame; without a start clip, the frame of the first
    segment: its first pelvis on the origin, facing +z) steering every piece they reach (`check_take_control`)."""
    method = resolve_method(pipe, method)
    tail = None if start is None else check_prefix(start, "start")[-CONTEXT_FRAMES:]
    position = 0 if start is None else len(start)
    count = 0
    for index, entry in enumerate(segments):
        segment = as_segment(entry, f"segment {index}")
        for frames in piece_lengths(segment.frames, MAX_FRAMES, first=tail is None):
            options = {"seed": seed + count, "steps": steps, "guidance": guidance}
            began = time.perf_counter()
            context, record = 0, None
            if tail is None:
                hints = _piece_hints(control, position, frames, 0)
                steer = {} if hints is None else {"control": hints, "control_method": _spatial(method)}
                motion = pipe(segment.prompt, frames=frames, **steer, **options)[0]
                new, features = motion.joints, motion.features
            else:
                context = context_frames(frames, len(tail))
                prefix = tail[-context:].astype(np.float32)
                hints = _piece_hints(control, position - context, context + frames, position)
                if method == "splice":
                    motion = _splice_only(pipe, segment.prompt, prefix, context + frames, options, hints)
                else:
                    motion = pipe.continue_motion(
                        segment.prompt, prefix, frames=context + frames, control_method=method, control=hints,
                        **options,
                    )[0]  # fmt: skip
                    record = motion.settings["continuation"]["model_prefix_err_m"]
                new, features = motion.joints[context:], motion.features[context:]
            elapsed = time.perf_counter() - began
            new = np.asarray(new, np.float32)
            yield Piece(index, segment.prompt, position, new, np.asarray(features, np.float32), seed + count,
                        context, elapsed, record)  # fmt: skip
            tail = new[-CONTEXT_FRAMES:] if tail is None else np.concatenate([tail, new])[-CONTEXT_FRAMES:]
            position += len(new)
            count += 1


@dataclass
class StreamFrame:
    """One frame of a streamed take: its index in the take, the (22, 3) joints, the segment and its prompt."""

    index: int
    joints: np.ndarray
    segment: int
    prompt: str
    new_segment: bool = False  # the first frame of its segment
    piece: Piece | None = field(default=None, repr=False)  # on the first frame of each piece


def stream(pipe: Any, segments: Iterable[Any], **options: Any) -> Iterator[StreamFrame]:
    """Frames of the take as they are made (`iter_pieces` options; `control` may cover any number of the take's
    frames, those past its end are free). A start clip's frames come first."""
    start = options.get("start")
    start = None if start is None else check_prefix(start, "start").astype(np.float32)
    options["control"] = check_take_control(options.get("control"), None, 0 if start is None else len(start))
    index = 0
    if start is not None:
        for joints in start:
            yield StreamFrame(index, joints, -1, "")
            index += 1
    previous = None
    for piece in iter_pieces(pipe, segments, **options):
        for k, joints in enumerate(piece.joints):
            first = k == 0
            yield StreamFrame(index, joints, piece.segment, piece.prompt, first and piece.segment != previous,
                              piece if first else None)  # fmt: skip
            index += 1
        previous = piece.segment


def start_features(start: np.ndarray) -> np.ndarray:
    """(K, 263) features of a start clip's K frames, computed from its joints (HumanML3D's pipeline; the last
    frame repeated so that every given frame has a row)."""
    from motionlcm.data.features import joints_to_features

    padded = np.concatenate([start, start[-1:]]).astype(np.float64)
    return np.asarray(joints_to_features(padded), np.float32)


def generate_timeline(
    pipe: Any,
    segments: Iterable[Any],
    seed: int = 0,
    start: np.ndarray | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    method: str | None = None,
    max_seconds: float = MAX_SECONDS,
    control: Any = None,
) -> Motion:
    """One `Motion` for the whole timeline (checked up front against `max_seconds`). `settings["timeline"]`
    lists each segment's prompt, start frame, frames and pieces (seed, context, generation time);
    `Motion.captions` the (start frame, prompt) of each segment, which renders show. `control`: joint targets
    over the whole take ((T, 22, 3), NaN where free; `iter_pieces`), recorded in `settings["control"]`."""
    checked = check_timeline(segments, max_seconds)
    method = resolve_method(pipe, method)
    steps, guidance = pipe.resolve_sampling(steps, guidance)
    start_frames = 0 if start is None else len(start)
    hints = check_take_control(control, start_frames + sum(s.frames for s in checked), start_frames)
    pieces = list(iter_pieces(pipe, checked, seed, start, steps, guidance, method, hints))
    joints = [p.joints for p in pieces]
    features = [p.features for p in pieces]
    offset = 0
    if start is not None:
        start = check_prefix(start, "start").astype(np.float32)
        joints.insert(0, start)
        features.insert(0, start_features(start))
        offset = len(start)
    rows = []
    for index, segment in enumerate(checked):
        own = [p for p in pieces if p.segment == index]
        rows.append({
            "prompt": segment.prompt, "seconds": segment.seconds, "start_frame": own[0].start_frame,
            "frames": sum(len(p.joints) for p in own),
            "pieces": [{"start_frame": p.start_frame, "frames": len(p.joints), "seed": p.seed, "context": p.context,
                        "generate_s": round(p.seconds, 6), "model_prefix_err_m": p.prefix_err_m} for p in own],
        })  # fmt: skip
    settings = {
        "steps": steps, "guidance": guidance, "seed": seed, "kind": pipe.kind, "method": method,
        "timeline": rows, "start_frames": offset, "generate_s": sum(p.seconds for p in pieces),
    }  # fmt: skip
    captions = [(row["start_frame"], row["prompt"]) for row in rows]
    text = " / ".join(s.prompt for s in checked)
    motion = Motion(np.concatenate(joints), FPS, text, np.concatenate(features), settings, captions=captions)
    if hints is not None:
        from motionlcm.data.hints import control_record

        motion.hints = hints.to_array()
        motion.settings["control"] = control_record(motion.joints, hints, None)
    return motion


def read_start_clip(path: str, rig: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The clip a take starts from, as (K, 22, 3) SMPL joints at 20 fps in metres, and a record of it.

    .npy / .npz joints or 263-d features (`Motion.load`), or a .bvh: one on the 22-joint SMPL skeleton (the
    names `motionlcm generate` writes), or any rig with a `rig` mapping (the YAML of `motionlcm data import`,
    e.g. datasets/bandai-namco/rig.yaml). Clips at another frame rate are resampled to 20 fps (linearly);
    at 20 fps the frames are kept exactly. Errors are one line naming the file."""
    import hashlib
    from pathlib import Path

    from motionlcm.data.rig import resample_positions
    from motionlcm.data.skeleton import JOINT_NAMES

    p = Path(path)
    if rig is not None:
        from motionlcm.data.bvh_import import clip_joints
        from motionlcm.data.rig import Rig

        if p.suffix.lower() != ".bvh":
            raise ValueError(f"{p}: a rig mapping applies to a .bvh file")
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        joints, fps, _ = clip_joints(p, Rig.load(rig))
    else:
        motion = Motion.load(p)
        joints, fps = np.asarray(motion.joints, np.float64), float(motion.fps)
        if not motion.is_smpl:
            names = motion.names or []
            if not set(JOINT_NAMES) <= set(names):
                raise ValueError(
                    f"{p}: not a 22-joint SMPL motion ({joints.shape[1]} joints); give its rig mapping "
                    "(--start-rig RIG.yaml, as for `motionlcm data import`)"
                )
            joints = joints[:, [names.index(n) for n in JOINT_NAMES]]
        if abs(fps - FPS) > 1e-6:
            joints = resample_positions(joints, fps, FPS)
    joints = check_prefix(joints, str(p)).astype(np.float32)
    record = {"path": str(p), "frames": len(joints), "source_fps": fps, "rig": rig,
              "sha256": hashlib.sha256(np.ascontiguousarray(joints).tobytes()).hexdigest()}  # fmt: skip
    return joints, record
