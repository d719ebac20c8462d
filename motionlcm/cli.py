"""The `motionlcm` command line: one console script, argparse subcommands, heavy imports inside commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from motionlcm import __version__


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
                     help="train,val,test fractions (stratified by content and style)")
    imp.add_argument("--skip-bad", action="store_true",
                     help="skip unreadable clips (listed in manifest.json) instead of stopping the import")
    imp.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU core)")
    imp.add_argument("--force", action="store_true", help="replace the output folder if it exists")
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
    config = load_config(args.config, overrides)
    model_dir = train(args.kind, config, resume=args.resume, force=args.force, progress=not args.quiet)
    print(f"model folder: {model_dir}")
    return 0


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model", formatter_class=_Formatter,
                           description="Train the motion VAE, the MLD teacher or the consistency student.")
    train_sub = train.add_subparsers(dest="kind", required=True, metavar="{vae,mld,lcm}")
    helps = {"vae": "train the motion VAE (configs/vae.yaml)",
             "mld": "train the MLD latent-diffusion teacher on a trained VAE (configs/mld.yaml)",
             "lcm": "distil a 1-4 step latent consistency student from a trained teacher (configs/lcm.yaml)"}
    for kind, text in helps.items():
        p = train_sub.add_parser(
            kind, help=text, formatter_class=_Formatter,
            description=f"{text[0].upper()}{text[1:]}. Checkpoints (best-k by val/loss and last.ckpt), logs, the "
            "resolved config and the exported model folder go to the output directory. Any config value can be "
            "overridden as KEY=VALUE, e.g. trainer.max_steps=2000 data.batch_size=32 trainer.devices=2.",
        )
        p.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
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


def _add_convert_commands(sub: argparse._SubParsersAction) -> None:
    convert = sub.add_parser("convert", help="convert checkpoints of other projects", formatter_class=_Formatter,
                             description="Convert checkpoints of other projects into motionlcm model folders.")
    convert_sub = convert.add_subparsers(dest="source", required=True, metavar="{official}")
    p = convert_sub.add_parser(
        "official", formatter_class=_Formatter, help="an official MotionLCM / MLD .ckpt (V1 or V2)",
        description="Turn an official MotionLCM/MLD checkpoint (a dict whose state_dict holds vae.*, denoiser.* "
        "and evaluator weights) into a model folder. Weights are loaded without unpickling arbitrary objects; "
        "missing, unexpected or mis-shaped keys are listed in one error.",
    )
    p.add_argument("checkpoint", type=Path, help="the official .ckpt file")
    p.add_argument("--version", required=True, choices=("v1", "v2"),
                   help="v1 (configs_v1/, latent 1x256) or v2 (configs/, latent 16x32); not auto-detected")
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder to create")
    p.add_argument("--mean-std", type=Path, default=None,
                   help="folder with the HumanML3D Mean.npy/Std.npy the model was trained with")
    p.add_argument("--text-encoder", default=None,
                   help="local folder of sentence-t5-large (the official text encoder) to record in the model")
    p.add_argument("--fp16", action="store_true", help="store the weights in half precision")
    p.add_argument("--force", action="store_true", help="replace an existing model folder")
    p.set_defaults(func=cmd_convert_official)


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motionlcm", formatter_class=_Formatter,
                                     description="Real-time text-to-motion with latent consistency models.")
    parser.add_argument("--version", action="version", version=f"motionlcm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{data,train,convert}")
    _add_data_commands(sub)
    _add_train_commands(sub)
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
