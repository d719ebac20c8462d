"""`motionlcm train {vae,teacher,student,control,evaluator}` (`mld` and `lcm`, the papers' names, still work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm import presets
from motionlcm.cli._common import Formatter

EVALUATOR_DEFAULTS = [
    "output_dir=runs/evaluator",
    "trainer.max_steps=4000",
    "checkpoint.every_n_steps=500",
    "checkpoint.save_top_k=2",
]


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
    if getattr(args, "init", None):
        overrides.append(f"init_dir={args.init}")
    if getattr(args, "model", None):
        overrides.append(f"model_dir={args.model}")
    if getattr(args, "install", None):
        overrides.append(f"install_as={args.install}")
    if args.dataset:
        overrides.append(f"data.root={args.dataset}")
    if args.config is None:  # only the evaluator has built-in defaults (those of configs/evaluator.yaml)
        overrides = [*EVALUATOR_DEFAULTS, *overrides]
    config = load_config(args.config, overrides)
    model_dir = train(args.kind, config, resume=args.resume, force=args.force, progress=not args.quiet)
    print(f"model folder: {model_dir}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a model",
        formatter_class=Formatter,
        description="Train the motion VAE, the MLD teacher, the consistency student or the text-motion evaluator.",
    )
    train_sub = train.add_subparsers(dest="kind", required=True, metavar="{vae,teacher,student,control,evaluator}")
    helps = {
        "vae": "train the motion VAE (configs/vae.yaml)",
        "teacher": "train the latent-diffusion teacher (MLD) on a trained VAE (configs/teacher.yaml)",
        "student": "distil a 1-4 step latent consistency student (MotionLCM) from a trained teacher "
        "(configs/student.yaml)",
        "control": "train a motion ControlNet (trajectory / keyframe control) for a trained student "
        "(configs/bandai-namco/control-pelvis.yaml)",
        "evaluator": "train a contrastive text-motion evaluator for FID / R-precision on any dataset "
        "(configs/evaluator.yaml)",
    }
    for kind, text in helps.items():
        p = train_sub.add_parser(
            kind,
            help=text,
            formatter_class=Formatter,
            aliases=[old for old, role in presets.ROLE_ALIASES.items() if role == kind],
            description=f"{text[0].upper()}{text[1:]}. Checkpoints (best-k by val/loss and last.ckpt), logs, the "
            "resolved config and the exported model folder go to the output directory. Any config value can be "
            "overridden as KEY=VALUE, e.g. trainer.max_steps=2000 data.batch_size=32 trainer.devices=2.",
        )
        if kind == "evaluator":
            p.add_argument(
                "--config",
                type=Path,
                default=None,
                help="YAML config (default: the built-in defaults, as in configs/evaluator.yaml)",
            )
        else:
            p.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
        p.add_argument("--dataset", default=None, help="HumanML3D-layout dataset folder (overrides data.root)")
        p.add_argument("-o", "--output-dir", default=None, help="run folder (overrides output_dir in the config)")
        if kind == "teacher":
            p.add_argument("--vae", default=None, help="trained VAE model folder (overrides vae_dir)")
        if kind == "student":
            p.add_argument("--teacher", default=None, help="trained teacher model folder (overrides teacher_dir)")
            p.add_argument(
                "--init",
                default=None,
                help="continue a distillation from this trained student folder (overrides init_dir)",
            )
        if kind == "control":
            p.add_argument("--model", default=None, help="the student model folder to control (overrides model_dir)")
            p.add_argument(
                "--install",
                default=None,
                metavar="NAME",
                help="when done, also install the controller as MODEL/control/NAME, where generation finds it "
                "(overrides install_as; --force replaces an installed one)",
            )
        p.add_argument("--resume", action="store_true", help="continue from <output_dir>/checkpoints/last.ckpt")
        p.add_argument(
            "--force",
            action="store_true",
            help="start over even if the output directory holds a run: its checkpoints and logs are removed, "
            "its exported model is replaced when the new run ends",
        )
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dotted keys)")
        p.set_defaults(func=cmd_train, kind=kind)  # an alias (mld, lcm) runs as its role
