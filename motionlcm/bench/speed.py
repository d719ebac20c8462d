"""The speed benchmark behind `motionlcm bench`: latency per stage at batch 1 (AITS), throughput at larger
batches, and training samples/s, for each fast path against the plain eager path in the same process.

Inference rows time four stages, each closed by a device synchronisation: text encoding (prompt cache
cleared first, as the AITS definition requires, unless the row is the cached one), denoising, VAE decoding
(with de-normalisation) and features to joints. AITS is the first three (docs/evaluation.md, AITS);
"text to joints" adds the fourth. Every row reports the median and the 10th / 90th percentiles over
`repeats` runs after `warmup` runs, and the largest feature difference from the eager path for the same
seed (the accuracy check of each fast path).

Control rows time AITS at batch 1 and one step with each installed controller (ControlNet + trajectory encoder,
dense hints on the joints it controls) against text-only generation of the same prompts (the paper: 42 vs
30 ms).

Training rows time one optimiser step (forward, backward, AdamW, EMA) of the VAE, the teacher and the
distillation on synthetic batches; the eager rows run the official loop's choices (nn.MultiheadAttention,
the text encoder on every step, two teacher calls per distillation step, a per-parameter EMA).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motionlcm.bench import official_loop
from motionlcm.eval.timing import STAGES, sync, time_stages
from motionlcm.runtime.fast_paths import FastPaths

PROMPTS = (
    "a person walks forward", "a man runs in a circle", "someone waves with the right hand",
    "a person raises both hands above the head", "an old man walks slowly and turns left",
    "a woman jogs forward then stops", "a person turns right while walking", "a child waves both hands happily",
    "a tired person walks forward dragging the feet", "someone raises the left hand and lowers it",
    "a proud man strides forward", "a person walks backwards carefully", "a zombie shuffles forward",
    "an angry person stomps forward", "a person runs and turns left", "a cheerful person skips ahead",
)  # fmt: skip


@dataclass
class SpeedSettings:
    """What `run_speed_benchmark` measures.

    Attributes:
        steps: student step counts (the teacher always uses `teacher_steps`).
        batches: batch sizes for throughput (1 is always measured as latency).
        frames: motion length in frames (HumanML3D's longest: 196).
        repeats, warmup: timed and untimed runs per row.
        teacher_steps: DDIM steps of the teacher (50, as the papers).
        compile: also time `torch.compile` (and CUDA graphs on GPU); compilation takes tens of seconds.
        autocast: also time bf16 / fp16 autocast (GPU; bf16 also on CPU).
        threads: CPU thread counts to compare (default: the current setting only).
        training: also time training steps; training_batch is their batch size.
        control: also time generation with each installed controller against text-only (AITS).
        backends: other backends to time beside the torch paths ("onnxruntime": the exported graphs, CPU only,
            runtime/onnx_backend.py); int8 adds their int8 graphs.
    """

    steps: Sequence[int] = (1, 2, 4)
    batches: Sequence[int] = (1, 32, 256)
    frames: int = 196
    repeats: int = 20
    warmup: int = 3
    teacher_steps: int = 50
    compile: bool = False
    autocast: bool = True
    threads: Sequence[int] = ()
    training: bool = True
    training_batch: int = 64
    control: bool = True
    backends: Sequence[str] = ()
    int8: bool = True

    def __post_init__(self) -> None:
        for name in ("repeats", "frames", "teacher_steps", "training_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"--warmup: must be >= 0, got {self.warmup}")
        for name, option in (("steps", "--steps"), ("batches", "--batch"), ("threads", "--threads")):
            bad = [v for v in getattr(self, name) if v < 1]
            if bad:
                raise ValueError(f"{option}: values must be >= 1, got {bad[0]}")

    seed: int = 0
    progress: Callable[[str], None] | None = field(default=None, repr=False)


def _stats(values: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
    }


def _prompts(count: int, offset: int = 0) -> list[str]:
    return [PROMPTS[(offset + i) % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" #{i}") for i in range(count)]


def _pipeline_stages(
    pipe: Any, texts: list[str], lengths: list[int], steps: int, guidance: float, seed: int, cached: bool
) -> tuple[dict[str, float], Tensor]:
    generator = torch.Generator(device=pipe.device).manual_seed(seed)
    return time_stages(pipe, texts, lengths, steps, guidance, generator, clear_cache=not cached)


@torch.no_grad()
def _official_stages(
    pipe: Any, texts: list[str], lengths: list[int], steps: int, guidance: float, seed: int, cached: bool
) -> tuple[dict[str, float], Tensor]:
    device = pipe.device
    generator = torch.Generator(device=device).manual_seed(seed)
    marks = [time.perf_counter()]
    text_emb = official_loop.encode_text(pipe, texts, guided=pipe.kind == "teacher" and guidance > 1.0)
    sync(device)
    marks.append(time.perf_counter())
    latents = official_loop.reverse_diffusion(pipe, text_emb, steps, guidance, generator)
    sync(device)
    marks.append(time.perf_counter())
    features = official_loop.decode(pipe, latents, lengths)
    sync(device)
    marks.append(time.perf_counter())
    official_loop.feats2joints(features)
    sync(device)
    marks.append(time.perf_counter())
    return {s: marks[i + 1] - marks[i] for i, s in enumerate(STAGES)}, features


def time_variants(
    pipe: Any,
    variants: Sequence[tuple[str, str, FastPaths, bool]],
    batch: int,
    frames: int,
    steps: int,
    guidance: float,
    repeats: int,
    warmup: int,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time generations of `batch` motions for each variant, interleaved: every round runs each variant
    once, so that a slow drift of the machine (other load, clock changes) affects all variants alike. Each
    timed run follows an untimed run of the same variant with other prompts, as in a loop over prompts: without
    it a row would pay for the row before it (torch's OpenMP threads spin on after a parallel op and stall an
    onnxruntime graph that starts at once: the shipped model's onnxruntime AITS measured 13.4 ms interleaved
    against 6 ms in a loop, docs/speed.md).

    Args:
        variants: (label, loop, fast paths, cached): loop is "pipeline" (motionlcm with those fast paths) or
            "official" (official_loop); cached keeps the prompt in the cache (same prompts every round,
            encoded once before the round) instead of clearing it (new prompts every round).

    Returns:
        Per variant {"median_ms", "p10_ms", "p90_ms" (text to joints), "aits_ms" (median of
        text + denoise + decode), "stages_ms": {stage: median}, "motions_per_s", "features": features
        (B, T, 263) of one more run on the first `batch` prompts with `seed`, the same for every variant
        (the accuracy check)}.
    """
    lengths, base_threads = [frames] * batch, torch.get_num_threads()
    runs = {"pipeline": _pipeline_stages, "official": _official_stages}

    def once(variant: tuple[str, str, FastPaths, bool], texts: list[str]) -> tuple[dict[str, float], Tensor]:
        _, loop, paths, cached = variant
        if pipe.fast_paths != paths:
            pipe.set_fast_paths(paths)
        # the onnxruntime backend keeps torch on one thread (runtime/fast_paths.py, _apply_backend)
        torch.set_num_threads(1 if paths.backend == "onnxruntime" else paths.threads or base_threads)
        if cached:
            pipe.encode_text(texts)
        return runs[loop](pipe, texts, lengths, steps, guidance, seed, cached)

    times: list[list[dict[str, float]]] = [[] for _ in variants]
    rounds = warmup + repeats
    for i in range(rounds):
        for k, variant in enumerate(variants):
            if len(variants) > 1:  # a lead-in run: each timed run follows a run of its own row (see below)
                once(variant, _prompts(batch, 0 if variant[3] else (rounds + i) * batch))
            stages, _ = once(variant, _prompts(batch, 0 if variant[3] else i * batch))
            if i >= warmup:
                times[k].append(stages)
    results = []
    for variant, timed in zip(variants, times, strict=True):
        _, features = once(variant, _prompts(batch))
        totals = [sum(t.values()) for t in timed]
        aits = [t["text"] + t["denoise"] + t["decode"] for t in timed]
        out = _stats(totals)
        out.update(
            aits_ms=float(np.median(aits) * 1000),
            motions_per_s=batch / float(np.median(totals)),
            stages_ms={s: float(np.median([t[s] for t in timed]) * 1000) for s in STAGES},
            features=features,
        )
        results.append(out)
    torch.set_num_threads(base_threads)
    return results


def environment(device: torch.device) -> dict[str, Any]:
    """Device name, torch version, threads and CPU model for the report."""
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ----------------------------------------------------------------------------------------------------
# inference rows


def inference_variants(device: torch.device, settings: SpeedSettings) -> list[tuple[str, str, FastPaths, bool]]:
    """(label, loop, fast paths, cached prompt) for each inference row, the official eager loop first."""
    default = FastPaths()
    rows = [
        ("official loop, eager", "official", FastPaths.eager(), False),
        ("motionlcm, eager", "pipeline", FastPaths.eager(), False),
        ("+ sdpa attention", "pipeline", FastPaths.eager().replace(attention="sdpa"), False),
        ("+ lean text encoder (default)", "pipeline", default, False),
        ("+ prompt cache hit", "pipeline", default, True),
    ]
    if settings.autocast:
        for name in ("bf16", "fp16") if device.type == "cuda" else ("bf16",):
            rows.append((f"+ {name} autocast", "pipeline", default.replace(autocast=name), False))
    for backend in settings.backends:
        if backend == "onnxruntime" and device.type == "cpu":
            rows.append(("onnxruntime", "pipeline", default.replace(backend="onnxruntime"), False))
            if settings.int8:
                rows.append(
                    ("onnxruntime int8", "pipeline", default.replace(backend="onnxruntime", precision="int8"), False)
                )
    if settings.compile:
        rows.append(("+ torch.compile", "pipeline", default.replace(compile=True, frame_bucket=28), False))
        if device.type == "cuda":
            rows.append(("+ CUDA graphs", "pipeline", default.replace(cuda_graphs=True, frame_bucket=28), False))
            rows.append(
                (
                    "+ CUDA graphs + bf16",
                    "pipeline",
                    default.replace(cuda_graphs=True, frame_bucket=28, autocast="bf16"),
                    False,
                )
            )
    return rows


def _row(
    model: str, label: str, paths: FastPaths, steps: int, batch: int, timing: dict[str, Any], reference: Tensor | None
) -> dict[str, Any]:
    features = timing.pop("features")
    diff = None
    if reference is not None and features is not None and features.shape == reference.shape:
        diff = float((features.float() - reference.float()).abs().max())
    return {
        "model": model,
        "path": label,
        "fast_paths": paths.describe(),
        "steps": steps,
        "batch": batch,
        **timing,
        "max_abs_diff": diff,
    }


def bench_inference(pipe: Any, model: str, settings: SpeedSettings) -> list[dict[str, Any]]:
    """Rows for one pipeline (student or teacher): latency at batch 1 for every variant (and thread count)
    and step count, then throughput at the larger batches for the official loop, the default fast paths
    and compilation (and autocast on GPU)."""
    steps_list = list(settings.steps) if pipe.kind == "student" else [settings.teacher_steps]
    rows, say = [], settings.progress or (lambda _msg: None)
    variants = inference_variants(pipe.device, settings)
    if not official_loop.applies_to(pipe):  # our own VAE or text tokens: no official loop to compare with
        variants = [v for v in variants if v[1] != "official"]
    if pipe.kind != "student":  # the exported graphs are the student's
        variants = [v for v in variants if v[2].backend == "torch"]
    if pipe.device.type == "cpu":
        variants += [(f"default, {n} thread(s)", "pipeline", FastPaths(threads=n), False) for n in settings.threads]
    large = [
        v
        for v in variants
        if not v[0].startswith(("motionlcm, eager", "+ sdpa", "+ prompt", "default, "))
        and (pipe.device.type == "cuda" or "autocast" not in v[0])
    ]
    plan = [(steps, 1, variants, settings.repeats, settings.warmup) for steps in steps_list]
    plan += [(steps_list[0], b, large, max(3, settings.repeats // 4), 1) for b in settings.batches if b > 1]
    for steps, batch, chosen, repeats, warmup in plan:
        say(f"{model}, {steps} step(s), batch {batch}: {len(chosen)} paths interleaved, {repeats} rounds")
        timings = time_variants(
            pipe, chosen, batch, settings.frames, steps, pipe.default_guidance(steps), repeats, warmup, settings.seed
        )
        reference = timings[0]["features"]
        for (label, _, paths, _), timing in zip(chosen, timings, strict=True):
            rows.append(_row(model, label, paths, steps, batch, timing, reference))
    pipe.set_fast_paths(FastPaths())
    return rows


def add_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `speedup` (the official eager loop's median over the row's) per model, steps and batch."""
    base = {(r["model"], r["steps"], r["batch"]): r["median_ms"] for r in rows if r["path"] == "official loop, eager"}
    for r in rows:
        if "steps" in r and (r["model"], r["steps"], r["batch"]) in base:
            r["speedup"] = base[(r["model"], r["steps"], r["batch"])] / r["median_ms"]
    return rows


# ----------------------------------------------------------------------------------------------------
# training rows


def _synthetic_batch(batch: int, frames: int, nfeats: int, captions: list[str], seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(1, frames // 2), frames + 1, (batch,), generator=g)
    lengths[0] = frames
    features = torch.randn(batch, frames, nfeats, generator=g)
    mask = torch.arange(frames)[None, :] < lengths[:, None]
    texts = [captions[int(i)] for i in torch.randint(0, len(captions), (batch,), generator=g)]
    return {"features": features * mask[:, :, None], "lengths": lengths, "mask": mask, "texts": texts}


def _official_distill_loss(system: Any, batch: dict) -> Tensor:
    """The distillation loss as the official step computes it: the teacher called once with the caption
    and once with the empty caption (same math as `DistillSystem.compute_loss`)."""
    previous = system.batched_teacher
    system.batched_teacher = False
    try:
        return system.compute_loss(batch)["loss"]
    finally:
        system.batched_teacher = previous


@torch.no_grad()
def _official_ema(target: torch.nn.Module, online: torch.nn.Module, decay: float) -> None:
    for p_target, p_online in zip(target.parameters(), online.parameters(), strict=True):
        p_target.mul_(decay).add_(p_online, alpha=1 - decay)


def _time_steps(step: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> list[float]:
    times = []
    for i in range(warmup + repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def bench_training(student: Any, teacher: Any, settings: SpeedSettings) -> list[dict[str, Any]]:
    """Samples/s of one optimiser step of the VAE, the teacher and the distillation, eager vs fast.

    `student` and `teacher` are pipelines (their VAE and text encoder are reused; the networks are copied).
    """
    import copy

    from motionlcm.data.normalizer import Normalizer
    from motionlcm.diffusion.ddim import DDIMScheduler
    from motionlcm.diffusion.distill import ema_update
    from motionlcm.models.attention import set_attention_backend
    from motionlcm.train.distill_system import DistillSystem
    from motionlcm.train.teacher_system import TeacherSystem
    from motionlcm.train.vae_system import VAESystem

    device, say = teacher.device, settings.progress or (lambda _msg: None)
    captions = _prompts(2048)
    batch = _synthetic_batch(
        settings.training_batch, settings.frames, teacher.vae.config.nfeats, captions, settings.seed
    )
    batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
    encoder = teacher.text_encoder
    normalizer = Normalizer(teacher.mean.cpu().numpy(), teacher.std.cpu().numpy())
    systems = {
        "vae": lambda: VAESystem(copy.deepcopy(teacher.vae).train().requires_grad_(True), normalizer),
        "teacher": lambda: TeacherSystem(
            copy.deepcopy(teacher.denoiser).train().requires_grad_(True), teacher.vae, encoder, DDIMScheduler()
        ),
        "distillation": lambda: DistillSystem(copy.deepcopy(teacher.denoiser), teacher.vae, encoder, DDIMScheduler()),
    }
    rows = []
    repeats = max(3, settings.repeats // 2)
    for name, build in systems.items():
        for label in ("official loop, eager", "motionlcm (default)"):
            fast = label != "official loop, eager"
            say(f"training {name}: {label}")
            system = build().to(device)
            set_attention_backend(system, "sdpa" if fast else "torch")
            encoder.lean, encoder.cache_size = fast, FastPaths().text_cache if fast else 0
            encoder.clear_cache()
            if fast:
                encoder(captions)  # the cache after the first epoch (captions <= cache size)
            trained = system.denoiser if name == "teacher" else system.vae if name == "vae" else system.student
            optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-4, foreach=fast)

            def step(system: Any = system, optimizer: Any = optimizer, name: str = name, fast: bool = fast) -> None:
                if name == "distillation" and not fast:
                    loss = _official_distill_loss(system, batch)
                else:
                    loss = system.compute_loss(batch)["loss"]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if name == "distillation":
                    (ema_update if fast else _official_ema)(system.target, system.student, 0.95)

            times = _time_steps(step, repeats, settings.warmup, device)
            stats = _stats(times)
            rows.append(
                {
                    "model": f"train {name}",
                    "path": label,
                    "batch": settings.training_batch,
                    "frames": settings.frames,
                    **stats,
                    "samples_per_s": settings.training_batch / (stats["median_ms"] / 1000),
                }
            )
    teacher.set_fast_paths(teacher.fast_paths)  # undo the eager rows' switches on the shared modules
    base = {r["model"]: r["samples_per_s"] for r in rows if r["path"] == "official loop, eager"}
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base[r["model"]]
    return rows


# ----------------------------------------------------------------------------------------------------
# the whole benchmark


def control_hints(controller: Any, frames: int) -> Any:
    """Dense hints for `controller`'s joints at every frame (a temporal-only controller: its prefix joints on
    the first 25 %): the training set's mean pose walked straight ahead at 1.2 m/s. The values do not change
    the cost; they are plausible so that the row is what a user's call does."""
    from motionlcm.data.hints import TEMPORAL_FRACTION, Hints
    from motionlcm.data.skeleton import FPS

    mean = controller.hint_normalizer.mean.astype(np.float32)
    pose = mean - mean[0] * np.array([1.0, 0.0, 1.0], np.float32)
    walk = np.zeros((frames, 1, 3), np.float32)
    walk[:, 0, 2] = 1.2 * np.arange(frames) / FPS
    values = np.broadcast_to(pose, (frames, *pose.shape)) + walk
    mask = np.zeros(values.shape, dtype=bool)
    if controller.spatial:
        mask[:, list(controller.joints)] = True
    else:
        mask[: max(1, int(frames * TEMPORAL_FRACTION)), list(controller.prefix_joints)] = True
    return Hints(np.ascontiguousarray(values), mask)


def bench_control(pipe: Any, settings: SpeedSettings) -> list[dict[str, Any]]:
    """AITS at batch 1 and the fewest steps, text-only and with each installed controller (same prompts)."""
    from motionlcm.eval.timing import measure_aits

    controllers = pipe.controllers()
    if not controllers:
        return []
    steps = min(settings.steps)
    prompts = _prompts(settings.repeats)
    lengths = [settings.frames] * len(prompts)
    say = settings.progress or (lambda _msg: None)
    say(f"control: text-only and {len(controllers)} controller(s), {len(prompts)} sentences each")
    text_only = measure_aits(pipe, prompts, lengths, steps, warmup=settings.warmup, seed=settings.seed)
    rows = []
    for controller in controllers:
        hints = [control_hints(controller, settings.frames)] * len(prompts)
        timed = measure_aits(pipe, prompts, lengths, steps, warmup=settings.warmup, seed=settings.seed, hints=hints)
        rows.append({
            "controller": controller.name,
            "joints": len(hints[0].joints),
            "steps": steps,
            "frames": settings.frames,
            "text_only_ms": 1000 * text_only["aits_s"],
            "controlled_ms": 1000 * timed["aits_s"],
            "ratio": timed["aits_s"] / text_only["aits_s"],
            "stages_ms": {k: 1000 * v for k, v in timed["stages"].items()},
        })  # fmt: skip
    return rows


def run_speed_benchmark(student: Any, teacher: Any | None, settings: SpeedSettings) -> dict[str, Any]:
    """Inference rows for the student (and the teacher), training rows if asked; see the module docstring."""
    rows = bench_inference(student, "student", settings)
    if teacher is not None:
        rows += bench_inference(teacher, "teacher", settings)
    rows = add_speedups(rows)
    control = bench_control(student, settings) if settings.control and student.kind == "student" else []
    training = (
        bench_training(student, teacher or student, settings) if settings.training and teacher is not None else []
    )
    summary = {}
    student_default = [
        r for r in rows if r["model"] == "student" and r["batch"] == 1 and r["path"] == "+ lean text encoder (default)"
    ]
    teacher_default = [
        r for r in rows if r["model"] == "teacher" and r["batch"] == 1 and r["path"] == "+ lean text encoder (default)"
    ]
    if student_default and teacher_default:
        one = min(student_default, key=lambda r: r["steps"])
        summary["student_vs_teacher"] = teacher_default[0]["median_ms"] / one["median_ms"]
    floor = {
        "matmul_gflops": matmul_rate(student.device),
        "memory_gbps": memory_rate(student.device),
        "student_gflop": stage_flops(student, settings.frames, min(settings.steps)),
        "student_weight_mb": weight_megabytes(student),
    }
    if teacher is not None:
        floor["teacher_gflop"] = stage_flops(teacher, settings.frames, settings.teacher_steps)
        floor["teacher_weight_mb"] = weight_megabytes(teacher)
    return {
        "environment": environment(student.device),
        "settings": _settings_dict(settings),
        "inference": rows,
        "control": control,
        "training": training,
        "summary": summary,
        "floor": floor,
    }


def _settings_dict(settings: SpeedSettings) -> dict[str, Any]:
    out = {k: v for k, v in vars(settings).items() if k != "progress"}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def format_speed_tables(report: dict[str, Any]) -> str:
    """The inference and training tables as fixed-width text."""
    env = report["environment"]
    lines = [
        f"device: {env.get('gpu', env['cpu'])} ({env['device']}, {env['threads']} threads), torch {env['torch']}",
        "",
    ]
    head = (
        f"{'model':<8} {'steps':>5} {'batch':>5}  {'path':<32} {'median ms':>10} {'p10-p90 ms':>15} "
        f"{'motions/s':>10} {'speedup':>7} {'text':>6} {'denoise':>7} {'decode':>6} {'joints':>6} {'max|diff|':>9}"
    )
    lines += [head, "-" * len(head)]
    for r in report["inference"]:
        s = r["stages_ms"]
        diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        lines.append(
            f"{r['model']:<8} {r['steps']:>5} {r['batch']:>5}  {r['path']:<32} {r['median_ms']:>10.2f} "
            f"{r['p10_ms']:>7.2f}-{r['p90_ms']:<7.2f} {r['motions_per_s']:>10.1f} {r.get('speedup', 1.0):>6.2f}x "
            f"{s['text']:>6.2f} {s['denoise']:>7.2f} {s['decode']:>6.2f} {s['joints']:>6.2f} {diff:>9}"
        )
    if report.get("control"):
        lines += ["", f"{'control (AITS, batch 1)':<24} {'joints':>6} {'steps':>5} {'text-only ms':>12} "
                  f"{'controlled ms':>13} {'ratio':>6}"]  # fmt: skip
        for r in report["control"]:
            lines.append(
                f"{r['controller']:<24} {r['joints']:>6} {r['steps']:>5} {r['text_only_ms']:>12.2f} "
                f"{r['controlled_ms']:>13.2f} {r['ratio']:>5.2f}x"
            )
    if report["training"]:
        lines += [
            "",
            f"{'training step':<20} {'path':<24} {'batch':>5} {'median ms':>10} {'samples/s':>10} {'speedup':>7}",
        ]
        for r in report["training"]:
            lines.append(
                f"{r['model']:<20} {r['path']:<24} {r['batch']:>5} {r['median_ms']:>10.1f} "
                f"{r['samples_per_s']:>10.1f} {r['speedup']:>6.2f}x"
            )
    floor = report.get("floor")
    if floor:
        rates = ", ".join(f"{k} {v:.0f}" for k, v in floor["matmul_gflops"].items())
        lines += ["", f"float32 matrix products on this device (GFLOP/s): {rates}"]
        best = max(floor["matmul_gflops"].values())
        for model in ("student", "teacher"):
            if f"{model}_gflop" in floor:
                g = floor[f"{model}_gflop"]
                total = sum(g.values())
                parts = ", ".join(f"{k} {v:.3f}" for k, v in g.items())
                lines.append(
                    f"{model} at batch 1: {total:.3f} GFLOP ({parts}); at {best:.0f} GFLOP/s that is "
                    f"{1000 * total / best:.2f} ms of arithmetic"
                )
                if f"{model}_weight_mb" in floor:
                    mb = floor[f"{model}_weight_mb"]
                    parts = ", ".join(f"{k} {v:.1f}" for k, v in mb.items())
                    lines.append(
                        f"  weights: {parts} MB (the denoiser's per evaluation); one pass over them at "
                        f"{floor['memory_gbps']:.1f} GB/s takes {sum(mb.values()) / floor['memory_gbps']:.2f} ms"
                    )
    if "student_vs_teacher" in report["summary"]:
        lines += [
            "",
            f"student (fewest steps) vs teacher at batch 1: {report['summary']['student_vs_teacher']:.1f}x faster",
        ]
    return "\n".join(lines)


def official_size_pipelines(device: str | torch.device, seed: int = 0) -> tuple[Any, Any]:
    """Student and teacher pipelines with the official MotionLCM V2 network sizes (VAE 9 layers x 256,
    16 x 32 latents; denoiser 9 layers x 256; official `configs/modules/{motion_vae,denoiser}.yaml`,
    `latent_dim` in `configs/mld_t2m.yaml`) and random weights, over the default MiniLM text encoder
    (text_dim 384 instead of sentence-t5-large's 768)."""
    from pathlib import Path

    from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
    from motionlcm.models.folder import ModelFolder
    from motionlcm.models.text_encoder import TextEncoder
    from motionlcm.models.vae import MotionVAE, VAEConfig
    from motionlcm.pipeline import MotionLCM

    torch.manual_seed(seed)
    vae = MotionVAE(VAEConfig.v2()).eval()
    encoder = TextEncoder(device=device)
    stats = (np.zeros(263, np.float32), np.ones(263, np.float32))
    pipes = []
    for kind, cond_dim in (("student", 256), ("teacher", None)):
        denoiser = LatentDenoiser(DenoiserConfig.v2(text_dim=encoder.dim, time_cond_proj_dim=cond_dim)).eval()
        folder = ModelFolder(
            Path(f"<official V2 size, random weights, {kind}>"),
            kind,
            vae,
            denoiser,
            *stats,
            encoder.reference(),
            {"sampling": {"scheduler": "v2"}},
        )
        pipes.append(MotionLCM(folder, encoder, device))
    return pipes[0], pipes[1]


# ----------------------------------------------------------------------------------------------------
# the arithmetic floor


@torch.no_grad()
def stage_flops(pipe: Any, frames: int, steps: int) -> dict[str, float]:
    """FLOPs per stage of one batch-1 generation (matrix products and attention, as counted by
    `torch.utils.flop_counter`), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    texts, guidance = _prompts(1), pipe.default_guidance(steps)
    pipe.text_encoder.clear_cache()
    with FlopCounterMode(display=False) as counter:
        text_emb = pipe.encode_text(texts)
    out["text"] = counter.get_total_flops() / 1e9
    noise = torch.randn(1, pipe.vae.config.latent_size, pipe.vae.config.latent_dim, device=pipe.device)
    with FlopCounterMode(display=False) as counter:
        latents = pipe.sample_latents(text_emb, noise, steps, guidance, lengths=[frames])
    out["denoise"] = counter.get_total_flops() / 1e9
    with FlopCounterMode(display=False) as counter:
        pipe.decode(latents, [frames])
    out["decode"] = counter.get_total_flops() / 1e9
    return out


def weight_megabytes(pipe: Any) -> dict[str, float]:
    """Bytes of weights each batch-1 stage must read (MB): at batch 1 every weight is used once, so on a
    CPU these stages stream their weights from memory. The text encoder's token-embedding table is left out
    (only a few rows are read)."""

    def size(module: torch.nn.Module, skip: str = "") -> float:
        return sum(p.numel() * p.element_size() for n, p in module.named_parameters() if not (skip and skip in n)) / 1e6

    decoder_parts = ("decoder", "query_pos_decoder", "latent_post", "final_layer")
    out = {
        "text": size(pipe.text_encoder.model, skip="word_embeddings") if pipe.text_encoder is not None else 0.0,
        "denoise": size(pipe.denoiser),
        "decode": sum(size(getattr(pipe.vae, name)) for name in decoder_parts if hasattr(pipe.vae, name)),
    }
    if hasattr(pipe.vae, "query_pos_decoder"):
        out["decode"] -= pipe.vae.query_pos_decoder.pe[pipe.vae.config.max_len :].numel() * 4 / 1e6
    return out


def memory_rate(device: torch.device, megabytes: int = 256, seconds: float = 0.5) -> float:
    """Measured read bandwidth (GB/s): repeated sums over a `megabytes` float32 buffer."""
    x = torch.ones(megabytes * 2**20 // 4, device=device)
    x.sum()
    sync(device)
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        x.sum()
        count += 1
    sync(device)
    return x.numel() * 4 * count / (time.perf_counter() - start) / 1e9


def matmul_rate(
    device: torch.device,
    shapes: Sequence[tuple[int, int, int]] = ((196, 256, 1024), (2048, 2048, 2048)),
    seconds: float = 0.5,
) -> dict[str, float]:
    """Measured float32 matrix-product rate (GFLOP/s) of this device for (M, K, N) shapes: a decoder-sized
    product and a large one."""
    rates = {}
    for m, k, n in shapes:
        a, w = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        for _ in range(3):
            a @ w
        sync(device)
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            a @ w
            count += 1
        sync(device)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n * count / (time.perf_counter() - start) / 1e9
    return rates
