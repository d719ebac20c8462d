"""`motionlcm generate`: prompts -> motions -> .npy / .bvh / .mp4 / .json files, all or nothing.

Every input is checked before the model runs; the files of one call are written into a hidden staging
folder inside the output folder and moved into place only when all of them are complete, under a lock on the
folder (see `motionlcm.io.atomic.publish_files`), so an error, a SIGTERM or a concurrent run into the same
folder leaves no partial set and overwrites nothing without --force. Each motion is generated in its own
call with its own seed, so the seed recorded in its .json reproduces it alone:
`motionlcm generate "<prompt>" --seed S --frames F --steps N`.
"""

from __future__ import annotations

import math
import re
import shlex
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("npy", "bvh", "glb", "smpl", "mp4", "gif", "json")
DEFAULT_FORMATS = ("npy", "bvh", "mp4", "json")
DEFAULT_SECONDS = 4.0
MAX_SEED = 2**62 - 1  # seeds of a call count up from --seed and must stay below torch's 2^63 limit
MAX_MOTIONS = 100_000  # motions per call (all are planned up front and staged before any is published)
STAGING_PREFIX = ".motionlcm-generate-"


@dataclass(frozen=True)
class Request:
    """One prompt and its length in seconds (None: the --seconds / --frames default)."""

    text: str
    seconds: float | None = None


def parse_formats(text: str) -> tuple[str, ...]:
    """`bvh,mp4` -> ("bvh", "mp4"); unknown names are a ValueError naming them."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"--format: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(FORMATS)}")
    return names


LEADING_SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)s")  # "3s walk forward"; "2 people dance" is a prompt
MAX_STEM = 48  # characters of prompt in a file name (a long single word must not exceed the file system's limit)


def check_seconds(value: float, where: str) -> float:
    """A finite length in seconds the model can make (`resolve_lengths`' rule), else one line naming `where`."""
    from motionlcm.data.skeleton import FPS
    from motionlcm.pipeline import MAX_FRAMES, resolve_lengths

    value = float(value)
    try:
        resolve_lengths(1, seconds=value)
    except ValueError:
        raise ValueError(f"{where}: length {value:g} s is outside {1 / FPS:g}..{MAX_FRAMES / FPS:g} s") from None
    return value


def parse_prompt_line(line: str, where: str) -> Request | None:
    """`Ns text` (e.g. `3s walk forward`), `text#seconds` or plain `text`; blank lines give None."""
    line = line.strip()
    if not line:
        return None
    if "#" in line:
        text, _, seconds = line.rpartition("#")
        try:
            value = float(seconds)
        except ValueError:
            raise ValueError(f"{where}: expected 'text#seconds', got {line!r}") from None
        return Request(check_prompt(text, where), check_seconds(value, where))
    head, _, rest = line.partition(" ")
    if LEADING_SECONDS.fullmatch(head):
        return Request(check_prompt(rest, where), check_seconds(float(head[:-1]), where))
    return Request(check_prompt(line, where))


def read_prompt_file(path: str | Path) -> list[Request]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a leading byte-order mark is dropped
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read prompts ({error})") from None
    requests = [r for i, line in enumerate(lines, 1) if (r := parse_prompt_line(line, f"{path}:{i}")) is not None]
    if not requests:
        raise ValueError(f"{path}: no prompts (one 'Ns text' or 'text#seconds' per line)")
    return requests


def check_segment_seconds(value: float, where: str) -> float:
    """A timeline segment's length: finite, at least one frame, no upper limit (long segments are generated in
    pieces); else one line naming `where`."""
    from motionlcm.data.skeleton import FPS

    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: seconds must be positive, got {value:g}")
    if round(value * FPS) < 1:
        raise ValueError(f"{where}: {value:g} s is shorter than one frame ({1 / FPS:g} s)")
    return value


def parse_timeline_line(line: str, where: str) -> Request | None:
    """A timeline entry: `text#seconds` or `Ns text`, the duration required; blank lines give None."""
    line = line.strip()
    if not line:
        return None
    if "#" in line:
        text, _, seconds = line.rpartition("#")
        try:
            value = float(seconds)
        except ValueError:
            raise ValueError(f"{where}: expected 'text#seconds', got {line!r}") from None
    else:
        head, _, text = line.partition(" ")
        if not LEADING_SECONDS.fullmatch(head):
            raise ValueError(f"{where}: missing duration: expected 'text#seconds' or 'Ns text', got {line!r}")
        value = float(head[:-1])
    return Request(check_prompt(text, where), check_segment_seconds(value, where))


def read_timeline_file(path: str | Path) -> list[Request]:
    """Timeline segments, one `text#seconds` or `Ns text` per line (blank lines skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the timeline ({error})") from None
    requests = [r for i, line in enumerate(lines, 1) if (r := parse_timeline_line(line, f"{path}:{i}")) is not None]
    if not requests:
        raise ValueError(f"{path}: no segments (one 'text#seconds' or 'Ns text' per line)")
    return requests


def check_prompt(text: str, where: str = "prompt") -> str:
    text = " ".join(text.split())
    if not text:
        raise ValueError(f"{where}: empty prompt")
    return text


def slug(text: str, words: int = 6) -> str:
    """File-name stem from a prompt: its first words, lower case, letters and digits only, at most
    MAX_STEM characters."""
    parts = re.findall(r"[a-z0-9]+", text.lower())[:words]
    return "_".join(parts)[:MAX_STEM].rstrip("_") or "motion"


def check_output_dir(out: Path) -> None:
    """The folder exists or can be created, and a file can be written in it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".motionlcm-probe-"):
            pass
    except OSError as error:
        raise ValueError(f"{out}: output folder is not writable ({error.strerror or error})") from None


