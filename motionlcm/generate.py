"""`motionlcm generate`: prompts -> motions -> .npy / .bvh / .mp4 / .json files, all or nothing.

Every input is checked before the model runs; the files of one call are written into a hidden staging
folder inside the output folder and renamed into place only when all of them are complete, so an error
leaves nothing behind. Each motion is generated in its own call with its own seed, so the seed recorded in
its .json reproduces it alone: `motionlcm generate "<prompt>" --seed S --frames F --steps N`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("npy", "bvh", "mp4", "gif", "json")
DEFAULT_FORMATS = ("npy", "bvh", "mp4", "json")
DEFAULT_SECONDS = 4.0


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


def parse_prompt_line(line: str, where: str) -> Request | None:
    """`seconds text`, `text#seconds` or plain `text`; blank lines give None."""
    line = line.strip()
    if not line:
        return None
    if "#" in line:
        text, _, seconds = line.rpartition("#")
        try:
            value = float(seconds)
        except ValueError:
            raise ValueError(f"{where}: expected 'text#seconds', got {line!r}") from None
        return Request(check_prompt(text, where), value)
    head, _, rest = line.partition(" ")
    try:
        return Request(check_prompt(rest, where), float(head))
    except ValueError:
        return Request(check_prompt(line, where))


def read_prompt_file(path: str | Path) -> list[Request]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read prompts ({error})") from None
    requests = [r for i, line in enumerate(lines, 1) if (r := parse_prompt_line(line, f"{path}:{i}")) is not None]
    if not requests:
        raise ValueError(f"{path}: no prompts (one 'seconds text' or 'text#seconds' per line)")
    return requests


def check_prompt(text: str, where: str = "prompt") -> str:
    text = " ".join(text.split())
    if not text:
        raise ValueError(f"{where}: empty prompt")
    return text


def slug(text: str, words: int = 6) -> str:
    """File-name stem from a prompt: its first words, lower case, letters and digits only."""
    parts = re.findall(r"[a-z0-9]+", text.lower())[:words]
    return "_".join(parts) or "motion"


def check_output_dir(out: Path) -> None:
    """The folder exists or can be created, and a file can be written in it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".motionlcm-probe-"):
            pass
    except OSError as error:
        raise ValueError(f"{out}: output folder is not writable ({error.strerror or error})") from None


@dataclass
class Job:
    """One motion to make: prompt, length, seed and the file stem it is written under."""

    request: Request
    frames: int
    seed: int
    stem: str


def plan_jobs(requests: list[Request], num: int, seed: int, default_seconds: float | None,
              frames: int | None) -> list[Job]:
    from motionlcm.pipeline import resolve_lengths

    jobs = []
    for i, request in enumerate(requests):
        if request.seconds is not None:
            length = resolve_lengths(1, seconds=request.seconds)[0]
        elif frames is not None:
            length = resolve_lengths(1, frames=frames)[0]
        else:
            length = resolve_lengths(1, seconds=default_seconds or DEFAULT_SECONDS)[0]
        for k in range(num):
            stem = f"{i:03d}_{slug(request.text)}" + (f"_{k}" if num > 1 else "")
            jobs.append(Job(request, length, seed + i * num + k, stem))
    return jobs


def output_names(job: Job, formats: tuple[str, ...]) -> list[str]:
    names = []
    for fmt in formats:
        names.append(f"{job.stem}.{fmt}")
        if fmt == "npy":
            names.append(f"{job.stem}_features.npy")
    return names


