"""`motionlcm data import-bvh` and `motionlcm data check`."""

from __future__ import annotations

import argparse
from pathlib import Path

from motionlcm.cli._common import Formatter, split_ratios


def cmd_import_bvh(args: argparse.Namespace) -> int:
    from motionlcm.data.bvh_import import import_bvh_library, summarize

    summary = import_bvh_library(
        args.src_dir,
        args.output,
        args.rig,
        args.captions,
        mirror=args.mirror,
        seed=args.seed,
        skip_bad=args.skip_bad,
        workers=args.workers,
        split_ratios=args.split,
        force=args.force,
        progress=not args.quiet,
    )
    print(summarize(summary))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from motionlcm.data.check import check_dataset

    report = check_dataset(Path(args.dataset_dir))
    print(report.format())
    return 1 if report.errors else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help="prepare and check datasets",
        formatter_class=Formatter,
        description="Prepare and check HumanML3D-format datasets.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{import-bvh,check}")

    imp = data_sub.add_parser(
        "import-bvh",
        formatter_class=Formatter,
        help="turn a BVH motion-capture library into a dataset",
        description="Convert every .bvh file under SRC_DIR into a HumanML3D-format dataset (263-d features, "
        "22 SMPL joints, 20 fps, captions, seeded splits, Mean/Std of the training split). The output is "
        "written to a temporary folder and renamed when complete: a failed import leaves nothing behind.",
    )
    imp.add_argument("src_dir", type=Path, help="folder searched recursively for .bvh files")
    imp.add_argument(
        "--rig",
        type=Path,
        required=True,
        help="rig YAML mapping the source skeleton onto the 22 SMPL joints (docs/rig-files.md)",
    )
    imp.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to create")
    imp.add_argument(
        "--captions",
        type=Path,
        default=None,
        help="caption rules YAML (docs/captions.md); clips whose names the rules do not match "
        "need a <name>.txt caption file beside the .bvh",
    )
    imp.add_argument(
        "--mirror", action="store_true", help="also add each clip's left/right mirror ('M' prefix) with swapped labels"
    )
    imp.add_argument("--seed", type=int, default=0, help="seed for splits and caption sampling")
    imp.add_argument(
        "--split",
        type=split_ratios,
        default="0.8,0.05,0.15",
        help="train,val,test fractions >= 0 summing to 1 (stratified by content and style)",
    )
    imp.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable clips (listed in manifest.json) instead of stopping the import",
    )
    imp.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU core)")
    imp.add_argument(
        "--force",
        action="store_true",
        help="replace the output folder if it is an earlier import or empty (nothing else is replaced)",
    )
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import_bvh)

    check = data_sub.add_parser(
        "check",
        formatter_class=Formatter,
        help="validate a dataset folder and print a summary",
        description="Validate a HumanML3D-format dataset (files, shapes, NaN/inf, lengths, texts, split "
        "overlap) and print a summary. Exits with status 1 when it finds errors.",
    )
    check.add_argument("dataset_dir", type=Path, help="dataset folder (HumanML3D layout)")
    check.set_defaults(func=cmd_check)