@dataclass(frozen=True)
class ControlSpec:
    """Control inputs of a generate call: a hints .npy, a trajectory CSV and keyframe specs (any may be empty)."""

    hints_file: str | None = None
    trajectory: str | None = None
    keyframes: tuple[str, ...] = ()
    method: str = "controlnet"  # pipeline.CONTROL_METHODS
    clt_steps: int = 400
    warp: bool = True

    @property
    def active(self) -> bool:
        return bool(self.hints_file or self.trajectory or self.keyframes)

    def check(self) -> None:
        """Read and validate what does not depend on the motion's length (bad input fails before the model)."""
        from motionlcm.data.hints import read_hints_file
        from motionlcm.pipeline import CONTROL_METHODS

        if self.hints_file and (self.trajectory or self.keyframes):
            raise ValueError("--control: give a hints file or --trajectory/--keyframe, not both")
        if self.method not in CONTROL_METHODS:
            raise ValueError(f"--control-method: {self.method!r} is not one of {', '.join(CONTROL_METHODS)}")
        if self.clt_steps < 1:
            raise ValueError(f"--clt-steps: must be >= 1, got {self.clt_steps}")
        if self.hints_file:
            read_hints_file(self.hints_file)

    def default_frames(self) -> int | None:
        """The frame count the inputs ask for: the hints file's T, or through the trajectory's last row."""
        from motionlcm.data.hints import _read_trajectory_rows, read_hints_file
        from motionlcm.data.skeleton import FPS
        from motionlcm.pipeline import MAX_FRAMES

        if self.hints_file:
            return read_hints_file(self.hints_file).num_frames
        if self.trajectory:
            end = _read_trajectory_rows(Path(self.trajectory))[-1][0]
            frames = int(np.floor(end * FPS + 1e-6)) + 1
            if frames > MAX_FRAMES:
                raise ValueError(f"{self.trajectory}: ends at {end:g} s; a motion lasts at most {MAX_FRAMES / FPS:g} s")
            return max(frames, int(round(DEFAULT_SECONDS * FPS)))
        return None

    def hints(self, frames: int) -> Any:
        """`Hints` for a motion of `frames` frames (None without control)."""
        from motionlcm.data.hints import keyframe_hints, read_hints_file, trajectory_hints
        from motionlcm.data.skeleton import FPS

        if not self.active:
            return None
        if self.hints_file:
            hints = read_hints_file(self.hints_file)
            if hints.num_frames != frames:
                raise ValueError(f"{self.hints_file}: {hints.num_frames} frames, but the motion has {frames}")
            return hints
        base = trajectory_hints(self.trajectory, frames, FPS) if self.trajectory else None
        return keyframe_hints(list(self.keyframes), frames, FPS, base) if self.keyframes else base


