"""`motionlcm generate`: text to motion files."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm.cli._common import Formatter, add_backend_options, add_control_method_options


def cmd_generate(args: argparse.Namespace) -> int:
    from motionlcm.generate import (
        ControlSpec,
        Request,
        check_prompt,
        generate,
        load_targets,
        parse_formats,
        read_prompt_file,
    )

    formats = parse_formats(args.format)
    if not args.output.strip():
        raise ValueError("-o/--output: empty folder name (use -o . for the current folder)")
    if args.timeline is not None or args.start_from is not None:
        return _timeline(args, formats)
    if len(args.prompt) > 1:
        raise ValueError(f"{len(args.prompt)} prompts: give one, or --prompts FILE, or add --timeline for one take")
    if bool(args.prompt) == (args.prompts is not None):
        raise ValueError("give one prompt or --prompts FILE")
    requests = read_prompt_file(args.prompts) if args.prompts else [Request(check_prompt(args.prompt[0]))]
    targets = load_targets(formats, args.rig, args.skeleton, args.smpl_model)
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
        backend=args.backend,
        onnx_dir=args.onnx_dir,
        progress=not args.quiet,
        literal_prompt=args.literal_prompt,
        control=ControlSpec(
            args.control,
            args.trajectory,
            tuple(args.keyframe or ()),
            args.control_method,
            args.clt_steps,
            not args.no_warp,
        ),  # fmt: skip
        targets=targets,
    )
    for path in written:
        print(path)
    return 0


def _timeline(args: argparse.Namespace, formats: tuple[str, ...]) -> int:
    """--timeline [FILE] / --start-from: one continuous take (motionlcm/timeline.py)."""
    from motionlcm.generate import (
        DEFAULT_SECONDS,
        ControlSpec,
        Request,
        TimelineSpec,
        check_prompt,
        check_segment_seconds,
        generate_timeline_files,
        load_targets,
        parse_timeline_line,
        read_timeline_file,
        slug,
    )  # fmt: skip

    if args.prompts is not None:
        raise ValueError("--prompts: not with --timeline or --start-from (give the segments to --timeline)")
    if args.frames is not None:
        raise ValueError("--frames: not with --timeline or --start-from (give each segment's seconds)")
    stem = "timeline"
    if args.timeline:  # a file
        if args.prompt:
            raise ValueError("--timeline FILE: give the segments in the file or as prompts, not both")
        segments = read_timeline_file(args.timeline)
        stem = slug(Path(args.timeline).stem)
    elif args.timeline is not None:  # inline: every prompt carries its duration
        if not args.prompt:
            raise ValueError("--timeline: no segments (give 'text#seconds' prompts or --timeline FILE)")
        segments = [parse_timeline_line(p, f"prompt {i + 1}") or Request(check_prompt("", f"prompt {i + 1}"))
                    for i, p in enumerate(args.prompt)]  # fmt: skip
    else:  # --start-from with one prompt
        if len(args.prompt) != 1:
            raise ValueError("--start-from: give one prompt, or --timeline for several segments")
        seconds = DEFAULT_SECONDS if args.seconds is None else check_segment_seconds(args.seconds, "--seconds")
        segments = [Request(check_prompt(args.prompt[0]), seconds)]
    if args.timeline is not None and args.seconds is not None:
        raise ValueError("--seconds: not with --timeline (each segment has its own)")
    control = ControlSpec(args.control, args.trajectory, tuple(args.keyframe or ()), "controlnet", args.clt_steps,
                          not args.no_warp)  # fmt: skip
    spec = TimelineSpec(tuple(segments), stem, args.start_from, args.start_rig, args.seam, args.max_seconds, control)
    written = generate_timeline_files(
        spec, Path(args.output), model=args.model, steps=args.steps, guidance=args.guidance, seed=args.seed,
        num=args.num, fps=args.fps, formats=formats, force=args.force, device=args.device, progress=not args.quiet,
        backend=args.backend, onnx_dir=args.onnx_dir, targets=load_targets(formats, args.rig, args.skeleton, args.smpl_model),
        literal_prompt=args.literal_prompt,
    )  # fmt: skip
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
    p.add_argument(
        "prompt",
        nargs="*",
        default=[],
        help="the text, e.g. \"a person waves with the left hand\"; with --timeline, several 'text#seconds' "
        "segments of one take",
    )
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
    p.add_argument(
        "--literal-prompt",
        action="store_true",
        help="encode the prompt exactly as typed; by default the model folder's prompt rewrites apply (e.g. the shipped "
        "model reads 'a woman raises her left arm' as 'a person raises the left arm': its captions name no gender; "
        "the JSON records `prompt_read_as`; docs/captions.md)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the first motion; the k-th uses seed + k")
    p.add_argument("--num", type=int, default=1, help="motions per prompt (at most 100,000 motions per call)")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="BVH and glTF frame rate, 1..1000 (20 native; 24/30/60 resample by slerp)",
    )
    p.add_argument(
        "--format",
        default="npy,bvh,mp4,json",
        help="comma-separated subset of npy,bvh,glb,smpl,mp4,gif,json (glb: binary glTF 2.0 with a skinned skeleton "
        "and one animation, docs/gltf.md; smpl: AMASS-style body parameters <stem>_smpl.npz and the body mesh "
        "<stem>_mesh_NNNNN.obj per frame, fitted with --smpl-model, docs/smpl.md)",
    )
    p.add_argument(
        "--rig",
        default=None,
        help="write the BVH (and glb) on your own skeleton: the rig file that maps it onto the 22 joints (the one `motionlcm "
        "data import-bvh --rig` reads; e.g. datasets/bandai-namco/rig.yaml); see docs/export.md",
    )
    p.add_argument(
        "--smpl-model",
        default=None,
        help="with --format smpl: your SMPL model folder (SMPL_NEUTRAL.npz, converted from the official .pkl as "
        "docs/smpl.md shows; the files are licensed and do not ship)",
    )
    p.add_argument(
        "--skeleton",
        default=None,
        help="with --rig: a BVH with that skeleton (names, hierarchy, offsets, channels); default: the rig file's "
        "`reference`",
    )
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
    timeline = p.add_argument_group(
        "timelines",
        "one continuous take of any length: each segment continues the take so far (temporal control); "
        "written as <name>.npy/.bvh/.mp4/.json, the .mp4 captioned with the current segment's prompt",
    )
    timeline.add_argument(
        "--timeline",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="a file with one segment per line, 'text#seconds' or 'Ns text' (any length; long segments are "
        "generated in pieces), written as <FILE stem>.*; without FILE, the prompts are the segments, e.g. "
        '"walk forward#3" "turn left#2" --timeline (written as timeline.*)',
    )
    timeline.add_argument(
        "--start-from",
        default=None,
        metavar="CLIP",
        help="continue this motion (.npy/.npz joints or features, .bvh): its frames come first, exactly as given "
        "(resampled to 20 fps when at another rate); with one prompt, that prompt continues it for --seconds",
    )
    timeline.add_argument(
        "--start-rig",
        default=None,
        metavar="RIG.yaml",
        help="joint mapping of a --start-from BVH that is not on the SMPL skeleton (the YAML of `motionlcm data "
        "import`, e.g. datasets/bandai-namco/rig.yaml)",
    )
    timeline.add_argument(
        "--seam",
        default=None,
        choices=("controlnet", "clt", "both", "splice"),
        help="how a segment continues the take: the model's controller for prefixes (controlnet), noise tuning "
        "(clt, slow), both, or the prompt alone aligned and blended at the seam (splice) (default: controlnet "
        "when the model has a controller for prefixes, else splice)",
    )
    timeline.add_argument(
        "--max-seconds", type=float, default=600.0, help="refuse timelines longer than this in all (seconds)"
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_backend_options(p, "run text encoding, sampling and decoding")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)
