"""`motionlcm eval`: the paper's metrics and the kinematic ones on a dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm.cli._common import Formatter, add_control_method_options


def cmd_eval(args: argparse.Namespace) -> int:
    from motionlcm.eval.protocol import EvalSettings, evaluate, format_report, load_evaluator, load_subject
    from motionlcm.runtime.device import resolve_device

    output = Path(args.output)
    if output.exists() and not args.force:
        raise ValueError(f"{output}: exists; pass --force to replace it")
    device = str(resolve_device(args.device))
    settings = EvalSettings(
        split=args.split,
        replications=args.replications,
        batch_size=args.batch_size,
        steps=args.steps,
        guidance=args.guidance,
        multimodality=not args.no_mm,
        mm_samples=args.mm_samples,
        mm_repeats=args.mm_repeats,
        mm_times=args.mm_times,
        min_length=args.min_length,
        seed=args.seed,
        control=args.control,
        density=args.density,
        temporal=args.temporal,
        warp=not args.no_warp,
        control_method=args.control_method,
        clt_steps=args.clt_steps,
    )
    evaluator = load_evaluator(args.evaluator, device)
    subject = load_subject(args.model, settings, device, args.text_encoder)
    report = evaluate(subject, args.dataset, evaluator, settings, progress=not args.quiet)
    report["evaluator"] = str(args.evaluator)
    if args.aits and subject.kind != "vae":
        import numpy as np

        from motionlcm.eval.timing import aits_clips, measure_aits
        from motionlcm.pipeline import MotionLCM

        pipe = MotionLCM.from_pretrained(args.model, device=device, text_encoder_path=args.text_encoder)
        prompts, lengths, joints = aits_clips(args.dataset, args.split, args.aits, args.min_length)
        hints = None
        if args.control and args.control_method == "controlnet":  # time the ControlNet path (clt is not real time)
            from motionlcm.data.hints import hints_from_array, joint_set
            from motionlcm.eval.control import real_test_hints

            rng = np.random.default_rng(settings.seed)
            picks = joint_set(args.control)
            hints = [hints_from_array(real_test_hints(j, picks, args.density, rng, args.temporal)) for j in joints]
        report["aits"] = measure_aits(pipe, prompts, lengths, settings.steps, settings.guidance, hints=hints)
    print(format_report(report))
    from motionlcm.io.atomic import write_json_atomic

    write_json_atomic(output, report)
    print(f"metrics: {output}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="FID, R-precision, MM-Dist, Diversity, MultiModality and AITS",
        formatter_class=Formatter,
        description="Evaluate a model folder on a dataset split by the T2M/MLD/MotionLCM protocol: each "
        "replication draws a random caption and crop per item, generates at the real lengths, and scores "
        "R-precision (groups of 32), MM-Dist, FID, Diversity (300 pairs) and MultiModality (100 captions x 30 "
        "generations). Prints the paper-style table (mean +/- 95%% CI) and writes metrics.json with every "
        "replication. A VAE folder is evaluated by reconstruction (adds MPJPE and feature error).",
    )
    p.add_argument(
        "--model", required=True, help="model folder (teacher, student or VAE), or a shipped one by name (bandai-namco)"
    )
    p.add_argument("--dataset", required=True, help="HumanML3D-layout dataset folder")
    p.add_argument(
        "--evaluator",
        required=True,
        help="evaluator folder from `motionlcm train evaluator`, a shipped one by name (bandai-namco-evaluator, "
        "also in an installed package), or the official T2M deps folder",
    )
    p.add_argument("--split", default="test", help="split to evaluate")
    p.add_argument("--replications", type=int, default=20, help="independent repetitions (papers: 20)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: teacher 50, student 1)")
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help=(
            "guidance scale (default: the model folder's own, meta.sampling.guidance, e.g. 3 for the shipped "
            "student; else teacher 7.5, V2 student 8.0/12.5/13.5 for 1/2/4 steps)"
        ),
    )
    p.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")
    p.add_argument(
        "--no-mm", action="store_true", help="skip MultiModality (saves mm-samples x mm-repeats generations)"
    )
    p.add_argument("--mm-samples", type=int, default=100, help="captions drawn for MultiModality")
    p.add_argument("--mm-repeats", type=int, default=30, help="generations per MultiModality caption")
    p.add_argument("--mm-times", type=int, default=10, help="pairs per caption in MultiModality")
    p.add_argument(
        "--min-length", type=int, default=40, help="shortest clip kept, in frames (T2M 40; 20 for short BVH clips)"
    )
    p.add_argument("--seed", type=int, default=1234, help="seed of every random draw (MLD: 1234)")
    p.add_argument(
        "--aits",
        type=int,
        default=100,
        metavar="N",
        help="also time N sentences at batch 1 (average inference time per sentence); 0 skips",
    )
    p.add_argument(
        "--control",
        default=None,
        metavar="JOINTS",
        help="evaluate control: generate every clip under hints taken from its own joints (pelvis, all = the "
        "OmniControl six, or a joint name) with the model's installed controller; adds Traj. err, Loc. err "
        "(20 / 50 cm) and Avg. err; MultiModality is skipped (as the official control tests)",
    )
    p.add_argument(
        "--density",
        type=int,
        default=100,
        help="with --control: 100 or 25 (%% of the frames, random) or 1, 2, 5 (frames), official TEST_DENSITY",
    )
    p.add_argument("--temporal", action="store_true", help="with --control: hints on the first 25 %% of the frames")
    p.add_argument(
        "--no-warp", action="store_true", help="with --control: score the generated motion without motion warping"
    )
    add_control_method_options(p)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--text-encoder", default=None, help="local text-encoder folder overriding the model's reference")
    p.add_argument("-o", "--output", default="metrics.json", help="where to write the metrics JSON")
    p.add_argument("--force", action="store_true", help="replace an existing metrics file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)