@dataclass
class Job:
    """One motion to make: prompt, length, seed and the file stem it is written under."""

    request: Request
    frames: int
    seed: int
    stem: str


def plan_jobs(
    requests: list[Request], num: int, seed: int, default_seconds: float | None, frames: int | None
) -> list[Job]:
    from motionlcm.pipeline import resolve_lengths

    jobs = []
    for i, request in enumerate(requests):
        if request.seconds is not None:
            length = resolve_lengths(1, seconds=request.seconds)[0]
        elif frames is not None:
            length = resolve_lengths(1, frames=frames)[0]
        else:
            length = resolve_lengths(1, seconds=DEFAULT_SECONDS if default_seconds is None else default_seconds)[0]
        for k in range(num):
            stem = f"{i:03d}_{slug(request.text)}" + (f"_{k}" if num > 1 else "")
            jobs.append(Job(request, length, seed + i * num + k, stem))
    return jobs


def output_names(job: Job, formats: tuple[str, ...]) -> list[str]:
    names = []
    for fmt in formats:
        names.append(f"{job.stem}_smpl.npz" if fmt == "smpl" else f"{job.stem}.{fmt}")  # (+ mesh frames, at publish)
        if fmt == "npy":
            names.append(f"{job.stem}_features.npy")
    return names


def check_conflicts(out: Path, jobs: list[Job], formats: tuple[str, ...], force: bool) -> None:
    """Fail early, before the model runs (`publish_files` checks again under the lock)."""
    from motionlcm.io.atomic import check_targets

    check_targets([out / name for job in jobs for name in output_names(job, formats)], force)


def warn_long_prompts(pipe: Any, requests: list[Request]) -> None:
    encoder = pipe.text_encoder
    if encoder is None:
        return
    for request in requests:
        count = len(encoder.tokenizer(request.text)["input_ids"])
        if count > encoder.max_length:
            warnings.warn(
                f"prompt {request.text[:40]!r}...: {count} tokens, truncated to the text encoder's "
                f"{encoder.max_length}",
                stacklevel=2,
            )


def write_outputs(
    motion: Any,
    job: Job,
    stage: Path,
    formats: tuple[str, ...],
    fps: float | None,
    meta: dict[str, Any],
    targets: ExportTargets | None = None,
) -> list[str]:
    """Write one motion's files into `stage`; returns their names. `targets`: the user's rig that BVH and glTF
    are written onto, the SMPL body of `smpl` (`load_targets`)."""
    from motionlcm.io.atomic import write_json_atomic

    names, timings = [], {}
    targets = targets or ExportTargets()
    rig = targets.rig
    for fmt in (f for f in formats if f != "json"):
        start = time.perf_counter()
        if fmt == "npy":
            motion.save_npy(stage / f"{job.stem}.npy", stage / f"{job.stem}_features.npy")
            names += [f"{job.stem}.npy", f"{job.stem}_features.npy"]
        elif fmt == "bvh":
            target = {} if rig is None else {"rig": rig.rig, "skeleton": rig.skeleton}
            names.append(motion.save_bvh(stage / f"{job.stem}.bvh", fps=fps, **target).name)
        elif fmt == "glb":
            target = {} if rig is None else {"rig": rig.rig, "skeleton": rig.skeleton}
            names.append(motion.save_glb(stage / f"{job.stem}.glb", fps=fps, **target).name)
        elif fmt == "smpl":
            names += write_smpl(motion, targets.smpl, stage, job.stem)
        else:  # mp4 falls back to a GIF (with a warning) when no ffmpeg is available
            names.append(motion.render(stage / f"{job.stem}.{fmt}").name)
        timings[fmt] = time.perf_counter() - start
    if "json" in formats:
        names.append(f"{job.stem}.json")
        if rig is not None:
            meta = {**meta, "rig": rig_record(rig), "command": meta["command"] + rig_arguments(rig)}
        write_json_atomic(stage / names[-1], {**meta, "files": names, "write_seconds": timings})
    return names


