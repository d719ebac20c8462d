"""`motionlcm render`: a stick-figure animation or strip of a motion file."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm.cli._common import Formatter, check_output_file


def cmd_render(args: argparse.Namespace) -> int:
    from motionlcm.export.bvh_export import check_fps
    from motionlcm.motion import render_file

    if args.fps is not None:
        check_fps(args.fps, "--fps")
    check_output_file(Path(args.output), args.force)
    if args.smpl_model is None:
        print(render_file(args.input, args.output, title=args.title, fps=args.fps))
        return 0
    from motionlcm.export.smpl import fit_smpl, load_smpl_model, smpl_vertices
    from motionlcm.motion import Motion

    body = load_smpl_model(args.smpl_model)  # checked before the motion is read
    motion = Motion.load(args.input)
    if not motion.is_smpl:
        raise ValueError(f"{args.input}: --smpl-model needs a motion on the 22 SMPL joints, not another rig")
    mesh = smpl_vertices(fit_smpl(motion.joints, body, fps=motion.fps), body)
    print(motion.render(args.output, title=args.title, fps=args.fps, mesh=mesh))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="stick-figure animation of a .npy or .bvh motion",
        formatter_class=Formatter,
        description="Render a motion file as a stick-figure animation at its real speed: .npy joints (T, 22, 3) or "
        "263-d features (T, 263) at 20 fps (dataset clips included), .npz with a joints or features array, or a "
        ".bvh clip of any rig. The output type follows the suffix: .mp4 (.gif when no ffmpeg), .gif, or .png "
        "for a strip of frames.",
    )
    p.add_argument("input", help="the motion file")
    p.add_argument("-o", "--output", required=True, help="anim.mp4, anim.gif or strip.png")
    p.add_argument("--title", default=None, help="title above the figure (default: the file name)")
    p.add_argument("--fps", type=float, default=None, help="frame rate of a .npy input, 1..1000 (default 20)")
    p.add_argument(
        "--smpl-model",
        default=None,
        help="draw the SMPL body mesh instead of the sticks: your SMPL model folder (SMPL_NEUTRAL.npz, docs/smpl.md); "
        "the body is fitted to the joints first",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_render)
