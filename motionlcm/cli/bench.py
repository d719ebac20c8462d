"""`motionlcm bench`: AITS per stage, throughput and training speed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from motionlcm.cli._common import Formatter, int_list


def cmd_bench(args: argparse.Namespace) -> int:

    from motionlcm.bench.speed import (
        SpeedSettings,
        format_speed_tables,
        official_size_pipelines,
        run_speed_benchmark,
    )
    from motionlcm.pipeline import MotionLCM, default_model_dir
    from motionlcm.runtime.device import resolve_device

    device = resolve_device(args.device).type
    if args.backend == "onnxruntime":
        from motionlcm.runtime.onnx_backend import require_onnxruntime

        require_onnxruntime()
        if device != "cpu":
            raise ValueError(f"--backend onnxruntime: times the CPU (got --device {device})")
    if args.json and Path(args.json).exists() and not args.force:
        raise ValueError(f"{args.json}: exists; pass --force to replace it")
    if args.arch == "official-v2":
        student, teacher = official_size_pipelines(device)
    else:
        model = Path(args.model) if args.model else default_model_dir()
        student = MotionLCM.from_pretrained(model, device=device)
        if student.kind != "student":
            raise ValueError(f"{model}: --model must be a student (LCM) folder, got a {student.kind} folder")
        teacher_dir = args.teacher or (model.parent / f"{model.name}-teacher" if not args.model else None)
        teacher = None
        if teacher_dir is not None and str(teacher_dir) != "none":
            teacher = MotionLCM.from_pretrained(teacher_dir, device=device)
    settings = SpeedSettings(
        steps=args.steps,
        batches=args.batch,
        frames=args.frames,
        repeats=args.repeats,
        warmup=args.warmup,
        compile=args.compile,
        autocast=not args.no_autocast,
        threads=args.threads or (),
        training=not args.no_training,
        control=not args.no_control,
        training_batch=args.training_batch,
        backends=() if args.backend == "torch" else (args.backend,),
        int8=not args.no_int8,
        progress=None if args.quiet else (lambda msg: print(f"  timing {msg}", file=sys.stderr, flush=True)),
    )
    report = run_speed_benchmark(student, teacher, settings)
    report["model"] = args.arch if args.arch == "official-v2" else str(student.folder.path)
    print(format_speed_tables(report))
    if args.json:
        from motionlcm.io.atomic import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"results: {args.json}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="speed: AITS per stage, throughput, training samples/s, each fast path vs eager",
        formatter_class=Formatter,
        description="Time text-to-motion generation at batch 1 (AITS: text encoding, denoising, VAE decoding; "
        "plus features to joints) and throughput at larger batches, for the student at each step count and "
        "the teacher at 50 DDIM steps, and with each installed controller (ControlNet) against text-only. Each fast path (fused attention, lean text encoder, prompt cache, "
        "autocast, torch.compile, CUDA graphs, threads) is timed against the plain eager path and against a "
        "faithful re-implementation of the official inference loop in the same process, with the largest "
        "feature difference from eager as its accuracy check. Training rows time one optimiser step of the "
        "VAE, the teacher and the distillation. Prints tables; --json writes every number.",
    )
    p.add_argument("--model", default=None, help="student model folder (default: the shipped model)")
    p.add_argument(
        "--teacher",
        default=None,
        help="teacher model folder ('none' skips it; default: <model>-teacher next to the shipped model)",
    )
    p.add_argument(
        "--arch",
        choices=("shipped", "official-v2"),
        default="shipped",
        help="official-v2: random-weight networks of the official MotionLCM V2 size instead of --model",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--steps", type=int_list, default=[1, 2, 4], help="student step counts, comma-separated")
    p.add_argument("--batch", type=int_list, default=[1, 32, 256], help="batch sizes, comma-separated (1 = latency)")
    p.add_argument("--frames", type=int, default=196, help="frames per motion (HumanML3D maximum 196)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per batch-1 row (a quarter for larger batches)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing")
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile (and CUDA graphs on GPU); compiling takes tens of seconds",
    )
    p.add_argument("--no-autocast", action="store_true", help="skip the bf16/fp16 autocast rows")
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="onnxruntime: also time the exported ONNX graphs in onnxruntime (fp32 and int8 rows, CPU) beside the "
        "torch paths and the official loop; exported once into the cache (pip install 'motionlcm[onnx]')",
    )
    p.add_argument("--no-int8", action="store_true", help="with --backend onnxruntime: skip the int8 row")
    p.add_argument("--threads", type=int_list, default=None, help="CPU thread counts to compare, e.g. 1,2")
    p.add_argument("--no-training", action="store_true", help="skip the training-step rows")
    p.add_argument(
        "--no-control",
        action="store_true",
        help="skip the control rows (AITS with each installed controller vs text-only, dense hints)",
    )
    p.add_argument("--training-batch", type=int, default=64, help="batch size of the training-step rows")
    p.add_argument("--json", default=None, metavar="OUT", help="write the full results as JSON")
    p.add_argument("--force", action="store_true", help="replace an existing JSON file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_bench)