@dataclass(frozen=True)
class ExportTargets:
    """What the files are written onto besides the SMPL stick skeleton: the user's rig (BVH, glTF) and the
    SMPL body of the `smpl` format; both checked before the model loads."""

    rig: Any = None  # motionlcm.export.retarget.RigSkeleton
    smpl: Any = None  # motionlcm.export.smpl.SmplBody


def load_targets(
    formats: tuple[str, ...], rig: str | Path | None, skeleton: str | Path | None, smpl_model: str | Path | None
) -> ExportTargets:
    """--rig / --skeleton / --smpl-model, checked (each file read and validated) before anything runs."""
    if smpl_model is not None and "smpl" not in formats:
        raise ValueError("--smpl-model: only with --format smpl (the body parameters and mesh it writes)")
    body = None
    if "smpl" in formats:
        from motionlcm.export.smpl import load_smpl_model

        if smpl_model is None:
            raise ValueError("--format smpl: needs --smpl-model DIR, your SMPL neutral model files (docs/smpl.md)")
        body = load_smpl_model(smpl_model)
    return ExportTargets(load_rig(rig, skeleton), body)


def write_smpl(motion: Any, body: Any, stage: Path, stem: str) -> list[str]:
    """<stem>_smpl.npz (AMASS-style body parameters fitted to the joints) and the body mesh per frame,
    <stem>_mesh_00000.obj ...; returns the file names."""
    from motionlcm.export.smpl import fit_smpl, save_amass_npz, smpl_vertices
    from motionlcm.io.obj import write_obj_sequence

    params = fit_smpl(motion.joints, body, fps=motion.fps)
    names = [save_amass_npz(stage / f"{stem}_smpl.npz", params).name]
    folder = stage / f"{stem}_mesh"
    for path in write_obj_sequence(folder, *smpl_vertices(params, body)):
        names.append(f"{stem}_mesh_{path.stem.removeprefix('frame_')}.obj")
        path.replace(stage / names[-1])  # flat files: each published (and replaced with --force) like any other
    folder.rmdir()
    return names


def load_rig(rig: str | Path | None, skeleton: str | Path | None) -> Any:
    """--rig / --skeleton: the checked rig and skeleton (None without --rig), before anything runs."""
    if rig is None:
        if skeleton is not None:
            raise ValueError("--skeleton: needs --rig (the rig file that maps that skeleton)")
        return None
    from motionlcm.export.retarget import RigSkeleton

    return RigSkeleton.load(rig, skeleton)


def rig_record(rig: Any) -> dict[str, str]:
    return {"file": str(rig.rig.path), "name": rig.rig.name, "skeleton": rig.source}


def rig_arguments(rig: Any) -> str:
    """` --rig FILE [--skeleton FILE]` for the reproducing command."""
    args = ["--rig", str(rig.rig.path)]
    if rig.rig.reference is None or Path(rig.source) != Path(rig.rig.reference):
        args += ["--skeleton", rig.source]
    return " " + shlex.join(args)


def load_pipeline(
    model: str | None,
    device: str | None,
    backend: str = "torch",
    onnx_dir: str | None = None,
    literal_prompt: bool = False,
) -> Any:
    """The model for `generate`: torch, or the onnxruntime backend (`--backend`, `--onnx-dir`); with
    `literal_prompt` it encodes prompts as typed, without the model folder's rewrites (`--literal-prompt`)."""
    from motionlcm.pipeline import MotionLCM

    if backend == "torch":
        if onnx_dir is not None:
            raise ValueError("--onnx-dir: only with --backend onnxruntime")
        pipe = MotionLCM.from_pretrained(model, device=device)
    else:
        from motionlcm.runtime.onnx_backend import check_backend, require_onnxruntime

        check_backend(backend)
        require_onnxruntime()
        pipe = MotionLCM.from_pretrained(model, device=device or "cpu", backend=backend, onnx_dir=onnx_dir)
    pipe.rewrite_prompts = not literal_prompt
    return pipe


def backend_record(pipe: Any) -> dict[str, str]:
    """Which runtime made the motion: torch, or onnxruntime with the precision and fingerprint of its graphs."""
    if pipe.onnx is None:
        return {"name": "torch"}
    return {"name": "onnxruntime", "precision": pipe.onnx.precision, "graphs": pipe.onnx.fingerprint}


