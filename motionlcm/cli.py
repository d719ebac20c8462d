"""The `motionlcm` command line: one console script, argparse subcommands, heavy imports inside commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from motionlcm import __version__, presets


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default when it has a meaningful one (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        meaningful = action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
        if meaningful and "%(default)" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _split_ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.8,0.05,0.15, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers (train,val,test), got {text!r}")
    return values  # type: ignore[return-value]


# --------------------------------------------------------------------------- data


def cmd_import_bvh(args: argparse.Namespace) -> int:
    from motionlcm.data.bvh_import import import_bvh_library, summarize

    summary = import_bvh_library(
        args.src_dir, args.output, args.rig, args.captions, mirror=args.mirror, seed=args.seed,
        skip_bad=args.skip_bad, workers=args.workers, split_ratios=args.split, force=args.force,
        progress=not args.quiet,
    )
    print(summarize(summary))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from motionlcm.data.check import check_dataset

    report = check_dataset(Path(args.dataset_dir))
    print(report.format())
    return 1 if report.errors else 0


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare and check datasets", formatter_class=_Formatter,
                          description="Prepare and check HumanML3D-format datasets.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{import-bvh,check}")

    imp = data_sub.add_parser(
        "import-bvh", formatter_class=_Formatter, help="turn a BVH motion-capture library into a dataset",
        description="Convert every .bvh file under SRC_DIR into a HumanML3D-format dataset (263-d features, "
        "22 SMPL joints, 20 fps, captions, seeded splits, Mean/Std of the training split). The output is "
        "written to a temporary folder and renamed when complete: a failed import leaves nothing behind.",
    )
    imp.add_argument("src_dir", type=Path, help="folder searched recursively for .bvh files")
    imp.add_argument("--rig", type=Path, required=True,
                     help="rig YAML mapping the source skeleton onto the 22 SMPL joints (docs/rig-files.md)")
    imp.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to create")
    imp.add_argument("--captions", type=Path, default=None,
                     help="caption rules YAML (docs/captions.md); clips whose names the rules do not match "
                     "need a <name>.txt caption file beside the .bvh")
    imp.add_argument("--mirror", action="store_true",
                     help="also add each clip's left/right mirror ('M' prefix) with swapped labels")
    imp.add_argument("--seed", type=int, default=0, help="seed for splits and caption sampling")
    imp.add_argument("--split", type=_split_ratios, default="0.8,0.05,0.15",
                     help="train,val,test fractions >= 0 summing to 1 (stratified by content and style)")
    imp.add_argument("--skip-bad", action="store_true",
                     help="skip unreadable clips (listed in manifest.json) instead of stopping the import")
    imp.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU core)")
    imp.add_argument("--force", action="store_true",
                     help="replace the output folder if it is an earlier import or empty (nothing else is replaced)")
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import_bvh)

    check = data_sub.add_parser(
        "check", formatter_class=_Formatter, help="validate a dataset folder and print a summary",
        description="Validate a HumanML3D-format dataset (files, shapes, NaN/inf, lengths, texts, split "
        "overlap) and print a summary. Exits with status 1 when it finds errors.",
    )
    check.add_argument("dataset_dir", type=Path, help="dataset folder (HumanML3D layout)")
    check.set_defaults(func=cmd_check)


# --------------------------------------------------------------------------- train


EVALUATOR_DEFAULTS = ["output_dir=runs/evaluator", "trainer.max_steps=4000", "checkpoint.every_n_steps=500",
                      "checkpoint.save_top_k=2"]


def cmd_train(args: argparse.Namespace) -> int:
    from motionlcm.config import load_config
    from motionlcm.train.run import train

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if getattr(args, "vae", None):
        overrides.append(f"vae_dir={args.vae}")
    if getattr(args, "teacher", None):
        overrides.append(f"teacher_dir={args.teacher}")
    if args.dataset:
        overrides.append(f"data.root={args.dataset}")
    if args.config is None:  # only the evaluator has built-in defaults (those of configs/evaluator.yaml)
        overrides = [*EVALUATOR_DEFAULTS, *overrides]
    config = load_config(args.config, overrides)
    model_dir = train(args.kind, config, resume=args.resume, force=args.force, progress=not args.quiet)
    print(f"model folder: {model_dir}")
    return 0


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model", formatter_class=_Formatter,
                           description="Train the motion VAE, the MLD teacher, the consistency student or the "
                           "text-motion evaluator.")
    train_sub = train.add_subparsers(dest="kind", required=True, metavar="{vae,mld,lcm,evaluator}")
    helps = {"vae": "train the motion VAE (configs/vae.yaml)",
             "mld": "train the MLD latent-diffusion teacher on a trained VAE (configs/mld.yaml)",
             "lcm": "distil a 1-4 step latent consistency student from a trained teacher (configs/lcm.yaml)",
             "evaluator": "train a contrastive text-motion evaluator for FID / R-precision on any dataset "
                          "(configs/evaluator.yaml)"}
    for kind, text in helps.items():
        p = train_sub.add_parser(
            kind, help=text, formatter_class=_Formatter,
            description=f"{text[0].upper()}{text[1:]}. Checkpoints (best-k by val/loss and last.ckpt), logs, the "
            "resolved config and the exported model folder go to the output directory. Any config value can be "
            "overridden as KEY=VALUE, e.g. trainer.max_steps=2000 data.batch_size=32 trainer.devices=2.",
        )
        if kind == "evaluator":
            p.add_argument("--config", type=Path, default=None,
                           help="YAML config (default: the built-in defaults, as in configs/evaluator.yaml)")
        else:
            p.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
        p.add_argument("--dataset", default=None, help="HumanML3D-layout dataset folder (overrides data.root)")
        p.add_argument("-o", "--output-dir", default=None, help="run folder (overrides output_dir in the config)")
        if kind == "mld":
            p.add_argument("--vae", default=None, help="trained VAE model folder (overrides vae_dir)")
        if kind == "lcm":
            p.add_argument("--teacher", default=None, help="trained MLD model folder (overrides teacher_dir)")
        p.add_argument("--resume", action="store_true", help="continue from <output_dir>/checkpoints/last.ckpt")
        p.add_argument("--force", action="store_true", help="start over even if the output directory holds a run")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dotted keys)")
        p.set_defaults(func=cmd_train)


# --------------------------------------------------------------------------- convert


def cmd_convert_official(args: argparse.Namespace) -> int:
    import torch

    from motionlcm.models.convert import convert_official_checkpoint

    text_encoder = None
    if args.text_encoder:
        text_encoder = {"kind": "sentence-transformers", "source": str(Path(args.text_encoder).resolve()), "dim": 768}
    out = convert_official_checkpoint(
        args.checkpoint, args.version, args.output, text_encoder=text_encoder, mean_std_dir=args.mean_std,
        dtype=torch.float16 if args.fp16 else torch.float32, overwrite=args.force,
    )
    print(f"model folder: {out}")
    return 0


def cmd_convert_half(args: argparse.Namespace) -> int:
    import torch

    from motionlcm.models.folder import load_model_folder, save_model_folder

    folder = load_model_folder(args.model_dir)
    out = save_model_folder(args.output, vae=folder.vae, denoiser=folder.denoiser, mean=folder.mean, std=folder.std,
                            text_encoder=folder.text_encoder, meta=folder.meta, dtype=torch.float16,
                            overwrite=args.force)
    print(f"model folder: {out}")
    return 0


def _add_convert_commands(sub: argparse._SubParsersAction) -> None:
    convert = sub.add_parser("convert", help="convert official checkpoints; store model folders in half precision", formatter_class=_Formatter,
                             description="Convert official MotionLCM/MLD checkpoints into model folders, or copy a model folder in half precision.")
    convert_sub = convert.add_subparsers(dest="source", required=True, metavar="{official,half}")
    p = convert_sub.add_parser(
        "official", formatter_class=_Formatter, help="an official MotionLCM / MLD .ckpt (V1 or V2)",
        description="Turn an official MotionLCM/MLD checkpoint (a dict whose state_dict holds vae.*, denoiser.* "
        "and evaluator weights) into a model folder. Weights are loaded without unpickling arbitrary objects; "
        "missing, unexpected or mis-shaped keys are listed in one error.",
    )
    p.add_argument("checkpoint", type=Path, help="the official .ckpt file")
    p.add_argument("--version", required=True, choices=presets.VERSIONS,
                   help="v1 (configs_v1/, latent 1x256) or v2 (configs/, latent 16x32); not auto-detected")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to create")
    p.add_argument("--mean-std", type=Path, default=None,
                   help="folder with the HumanML3D Mean.npy/Std.npy the model was trained with")
    p.add_argument("--text-encoder", default=None,
                   help="local folder of sentence-t5-large (the official text encoder) to record in the model")
    p.add_argument("--fp16", action="store_true", help="store the weights in half precision")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(func=cmd_convert_official)
    p = convert_sub.add_parser(
        "half", formatter_class=_Formatter, help="store a model folder's weights in half precision",
        description="Copy a model folder with float16 weights (half the size; loading casts back to float32).",
    )
    p.add_argument("model_dir", type=Path, help="the model folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(func=cmd_convert_half)


# --------------------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    from motionlcm.eval.protocol import EvalSettings, evaluate, format_table, load_evaluator, load_subject
    from motionlcm.runtime.device import resolve_device

    output = Path(args.output)
    if output.exists() and not args.force:
        raise ValueError(f"{output}: exists; pass --force to replace it")
    device = str(resolve_device(args.device))
    settings = EvalSettings(
        split=args.split, replications=args.replications, batch_size=args.batch_size, steps=args.steps,
        guidance=args.guidance, multimodality=not args.no_mm, mm_samples=args.mm_samples,
        mm_repeats=args.mm_repeats, mm_times=args.mm_times, min_length=args.min_length, seed=args.seed,
    )
    evaluator = load_evaluator(args.evaluator, device)
    subject = load_subject(args.model, settings, device, args.text_encoder)
    report = evaluate(subject, args.dataset, evaluator, settings, progress=not args.quiet)
    report["evaluator"] = str(args.evaluator)
    if args.aits and subject.kind != "vae":
        from motionlcm.eval.timing import aits_inputs, measure_aits
        from motionlcm.pipeline import MotionLCM

        pipe = MotionLCM.from_pretrained(args.model, device=device, text_encoder_path=args.text_encoder)
        prompts, lengths = aits_inputs(args.dataset, args.split, args.aits, args.min_length)
        report["aits"] = measure_aits(pipe, prompts, lengths, settings.steps, settings.guidance)
    print(format_table(report))
    if "reconstruction" in report:
        rec = report["reconstruction"]
        print(f"reconstruction: MPJPE {rec['mpjpe_mm']:.1f} mm (unaligned {rec['mpjpe_unaligned_mm']:.1f} mm), "
              f"feature error {rec['feature_error']:.4f} over {rec['frames']} frames")
    if "aits" in report:
        a = report["aits"]
        stages = ", ".join(f"{k} {1000 * v:.1f}" for k, v in a["stages"].items())
        print(f"AITS {1000 * a['aits_s']:.1f} ms/sentence at batch 1 on {a['device']} ({stages} ms)")
    print(f"{report['samples']} samples ({report['r_precision_samples']} in R-precision groups), "
          f"{settings.replications} replications; dropped: {report['dropped'] or 'nothing'}")
    from motionlcm.io.atomic import write_json_atomic

    write_json_atomic(output, report)
    print(f"metrics: {output}")
    return 0


def _add_eval_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="FID, R-precision, MM-Dist, Diversity, MultiModality and AITS", formatter_class=_Formatter,
        description="Evaluate a model folder on a dataset split by the T2M/MLD/MotionLCM protocol: each "
        "replication draws a random caption and crop per item, generates at the real lengths, and scores "
        "R-precision (groups of 32), MM-Dist, FID, Diversity (300 pairs) and MultiModality (100 captions x 30 "
        "generations). Prints the paper-style table (mean +/- 95%% CI) and writes metrics.json with every "
        "replication. A VAE folder is evaluated by reconstruction (adds MPJPE and feature error).",
    )
    p.add_argument("--model", required=True, help="model folder (teacher, student or VAE)")
    p.add_argument("--dataset", required=True, help="HumanML3D-layout dataset folder")
    p.add_argument("--evaluator", required=True,
                   help="evaluator folder from `motionlcm train evaluator`, or the official T2M deps folder")
    p.add_argument("--split", default="test", help="split to evaluate")
    p.add_argument("--replications", type=int, default=20, help="independent repetitions (papers: 20)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: teacher 50, student 1)")
    p.add_argument("--guidance", type=float, default=None,
                   help="guidance scale (default: teacher 7.5; V2 student 8.0/12.5/13.5 for 1/2/4 steps)")
    p.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")
    p.add_argument("--no-mm", action="store_true", help="skip MultiModality (saves mm-samples x mm-repeats generations)")
    p.add_argument("--mm-samples", type=int, default=100, help="captions drawn for MultiModality")
    p.add_argument("--mm-repeats", type=int, default=30, help="generations per MultiModality caption")
    p.add_argument("--mm-times", type=int, default=10, help="pairs per caption in MultiModality")
    p.add_argument("--min-length", type=int, default=40, help="shortest clip kept, in frames (T2M 40; 20 for short BVH clips)")
    p.add_argument("--seed", type=int, default=1234, help="seed of every random draw (MLD: 1234)")
    p.add_argument("--aits", type=int, default=100, metavar="N",
                   help="also time N sentences at batch 1 (average inference time per sentence); 0 skips")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--text-encoder", default=None, help="local text-encoder folder overriding the model's reference")
    p.add_argument("-o", "--output", default="metrics.json", help="where to write the metrics JSON")
    p.add_argument("--force", action="store_true", help="replace an existing metrics file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


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
    if args.json and Path(args.json).exists() and not args.force:
        raise ValueError(f"{args.json}: exists; pass --force to replace it")
    if args.arch == "official-v2":
        student, teacher = official_size_pipelines(device)
    else:
        model = Path(args.model) if args.model else default_model_dir()
        student = MotionLCM.from_pretrained(model, device=device)
        if student.kind != "lcm":
            raise ValueError(f"{model}: --model must be a student (LCM) folder, got a {student.kind} folder")
        teacher_dir = args.teacher or (model.parent / f"{model.name}-teacher" if not args.model else None)
        teacher = None
        if teacher_dir is not None and str(teacher_dir) != "none":
            teacher = MotionLCM.from_pretrained(teacher_dir, device=device)
    settings = SpeedSettings(
        steps=args.steps, batches=args.batch, frames=args.frames, repeats=args.repeats, warmup=args.warmup,
        compile=args.compile, autocast=not args.no_autocast, threads=args.threads or (), training=not args.no_training,
        training_batch=args.training_batch,
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


def _add_bench_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="speed: AITS per stage, throughput, training samples/s, each fast path vs eager",
        formatter_class=_Formatter,
        description="Time text-to-motion generation at batch 1 (AITS: text encoding, denoising, VAE decoding; "
        "plus features to joints) and throughput at larger batches, for the student at each step count and "
        "the teacher at 50 DDIM steps. Each fast path (fused attention, lean text encoder, prompt cache, "
        "autocast, torch.compile, CUDA graphs, threads) is timed against the plain eager path and against a "
        "faithful re-implementation of the official inference loop in the same process, with the largest "
        "feature difference from eager as its accuracy check. Training rows time one optimiser step of the "
        "VAE, the teacher and the distillation. Prints tables; --json writes every number.",
    )
    p.add_argument("--model", default=None, help="student model folder (default: the shipped model)")
    p.add_argument("--teacher", default=None,
                   help="teacher model folder ('none' skips it; default: <model>-teacher next to the shipped model)")
    p.add_argument("--arch", choices=("shipped", "official-v2"), default="shipped",
                   help="official-v2: random-weight networks of the official MotionLCM V2 size instead of --model")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--steps", type=_int_list, default=[1, 2, 4], help="student step counts, comma-separated")
    p.add_argument("--batch", type=_int_list, default=[1, 32, 256], help="batch sizes, comma-separated (1 = latency)")
    p.add_argument("--frames", type=int, default=196, help="frames per motion (HumanML3D maximum 196)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per batch-1 row (a quarter for larger batches)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile (and CUDA graphs on GPU); compiling takes tens of seconds")
    p.add_argument("--no-autocast", action="store_true", help="skip the bf16/fp16 autocast rows")
    p.add_argument("--threads", type=_int_list, default=None, help="CPU thread counts to compare, e.g. 1,2")
    p.add_argument("--no-training", action="store_true", help="skip the training-step rows")
    p.add_argument("--training-batch", type=int, default=64, help="batch size of the training-step rows")
    p.add_argument("--json", default=None, metavar="OUT", help="write the full results as JSON")
    p.add_argument("--force", action="store_true", help="replace an existing JSON file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_bench)


# --------------------------------------------------------------------------- generate / render / export


def cmd_generate(args: argparse.Namespace) -> int:
    from motionlcm.generate import Request, check_prompt, generate, parse_formats, read_prompt_file

    formats = parse_formats(args.format)
    if (args.prompt is None) == (args.prompts is None):
        raise ValueError("give one prompt or --prompts FILE")
    if not args.output.strip():
        raise ValueError("-o/--output: empty folder name (use -o . for the current folder)")
    requests = read_prompt_file(args.prompts) if args.prompts else [Request(check_prompt(args.prompt))]
    written = generate(requests, Path(args.output), model=args.model, seconds=args.seconds, frames=args.frames,
                       steps=args.steps, guidance=args.guidance, seed=args.seed, num=args.num, fps=args.fps,
                       formats=formats, force=args.force, device=args.device, progress=not args.quiet)
    for path in written:
        print(path)
    return 0


def _add_generate_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="text -> motion files (.npy, .bvh, .mp4, .json)", formatter_class=_Formatter,
        description="Generate motions from a prompt (or a file of prompts) with a model folder (default: the "
        "model shipped in checkpoints/). Each motion is written as <index>_<prompt words>.npy (joints (T, 22, 3) "
        "in metres, y up, 20 fps) with _features.npy (263-d features), .bvh (22 SMPL joints, centimetres), .mp4 "
        "(stick figure; .gif without ffmpeg) and .json (prompt, seed, settings, timings). Every motion has its "
        "own seed, recorded in its .json. Nothing is written unless everything succeeds.",
    )
    p.add_argument("prompt", nargs="?", default=None, help='the text, e.g. "a person waves with the left hand"')
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="one prompt per line: 'Ns text' (e.g. '3s walk forward'), 'text#seconds' or plain text (--seconds); "
                   "a leading number without 's' is part of the prompt ('2 people dance')")
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    p.add_argument("--model", default=None, help="model folder (default: checkpoints/bandai-namco or $MOTIONLCM_MODEL)")
    p.add_argument("--seconds", type=float, default=None, help="length in seconds (default 4; at most 9.8)")
    p.add_argument("--frames", type=int, default=None, help="length in frames at 20 fps (instead of --seconds)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (student: 1, 2 or 4, default 1; teacher 50)")
    p.add_argument("--guidance", type=float, default=None,
                   help="guidance scale (default: the model's; V2 student 8.0/12.5/13.5 for 1/2/4 steps)")
    p.add_argument("--seed", type=int, default=None, help="seed of the first motion; the k-th uses seed + k")
    p.add_argument("--num", type=int, default=1, help="motions per prompt (at most 100,000 motions per call)")
    p.add_argument("--fps", type=float, default=None,
                   help="BVH frame rate, 1..1000 (20 native; 24/30/60 resample by slerp)")
    p.add_argument("--format", default="npy,bvh,mp4,json", help="comma-separated subset of npy,bvh,mp4,gif,json")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)


def _check_output_file(path: Path, force: bool) -> None:
    """An output file name that is not empty, not a device or folder, and new unless --force."""
    from motionlcm.io.atomic import check_targets

    if not str(path).strip():
        raise ValueError("-o/--output: empty file name")
    check_targets([path], force)


def cmd_render(args: argparse.Namespace) -> int:
    from motionlcm.export.bvh_export import check_fps
    from motionlcm.render import render_file

    if args.fps is not None:
        check_fps(args.fps, "--fps")
    _check_output_file(Path(args.output), args.force)
    print(render_file(args.input, args.output, title=args.title, fps=args.fps))
    return 0


def _add_render_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="stick-figure animation of a .npy or .bvh motion", formatter_class=_Formatter,
        description="Render a motion file as a stick-figure animation at its real speed: .npy joints (T, 22, 3) or "
        "263-d features (T, 263) at 20 fps (dataset clips included), .npz with a joints or features array, or a "
        ".bvh clip of any rig. The output type follows the suffix: .mp4 (.gif when no ffmpeg), .gif, or .png "
        "for a strip of frames.",
    )
    p.add_argument("input", help="the motion file")
    p.add_argument("-o", "--output", required=True, help="anim.mp4, anim.gif or strip.png")
    p.add_argument("--title", default=None, help="title above the figure (default: the file name)")
    p.add_argument("--fps", type=float, default=None, help="frame rate of a .npy input, 1..1000 (default 20)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_render)


def cmd_export(args: argparse.Namespace) -> int:
    from motionlcm.export.bvh_export import check_fps, check_output_frames, features_to_bvh, joints_to_bvh
    from motionlcm.io.bvh import write_bvh

    if args.output is not None and not args.output.strip():
        raise ValueError("-o/--output: empty file name")
    src, out = Path(args.input), Path(args.output) if args.output else Path(args.input).with_suffix(".bvh")
    source_fps = check_fps(args.source_fps, "--source-fps")
    fps = check_fps(args.fps, "--fps") if args.fps is not None else None
    frames = _motion_npy_shape(src)[0]
    check_output_frames(frames, source_fps, fps, where=f"{src} at --fps {fps:g}" if fps else str(src))
    _check_output_file(out, args.force)
    array = _load_motion_array(src)
    convert = joints_to_bvh if array.ndim == 3 else features_to_bvh
    write_bvh(out, convert(array, fps=source_fps, target_fps=fps))
    print(out)
    return 0


def _motion_npy_shape(path: Path) -> tuple[int, ...]:
    """The shape a .npy motion declares, checked (joints or features, plain numbers, complete) unloaded."""
    from motionlcm.io.npy import read_npy_header

    if path.suffix != ".npy":
        raise ValueError(f"{path}: expected a .npy file of joints (T, 22, 3) or features (T, 263)")
    shape = read_npy_header(path).shape
    joints = len(shape) == 3 and shape[1:] == (22, 3)
    features = len(shape) == 2 and shape[1] == 263
    if not (joints or features) or shape[0] < 1:
        raise ValueError(f"{path}: shape {shape} is neither joints (T, 22, 3) nor features (T, 263) with T >= 1")
    return shape


def _load_motion_array(path: Path):
    import numpy as np

    _motion_npy_shape(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable .npy ({error})") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: contains NaN or infinite values")
    return array


def _add_export_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="convert a .npy motion to BVH", formatter_class=_Formatter,
        description="Convert joints (T, 22, 3) or 263-d features (T, 263) to a BVH clip with the 22 SMPL joints "
        "(centimetres; rotations solved so that forward kinematics reproduces the joints within 1 cm).",
    )
    p.add_argument("input", help="the .npy motion")
    p.add_argument("--to", choices=("bvh",), default="bvh", help="target format")
    p.add_argument("-o", "--output", default=None, help="output file (default: the input with .bvh)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of the BVH, 1..1000 (default: the source's); clips of at most 100,000 frames")
    p.add_argument("--source-fps", type=float, default=20.0, help="frame rate of the .npy input, 1..1000")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_export)


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motionlcm", formatter_class=_Formatter,
                                     description="Real-time text-to-motion with latent consistency models.")
    parser.add_argument("--version", action="version", version=f"motionlcm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{generate,render,export,data,train,eval,convert}")
    _add_generate_command(sub)
    _add_render_command(sub)
    _add_export_command(sub)
    _add_data_commands(sub)
    _add_train_commands(sub)
    _add_eval_command(sub)
    _add_bench_command(sub)
    _add_convert_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; expected errors (bad input) print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        if os.environ.get("MOTIONLCM_DEBUG"):
            raise
        print(f"motionlcm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("motionlcm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
