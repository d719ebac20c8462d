"""`motionlcm generate`: text to motion files."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm.cli._common import Formatter, add_control_method_options


def cmd_generate(args: argparse.Namespace) -> int:
    from motionlcm.generate import ControlSpec, Request, check_prompt, generate, parse_formats, read_prompt_file

    formats = parse_formats(args.format)
    if (args.prompt is None) == (args.prompts is None):
        raise ValueError("give one prompt or --prompts FILE")
    if not args.output.strip():
        raise ValueError("-o/--output: empty folder name (use -o . for the current folder)")
    requests = read_prompt_file(args.prompts) if args.prompts else [Request(check_prompt(args.prompt))]
    written = generate(
        requests,
        Path(args.output),
        model=args.model,
        seconds=args.seconds,
        frames=args.frames,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        num=args.num,
        fps=args.fps,
        formats=formats,
        force=args.force,
        device=args.device,
        progress=not args.quiet,
        control=ControlSpec(
            args.control,
            args.trajectory,
            tuple(args.keyframe or ()),
            args.control_method,
            args.clt_steps,
            not args.no_warp,
        ),  # fmt: skip
    )
    for path in written:
        print(path)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="text -> motion files (.npy, .bvh, .mp4, .json)",
        formatter_class=Formatter,
        description="Generate motions from a prompt (or a file of prompts) with a model folder (default: the "
        "model shipped in checkpoints/). Each motion is written as <index>_<prompt words>.npy (joints (T, 22, 3) "
        "in metres, y up, 20 fps) with _features.npy (263-d features), .bvh (22 SMPL joints, centimetres), .mp4 "
        "(stick figure; .gif without ffmpeg) and .json (prompt, seed, settings, timings). Every motion has its "
        "own seed, recorded in its .json. Nothing is written unless everything succeeds.",
    )
    p.add_argument("prompt", nargs="?", default=None, help='the text, e.g. "a person waves with the left hand"')
    p.add_argument(
        "--prompts",
        default=None,
        metavar="FILE",
        help="one prompt per line: 'Ns text' (e.g. '3s walk forward'), 'text#seconds' or plain text (--seconds); "
        "a leading number without 's' is part of the prompt ('2 people dance')",
    )
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    p.add_argument(
        "--model",
        default=None,
        help="model folder or a shipped model's name, e.g. bandai-namco-teacher "
        "(default: checkpoints/bandai-namco or $MOTIONLCM_MODEL)",
    )
    p.add_argument("--seconds", type=float, default=None, help="length in seconds (default 4; at most 9.8)")
    p.add_argument("--frames", type=int, default=None, help="length in frames at 20 fps (instead of --seconds)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (student: 1, 2 or 4, default 1; teacher 50)")
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help=(
            "guidance scale (default: the model folder's own, 3 for the shipped student; a V2 student without "
            "one 8.0/12.5/13.5 for 1/2/4 steps, inside the scales it was distilled on)"
        ),
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the first motion; the k-th uses seed + k")
    p.add_argument("--num", type=int, default=1, help="motions per prompt (at most 100,000 motions per call)")
    p.add_argument(
        "--fps", type=float, default=None, help="BVH frame rate, 1..1000 (20 native; 24/30/60 resample by slerp)"
    )
    p.add_argument("--format", default="npy,bvh,mp4,json", help="comma-separated subset of npy,bvh,mp4,gif,json")
    control = p.add_argument_group(
        "control",
        "steer the motion with joint targets (needs a controller in MODEL/control/, see `motionlcm train control`); "
        "coordinates in metres, y up, in the motion's own frame: the first frame's pelvis at the origin on the "
        "floor, facing +z",
    )
    control.add_argument(
        "--control",
        default=None,
        metavar="HINTS.npy",
        help="float array (T, 22, 3), NaN where a joint (or an axis) is free; the motion gets T frames unless "
        "--seconds/--frames say otherwise (they must then equal T)",
    )
    control.add_argument(
        "--trajectory",
        default=None,
        metavar="PATH.csv",
        help="rows time_s,x,z: the pelvis on the floor plane, linearly interpolated between rows, height free; "
        "the motion lasts at least until the last row",
    )
    control.add_argument(
        "--keyframe",
        action="append",
        metavar="T:JOINT:X,Y,Z",
        help="hold JOINT (an SMPL joint name, e.g. right_wrist, pelvis, left_foot) at X,Y,Z at T seconds; "
        "repeatable, combines with --trajectory",
    )
    add_control_method_options(control)
    control.add_argument(
        "--no-warp",
        action="store_true",
        help="keep the generated motion as it is instead of bending it the last centimetres onto the targets",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)