def generate(
    requests: list[Request],
    out: Path,
    model: str | None = None,
    seconds: float | None = None,
    frames: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    num: int = 1,
    fps: float | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    force: bool = False,
    device: str | None = None,
    backend: str = "torch",
    onnx_dir: str | None = None,
    progress: bool = True,
    control: ControlSpec | None = None,
    targets: ExportTargets | None = None,
    literal_prompt: bool = False,
) -> list[Path]:
    """Generate every request `num` times and write the files; returns the paths written. `control` steers
    every motion with the same joint targets; `targets` (`load_targets`) puts BVH and glTF on the user's
    skeleton and gives the `smpl` format its body; `literal_prompt` encodes the prompts as typed, without the
    model folder's prompt rewrites (`MotionLCM.read_prompt`)."""
    from motionlcm.export.bvh_export import check_fps
    from motionlcm.io.atomic import publish_files, staging_folder
    from motionlcm.pipeline import MAX_FRAMES, resolve_lengths

    if num < 1:
        raise ValueError(f"--num: must be >= 1, got {num}")
    if num * len(requests) > MAX_MOTIONS:
        raise ValueError(
            f"--num {num} x {len(requests)} prompt(s) is {num * len(requests)} motions; at most {MAX_MOTIONS} per call"
        )
    if fps is not None:
        check_fps(fps, "--fps")
    if seconds is not None and frames is not None:
        raise ValueError("give --seconds or --frames, not both")
    if seconds is not None:
        check_seconds(seconds, "--seconds")
    if frames is not None:
        try:
            resolve_lengths(1, frames=frames)
        except ValueError:
            raise ValueError(f"--frames: {frames} is outside 1..{MAX_FRAMES}") from None
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed: must be in 0..{MAX_SEED} (2^62 - 1), got {seed}")
    base_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
    control = control or ControlSpec()
    control.check()
    if control.active and seconds is None and frames is None:
        frames = control.default_frames()
    jobs = plan_jobs(requests, num, base_seed, seconds, frames)
    hints = {job.frames: control.hints(job.frames) for job in jobs}  # every length checked before the model runs
    for value in hints.values():
        for warning in value.warnings(20.0) if value is not None else ():
            warnings.warn(f"control: {warning}", stacklevel=2)
    check_output_dir(out)
    check_conflicts(out, jobs, formats, force)
    load_start = time.perf_counter()
    pipe = load_pipeline(model, device, backend, onnx_dir, literal_prompt)
    load_seconds = time.perf_counter() - load_start
    warn_long_prompts(pipe, requests)
    steps, guidance = pipe.resolve_sampling(steps, guidance)
    with staging_folder(out, STAGING_PREFIX) as stage:
        if control.active and control.method != "clt":  # the controller must exist before anything is generated
            pipe.controller_for({j for h in hints.values() for j in h.joints})
        names = stage_motions(
            pipe, jobs, stage, formats, fps, steps, guidance, load_seconds, progress, model, hints, control, targets
        )
        return publish_files(stage, out, sorted(names), force)


def reproduce_command(
    job: Job,
    steps: int,
    guidance: float,
    model: str | None,
    control: ControlSpec | None = None,
    backend: str = "torch",
    literal_prompt: bool = False,
) -> str:
    """The shell command that makes this motion again, every argument quoted for a POSIX shell."""
    args = [
        "motionlcm",
        "generate",
        job.request.text,
        "--seed",
        str(job.seed),
        "--frames",
        str(job.frames),
        "--steps",
        str(steps),
        "--guidance",
        f"{guidance:g}",
    ]
    if model is not None:
        args += ["--model", str(model)]
    if backend != "torch":
        args += ["--backend", backend]
    if literal_prompt:
        args.append("--literal-prompt")
    if control is not None and control.hints_file:
        args += ["--control", str(control.hints_file)]
    if control is not None and control.trajectory:
        args += ["--trajectory", str(control.trajectory)]
    for spec in control.keyframes if control is not None else ():
        args += ["--keyframe", spec]
    if control is not None and control.active:
        if control.method != "controlnet":
            args += ["--control-method", control.method, "--clt-steps", str(control.clt_steps)]
        if not control.warp:
            args.append("--no-warp")
    return shlex.join(args)


