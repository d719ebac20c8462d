"""The `motionlcm` command line: one console script, argparse subcommands, one module per command, heavy
imports inside the commands (so `--help` stays fast)."""

from __future__ import annotations

import argparse
import os
import sys

from motionlcm import __version__
from motionlcm.cli import bench, convert, data, export, generate, render, studio, train
from motionlcm.cli import eval as evaluate
from motionlcm.cli._common import Formatter

COMMANDS = (generate, studio, render, export, data, train, evaluate, bench, convert)  # the order of `motionlcm --help`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motionlcm",
        formatter_class=Formatter,
        description="Real-time text-to-motion with latent consistency models.",
    )
    parser.add_argument("--version", action="version", version=f"motionlcm {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{generate,studio,render,export,data,train,eval,bench,convert}"
    )
    for command in COMMANDS:
        command.add_parser(sub)
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
