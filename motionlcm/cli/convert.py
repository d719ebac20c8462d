"""`motionlcm convert official` and `motionlcm convert half`."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm import presets
from motionlcm.cli._common import Formatter


def cmd_convert_official(args: argparse.Namespace) -> int:
    import torch

    from motionlcm.models.control_folder import find_controllers
    from motionlcm.models.convert import convert_official_checkpoint

    text_encoder = None
    if args.text_encoder:
        text_encoder = {"kind": "sentence-transformers", "source": str(Path(args.text_encoder).resolve()), "dim": 768}
    out = convert_official_checkpoint(
        args.checkpoint,
        args.version,
        args.output,
        text_encoder=text_encoder,
        mean_std_dir=args.mean_std,
        dtype=torch.float16 if args.fp16 else torch.float32,
        overwrite=args.force,
        hint_stats_dir=args.hint_stats,
        control=args.control,
    )
    print(f"model folder: {out}")
    for controller in find_controllers(out):
        print(f"controller: {controller}")
    return 0


def cmd_convert_half(args: argparse.Namespace) -> int:
    import torch

    from motionlcm.models.control_folder import find_controllers, install_controller
    from motionlcm.models.folder import load_model_folder, save_model_folder

    folder = load_model_folder(args.model_dir)
    out = save_model_folder(
        args.output,
        vae=folder.vae,
        denoiser=folder.denoiser,
        mean=folder.mean,
        std=folder.std,
        text_encoder=folder.text_encoder,
        meta=folder.meta,
        dtype=torch.float16,
        overwrite=args.force,
    )
    print(f"model folder: {out}")
    for controller in find_controllers(args.model_dir):  # its controllers come along, in half precision too
        print(f"controller: {install_controller(controller, out, controller.name, overwrite=True)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    convert = sub.add_parser(
        "convert",
        help="convert official checkpoints; store model folders in half precision",
        formatter_class=Formatter,
        description="Convert official MotionLCM/MLD checkpoints into model folders, or copy a model folder in half precision.",
    )
    convert_sub = convert.add_subparsers(dest="source", required=True, metavar="{official,half}")
    p = convert_sub.add_parser(
        "official",
        formatter_class=Formatter,
        help="an official MotionLCM / MLD .ckpt (V1 or V2)",
        description="Turn an official MotionLCM/MLD checkpoint (a dict whose state_dict holds vae.*, denoiser.* "
        "and evaluator weights) into a model folder. Weights are loaded without unpickling arbitrary objects; "
        "missing, unexpected or mis-shaped keys are listed in one error.",
    )
    p.add_argument("checkpoint", type=Path, help="the official .ckpt file")
    p.add_argument(
        "--version",
        required=True,
        choices=presets.VERSIONS,
        help="v1 (configs_v1/, latent 1x256) or v2 (configs/, latent 16x32); not auto-detected",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to create")
    p.add_argument(
        "--mean-std",
        type=Path,
        default=None,
        help="folder with the HumanML3D Mean.npy/Std.npy the model was trained with",
    )
    p.add_argument(
        "--text-encoder",
        default=None,
        help="local folder of sentence-t5-large (the official text encoder) to record in the model",
    )
    p.add_argument(
        "--hint-stats",
        type=Path,
        default=None,
        help="for a motion-control checkpoint (motionlcm_humanml_s_pelvis / _s_all / _t.ckpt): the folder with "
        "the official Mean_raw.npy / Std_raw.npy (datasets/humanml_spatial_norm); the ControlNet and trajectory "
        "encoder then go into OUTPUT/control/NAME, where generation finds them",
    )
    p.add_argument(
        "--control",
        choices=("pelvis", "all", "temporal"),
        default=None,
        help="with --hint-stats: what the controller was trained for (pelvis, the six joints, or temporal on "
        "the first 25 %% of the frames); default from the file name (_s_pelvis, _s_all, _t)",
    )
    p.add_argument("--fp16", action="store_true", help="store the weights in half precision")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(func=cmd_convert_official)
    p = convert_sub.add_parser(
        "half",
        formatter_class=Formatter,
        help="store a model folder's weights in half precision",
        description="Copy a model folder with float16 weights (half the size; loading casts back to float32).",
    )
    p.add_argument("model_dir", type=Path, help="the model folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(func=cmd_convert_half)