def stage_motions(
    pipe: Any,
    jobs: list[Job],
    stage: Path,
    formats: tuple[str, ...],
    fps: float | None,
    steps: int,
    guidance: float,
    load_seconds: float,
    progress: bool,
    model: str | None = None,
    hints: dict[int, Any] | None = None,
    control: ControlSpec | None = None,
    targets: ExportTargets | None = None,
) -> list[str]:
    """Generate every job (under `hints[job.frames]` when given) and write its files into `stage`; returns the
    file names."""
    from motionlcm.data.skeleton import FPS

    names: list[str] = []
    for job in _progress(jobs, progress and len(jobs) > 1):
        start = time.perf_counter()
        job_hints = (hints or {}).get(job.frames)
        options = {}
        if job_hints is not None:
            options = {"control": job_hints, "control_method": control.method, "clt_steps": control.clt_steps,
                       "warp": control.warp}  # fmt: skip
        motion = pipe(job.request.text, frames=job.frames, steps=steps, guidance=guidance, seed=job.seed, **options)[0]
        generate_seconds = time.perf_counter() - start
        meta = {
            "prompt": job.request.text,
            "seed": job.seed,
            "steps": steps,
            "guidance": guidance,
            "fps": fps or FPS,
            "native_fps": FPS,
            "frames": motion.frames,
            "seconds": motion.seconds,
            "model": {"path": str(pipe.folder.path), "kind": pipe.kind, "backend": backend_record(pipe)},
            "timings": {"model_load_s": load_seconds, "generate_s": generate_seconds},
            "command": reproduce_command(
                job, steps, guidance, model, control, backend_record(pipe)["name"], not pipe.rewrite_prompts
            ),
        }
        if "prompt_read_as" in motion.settings:  # the model folder's rewrites changed it (`--literal-prompt`)
            meta["prompt_read_as"] = motion.settings["prompt_read_as"]
        if "control" in motion.settings:
            meta["control"] = motion.settings["control"]
        names += write_outputs(motion, job, stage, formats, fps, meta, targets)
    return names


def _progress(items: list, enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="motions", dynamic_ncols=True)


@dataclass(frozen=True)
class TimelineSpec:
    """A timeline call: its segments, where its take starts and how pieces continue it."""

    segments: tuple[Request, ...]
    stem: str = "timeline"
    start_from: str | None = None
    start_rig: str | None = None
    seam: str | None = None  # timeline.METHODS; None: a ControlNet for prefixes when installed, else splice
    max_seconds: float = 600.0
    control: ControlSpec | None = None  # targets over the whole take (times from its first frame)


def timeline_command(
    spec: TimelineSpec, seed: int, steps: int, guidance: float, model: str | None, literal_prompt: bool = False
) -> str:
    """The shell command that makes this take again (segments inline)."""
    args = ["motionlcm", "generate", *(f"{r.text}#{r.seconds:g}" for r in spec.segments), "--timeline"]
    args += ["--seed", str(seed), "--steps", str(steps), "--guidance", f"{guidance:g}"]
    if model is not None:
        args += ["--model", str(model)]
    if literal_prompt:
        args.append("--literal-prompt")
    if spec.start_from is not None:
        args += ["--start-from", spec.start_from]
    if spec.start_rig is not None:
        args += ["--start-rig", spec.start_rig]
    if spec.seam is not None:
        args += ["--seam", spec.seam]
    control = spec.control
    if control is not None and control.hints_file:
        args += ["--control", str(control.hints_file)]
    if control is not None and control.trajectory:
        args += ["--trajectory", str(control.trajectory)]
    for keyframe in control.keyframes if control is not None else ():
        args += ["--keyframe", keyframe]
    if control is not None and control.active and not control.warp:
        args.append("--no-warp")
    return shlex.join(args)


