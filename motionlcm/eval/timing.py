"""AITS, the average inference time per sentence (MLD / MotionLCM papers; the official timer is in
`mld/models/modeltype/mld.py`, `t2m_eval`).

The paper's definition: wall-clock time from text encoding to the end of VAE decoding, at batch size 1,
model loading and warm-up excluded. Unlike the official code we synchronise the device around every stage
(otherwise asynchronous GPU work is under-counted) and clear the text encoder's prompt cache before each
sentence (otherwise repeated captions would skip text encoding). Joint recovery is timed separately and
is not part of AITS, as in the paper.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionlcm.data.features import features_to_joints

STAGES = ("text", "denoise", "decode", "joints")


def device_name(device: torch.device) -> str:
    """The GPU's name, or "cpu, N threads"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu, {torch.get_num_threads()} threads"


def aits_inputs(dataset_dir: str | Path, split: str, count: int, min_length: int) -> tuple[list[str], list[int]]:
    """`count` captions and lengths taken evenly over a split (first caption draw, no random crop)."""
    texts, lengths, _ = aits_clips(dataset_dir, split, count, min_length)
    return texts, lengths


def aits_clips(
    dataset_dir: str | Path, split: str, count: int, min_length: int
) -> tuple[list[str], list[int], list[np.ndarray]]:
    """`aits_inputs` plus each clip's joints (T, 22, 3), for timing generation under control."""
    from motionlcm.data.features import features_to_joints
    from motionlcm.data.humanml3d import HumanML3DDataset

    dataset = HumanML3DDataset(dataset_dir, split=split, min_length=min_length, random_crop=False, seed=0)
    items = [dataset[i] for i in range(0, len(dataset), max(1, len(dataset) // count))][:count]
    joints = [features_to_joints(dataset.normalizer.denormalize(item["features"])).numpy() for item in items]
    return [item["text"] for item in items], [item["length"] for item in items], joints


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU), so that wall-clock marks bound each stage."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_stages(
    pipe: Any,
    texts: list[str],
    lengths: list[int],
    steps: int,
    guidance: float,
    generator: torch.Generator,
    clear_cache: bool = True,
    hints: list[Any] | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """Generate once through the pipeline, timing each of `STAGES` between device synchronisations.

    The prompt cache is cleared first unless `clear_cache` is False; the teacher's stage "text" includes
    the empty prompt of classifier-free guidance. With `hints` (one `Hints` per text) the "denoise" stage
    includes the trajectory encoder and the ControlNet (the installed controller covering the hints).

    Returns:
        ({stage: seconds}, de-normalised features (B, max(lengths), 263)).
    """
    device, cfg = pipe.device, pipe.vae.config
    if clear_cache:
        pipe.text_encoder.clear_cache()
    sync(device)
    marks = [time.perf_counter()]
    text_emb = pipe.encode_text(texts)
    if pipe.kind == "teacher":
        pipe.encode_text([""])  # the unconditional embedding of classifier-free guidance
    sync(device)
    marks.append(time.perf_counter())
    noise = torch.randn(len(texts), cfg.latent_size, cfg.latent_dim, generator=generator, device=device)
    control = None
    if hints is not None:
        controller = pipe.controller_for({j for h in hints for j in h.joints})
        control = (controller, pipe.control_condition(controller, hints, max(lengths)))
    latents = pipe.sample_latents(text_emb, noise, steps, guidance, generator, list(lengths), control)
    sync(device)
    marks.append(time.perf_counter())
    features = pipe.decode(latents, lengths) * pipe.std + pipe.mean
    sync(device)
    marks.append(time.perf_counter())
    features_to_joints(features)
    sync(device)
    marks.append(time.perf_counter())
    return {stage: marks[i + 1] - marks[i] for i, stage in enumerate(STAGES)}, features


@torch.no_grad()
def measure_aits(
    pipe: Any,
    prompts: Sequence[str],
    lengths: Sequence[int],
    steps: int | None = None,
    guidance: float | None = None,
    warmup: int = 3,
    seed: int = 0,
    hints: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Time each (prompt, length) at batch 1 after `warmup` untimed runs (under `hints[i]` when given).

    Returns:
        {"aits_s": mean seconds per sentence (text + denoise + decode), "median_s", "p90_s", "sentences",
        "stages": {stage: mean seconds}, "steps", "guidance", "device"}.
    """
    if pipe.text_encoder is None:
        raise ValueError("AITS needs the model's text encoder (pass text_encoder_path=)")
    if not prompts or len(prompts) != len(lengths):
        raise ValueError(f"need one length per prompt, got {len(prompts)} prompts and {len(lengths)} lengths")
    steps, guidance = pipe.resolve_sampling(steps, guidance)
    generator = torch.Generator(device=pipe.device).manual_seed(seed)
    one = (lambda i: [hints[i]]) if hints is not None else (lambda i: None)  # noqa: E731
    for i in range(warmup):
        k = i % len(prompts)
        time_stages(pipe, [prompts[k]], [int(lengths[k])], steps, guidance, generator, hints=one(k))
    runs = [
        time_stages(pipe, [p], [int(n)], steps, guidance, generator, hints=one(i))[0]
        for i, (p, n) in enumerate(zip(prompts, lengths, strict=True))
    ]
    totals = np.array([r["text"] + r["denoise"] + r["decode"] for r in runs])
    return {
        "aits_s": float(totals.mean()),
        "median_s": float(np.median(totals)),
        "p90_s": float(np.percentile(totals, 90)),
        "sentences": len(runs),
        "stages": {s: float(np.mean([r[s] for r in runs])) for s in STAGES},
        "steps": steps,
        "guidance": guidance,
        "device": device_name(pipe.device),
    }
