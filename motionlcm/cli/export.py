"""`motionlcm export`: a motion array to BVH or binary glTF, on the SMPL skeleton or a user's rig; `motionlcm
export onnx MODEL -o DIR`: a model's ONNX graphs for engines and onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm.cli._common import Formatter, check_output_file, int_list


def cmd_export(args: argparse.Namespace) -> int:
    from motionlcm.data.features import features_to_joints
    from motionlcm.export.bvh_export import check_fps, check_output_frames, features_to_bvh, joints_to_bvh
    from motionlcm.export.gltf_export import bvh_to_glb, write_glb
    from motionlcm.export.retarget import retarget, to_standard_axes
    from motionlcm.generate import load_rig
    from motionlcm.io.bvh import write_bvh
    from motionlcm.io.motion_file import inspect_motion_file, read_motion_array

    if args.output is not None and not args.output.strip():
        raise ValueError("-o/--output: empty file name")
    if args.input == "onnx":
        return _export_onnx(args)
    for name in ("steps", "precision", "model"):
        if getattr(args, name) is not None:
            raise ValueError(f"--{name}: only with `motionlcm export onnx`" if name != "model" else
                             f"{args.model}: one motion file per call (`motionlcm export onnx MODEL` takes a model)")  # fmt: skip
    src = Path(args.input)
    default = src.with_name(f"{src.stem}_smpl.npz") if args.to == "smpl" else src.with_suffix(f".{args.to}")
    out = Path(args.output) if args.output else default
    if args.to == "smpl":
        return _export_smpl(args, src, out)
    if args.smpl_model is not None:
        raise ValueError("--smpl-model: only with --to smpl")
    source_fps = check_fps(args.source_fps, "--source-fps") if args.source_fps is not None else None
    fps = check_fps(args.fps, "--fps") if args.fps is not None else None
    where = f"{src} at --fps {fps:g}" if fps else str(src)
    _, shape = inspect_motion_file(src)  # headers only: the length is bounded before anything is loaded
    check_output_frames(shape[0], source_fps or 20.0, fps, where=where)
    check_output_file(out, args.force)
    motion = read_motion_array(src)
    if source_fps is None and motion.fps is not None:  # an .npz that records its rate
        source_fps = check_fps(motion.fps, f"{src}: fps")
        check_output_frames(shape[0], source_fps, fps, where=where)
    rig = load_rig(args.rig, args.skeleton)  # checked before anything is solved or written
    if rig is not None:
        joints = motion.array if motion.kind == "joints" else features_to_joints(motion.array)
        clip = retarget(joints, rig, fps=source_fps or 20.0)
        clip = clip if fps is None or fps == clip.fps else clip.resampled(fps)
    else:
        convert = joints_to_bvh if motion.kind == "joints" else features_to_bvh
        clip = convert(motion.array, fps=source_fps or 20.0, target_fps=fps)
    if args.to == "glb":
        if rig is not None:
            clip = to_standard_axes(clip, rig.rig.axes)  # glTF is y up, +z forward
        write_glb(out, bvh_to_glb(clip, 0.01 if rig is None else rig.rig.scale))
    else:
        write_bvh(out, clip)
    print(out)
    return 0


def _export_smpl(args: argparse.Namespace, src: Path, out: Path) -> int:
    """--to smpl: AMASS-style body parameters fitted to the joints with the user's SMPL model."""
    from motionlcm.data.features import features_to_joints
    from motionlcm.export.smpl import fit_smpl, load_smpl_model, save_amass_npz
    from motionlcm.io.motion_file import read_motion_array

    if args.rig is not None or args.skeleton is not None or args.fps is not None:
        raise ValueError("--to smpl: the parameters are SMPL's at the motion's own rate (no --rig, --skeleton, --fps)")
    body = load_smpl_model(args.smpl_model)
    check_output_file(out, args.force)
    motion = read_motion_array(src)
    joints = motion.array if motion.kind == "joints" else features_to_joints(motion.array)
    print(save_amass_npz(out, fit_smpl(joints, body, fps=args.source_fps or motion.fps or 20.0)))
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    """`export onnx [MODEL]`: the text encoder, the student's sampler and the decoder as ONNX (opset 17)."""
    import sys

    from motionlcm.pipeline import MotionLCM, default_model_dir
    from motionlcm.runtime.onnx_graphs import SAMPLER_STEPS, check_onnx_output, export_onnx

    if args.output is None:
        raise ValueError("export onnx: give the output folder with -o/--output")
    if args.to != "bvh" or args.rig or args.skeleton or args.fps or args.source_fps or args.smpl_model:
        raise ValueError("export onnx: only -o, --steps, --precision and --force apply")
    model = args.model or default_model_dir()
    out = check_onnx_output(args.output, args.force)  # before the model loads
    pipe = MotionLCM.from_pretrained(model, device="cpu")

    def say(msg: str) -> None:
        print(f"  exporting {msg}", file=sys.stderr, flush=True)

    steps = args.steps or list(SAMPLER_STEPS)
    export_onnx(pipe, out, steps=steps, precision=args.precision or "fp32", force=args.force, progress=say)
    print(out)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="convert a .npy / .npz motion to BVH or glTF (.glb), on the SMPL skeleton or your rig",
        formatter_class=Formatter,
        description="Convert joints (T, 22, 3) or 263-d features (T, 263), in a .npy or an .npz (as written by "
        "`motionlcm generate` or numpy.savez with a joints or features array), to a BVH clip with the 22 SMPL "
        "joints (centimetres; rotations solved so that forward kinematics reproduces the joints within 1 cm), or "
        "to a binary glTF 2.0 (.glb: the same skeleton skinned to a stick mesh, one animation, metres); with "
        "--rig, on your own skeleton (docs/export.md). `motionlcm export onnx [MODEL] -o DIR` instead writes a "
        "student model's ONNX graphs (text encoder with its tokenizer, sampler for 1/2/4 steps, decoder to "
        "features and joints; opset 17), a manifest.json and a README for engines (docs/onnx.md).",
    )
    p.add_argument("input", help="the .npy or .npz motion, or the word onnx")
    p.add_argument(
        "model", nargs="?", default=None, help="with onnx: the student model folder (default: the shipped model)"
    )
    p.add_argument(
        "--to",
        choices=("bvh", "glb", "smpl"),
        default="bvh",
        help="target format (smpl: AMASS-style body parameters, .npz, fitted with --smpl-model; docs/smpl.md)",
    )
    p.add_argument("-o", "--output", default=None, help="output file (default: the input with .bvh, .glb or _smpl.npz)")
    p.add_argument("--smpl-model", default=None, help="with --to smpl: your SMPL model folder (docs/smpl.md)")
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frame rate of the BVH or glTF animation, 1..1000 (default: the source's); at most 100,000 frames",
    )
    p.add_argument(
        "--source-fps",
        type=float,
        default=None,
        help="frame rate of the input, 1..1000 (default: an .npz's recorded fps, else 20)",
    )
    p.add_argument(
        "--rig",
        default=None,
        help="write onto your own skeleton: the rig file that maps it onto the 22 joints (e.g. "
        "datasets/bandai-namco/rig.yaml): its joint names, hierarchy, offsets, channels and units (docs/export.md)",
    )
    p.add_argument(
        "--skeleton", default=None, help="with --rig: a BVH with that skeleton (default: the rig file's `reference`)"
    )
    p.add_argument(
        "--steps",
        type=int_list,
        default=None,
        help="with onnx: the sampler step counts to export, comma-separated (default: 1,2,4)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default=None,
        help="with onnx: fp32 (default), or int8 dynamic quantisation of the sampler and decoder matrix products "
        "(smaller and faster, but measured feature errors of 0.05-0.08 against fp32: docs/onnx.md)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output (with onnx: replace the folder)")
    p.set_defaults(func=cmd_export)