def check_conflicts(out: Path, jobs: list[Job], formats: tuple[str, ...], force: bool) -> None:
    if force:
        return
    taken = [name for job in jobs for name in output_names(job, formats) if (out / name).exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise ValueError(f"{out / taken[0]}{more}: exists; pass --force to overwrite")


def warn_long_prompts(pipe: Any, requests: list[Request]) -> None:
    encoder = pipe.text_encoder
    if encoder is None:
        return
    for request in requests:
        count = len(encoder.tokenizer(request.text)["input_ids"])
        if count > encoder.max_length:
            warnings.warn(f"prompt {request.text[:40]!r}...: {count} tokens, truncated to the text encoder's "
                          f"{encoder.max_length}", stacklevel=2)


def write_outputs(motion: Any, job: Job, stage: Path, formats: tuple[str, ...], fps: float | None,
                  meta: dict[str, Any]) -> list[str]:
    """Write one motion's files into `stage`; returns their names."""
    from motionlcm.io.atomic import write_json_atomic

    names, timings = [], {}
    for fmt in (f for f in formats if f != "json"):
        start = time.perf_counter()
        if fmt == "npy":
            motion.save_npy(stage / f"{job.stem}.npy", stage / f"{job.stem}_features.npy")
            names += [f"{job.stem}.npy", f"{job.stem}_features.npy"]
        elif fmt == "bvh":
            names.append(motion.save_bvh(stage / f"{job.stem}.bvh", fps=fps).name)
        else:  # mp4 falls back to a GIF (with a warning) when no ffmpeg is available
            names.append(motion.render(stage / f"{job.stem}.{fmt}").name)
        timings[fmt] = time.perf_counter() - start
    if "json" in formats:
        names.append(f"{job.stem}.json")
        write_json_atomic(stage / names[-1], {**meta, "files": names, "write_seconds": timings})
    return names


def generate(requests: list[Request], out: Path, model: str | None = None, seconds: float | None = None,
             frames: int | None = None, steps: int | None = None, guidance: float | None = None,
             seed: int | None = None, num: int = 1, fps: float | None = None,
             formats: tuple[str, ...] = DEFAULT_FORMATS, force: bool = False, device: str | None = None,
             progress: bool = True) -> list[Path]:
    """Generate every request `num` times and write the files; returns the paths written."""
    from motionlcm.data.skeleton import FPS
    from motionlcm.pipeline import MotionLCM

    if num < 1:
        raise ValueError(f"--num: must be >= 1, got {num}")
    if fps is not None and not 1 <= fps <= 240:
        raise ValueError(f"--fps: must be in 1..240, got {fps:g}")
    if seconds is not None and frames is not None:
        raise ValueError("give --seconds or --frames, not both")
    base_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
    jobs = plan_jobs(requests, num, base_seed, seconds, frames)
    check_output_dir(out)
    check_conflicts(out, jobs, formats, force)
    load_start = time.perf_counter()
    pipe = MotionLCM.from_pretrained(model, device=device)
    load_seconds = time.perf_counter() - load_start
    warn_long_prompts(pipe, requests)
    steps, guidance = pipe.resolve_sampling(steps, guidance)
    stage = Path(tempfile.mkdtemp(prefix=".motionlcm-generate-", dir=out))
    written: list[Path] = []
    try:
        for job in _progress(jobs, progress and len(jobs) > 1):
            start = time.perf_counter()
            motion = pipe(job.request.text, frames=job.frames, steps=steps, guidance=guidance, seed=job.seed)[0]
            generate_seconds = time.perf_counter() - start
            meta = {"prompt": job.request.text, "seed": job.seed, "steps": steps, "guidance": guidance,
                    "fps": fps or FPS, "native_fps": FPS, "frames": motion.frames, "seconds": motion.seconds,
                    "model": {"path": str(pipe.folder.path), "kind": pipe.kind},
                    "timings": {"model_load_s": load_seconds, "generate_s": generate_seconds},
                    "command": f"motionlcm generate {job.request.text!r} --seed {job.seed} --frames {job.frames} "
                               f"--steps {steps} --guidance {guidance:g}"}
            write_outputs(motion, job, stage, formats, fps, meta)
        for path in sorted(stage.iterdir()):
            target = out / path.name
            path.replace(target)
            written.append(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return written


def _progress(items: list, enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="motions", dynamic_ncols=True)