def generate_timeline_files(
    spec: TimelineSpec,
    out: Path,
    model: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    num: int = 1,
    fps: float | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    force: bool = False,
    device: str | None = None,
    backend: str = "torch",
    onnx_dir: str | None = None,
    progress: bool = True,
    targets: ExportTargets | None = None,
    literal_prompt: bool = False,
) -> list[Path]:
    """Generate the timeline `num` times (seeds seed, seed + 1000, ...) as one take each and write
    <stem>[_k].npy / _features.npy / .bvh / .mp4 / .json; returns the paths written. Every input (segments,
    total length, start clip, output names) is checked before the model loads; nothing is written unless
    everything succeeds. `literal_prompt` as in `generate`."""
    from motionlcm.export.bvh_export import check_fps
    from motionlcm.io.atomic import publish_files, staging_folder
    from motionlcm.timeline import METHODS, check_take_control, check_timeline, read_start_clip

    if not 1 <= num <= 1000:
        raise ValueError(f"--num: must be in 1..1000 for a timeline, got {num}")
    if fps is not None:
        check_fps(fps, "--fps")
    if seed is not None and not 0 <= seed <= MAX_SEED - 1000 * num:
        raise ValueError(f"--seed: must be in 0..{MAX_SEED - 1000 * num}, got {seed}")
    if not (math.isfinite(spec.max_seconds) and spec.max_seconds > 0):
        raise ValueError(f"--max-seconds: must be positive, got {spec.max_seconds:g}")
    if spec.seam is not None and spec.seam not in METHODS:
        raise ValueError(f"--seam: {spec.seam!r} is not one of {', '.join(METHODS)}")
    segments = check_timeline([(r.text, r.seconds) for r in spec.segments], spec.max_seconds)
    if spec.start_rig is not None and spec.start_from is None:
        raise ValueError("--start-rig: needs --start-from")
    start, start_record = (None, None) if spec.start_from is None else read_start_clip(spec.start_from, spec.start_rig)
    control = spec.control or ControlSpec()
    control.check()
    take_frames = (0 if start is None else len(start)) + sum(s.frames for s in segments)
    hints = control.hints(take_frames) if control.active else None
    if hints is not None:
        check_take_control(hints, take_frames, 0 if start is None else len(start))
        for warning in hints.warnings(20.0):
            warnings.warn(f"control: {warning}", stacklevel=2)
    base_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
    jobs = [
        Job(spec.segments[0], 0, base_seed + 1000 * k, spec.stem + (f"_{k}" if num > 1 else "")) for k in range(num)
    ]
    check_output_dir(out)
    check_conflicts(out, jobs, formats, force)
    load_start = time.perf_counter()
    pipe = load_pipeline(model, device, backend, onnx_dir, literal_prompt)
    load_seconds = time.perf_counter() - load_start
    warn_long_prompts(pipe, list(spec.segments))
    steps, guidance = pipe.resolve_sampling(steps, guidance)
    with staging_folder(out, STAGING_PREFIX) as stage:
        names: list[str] = []
        for job in _progress(jobs, progress and num > 1):
            began = time.perf_counter()
            motion = pipe.generate_timeline(segments, seed=job.seed, start=start, steps=steps, guidance=guidance,
                                            method=spec.seam, max_seconds=spec.max_seconds, control=hints)  # fmt: skip
            meta = {
                "prompts": [s.prompt for s in segments],
                "prompts_read_as": [pipe.read_prompt(s.prompt) for s in segments],
                "seed": job.seed,
                "steps": steps,
                "guidance": guidance,
                "method": motion.settings["method"],
                "fps": fps or motion.fps,
                "native_fps": motion.fps,
                "frames": motion.frames,
                "seconds": motion.seconds,
                "start_from": start_record,
                "segments": motion.settings["timeline"],
                "control": motion.settings.get("control"),
                "model": {"path": str(pipe.folder.path), "kind": pipe.kind, "backend": backend_record(pipe)},
                "timings": {"model_load_s": load_seconds, "generate_s": time.perf_counter() - began},
                "command": timeline_command(spec, job.seed, steps, guidance, model, not pipe.rewrite_prompts),
            }
            names += write_outputs(motion, job, stage, formats, fps, meta, targets)
        return publish_files(stage, out, sorted(names), force)
