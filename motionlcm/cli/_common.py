"""Pieces every command module shares: the help formatter, argument types and the output-file check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default when it has a meaningful one (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        meaningful = action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
        if meaningful and "%(default)" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def split_ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.8,0.05,0.15, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers (train,val,test), got {text!r}")
    return values  # type: ignore[return-value]


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def check_output_file(path: Path, force: bool) -> None:
    """An output file name that is not empty, not a device or folder, and new unless --force."""
    from motionlcm.io.atomic import check_targets

    if not str(path).strip():
        raise ValueError("-o/--output: empty file name")
    check_targets([path], force)


def add_control_method_options(parser: Any) -> None:
    """--control-method and --clt-steps, shared by generate and eval (pipeline.CONTROL_METHODS)."""
    parser.add_argument(
        "--control-method",
        default="controlnet",
        choices=("controlnet", "clt", "both"),
        help="controlnet: the model's trained ControlNet (real time); clt: tune the 1-step noise until the motion "
        "meets the targets (consistency latent tuning: any joints, no ControlNet needed, seconds per motion on a "
        "CPU); both: tune the noise of the ControlNet-steered student",
    )
    parser.add_argument("--clt-steps", type=int, default=400, help="noise-tuning steps of clt / both (official 400)")


def add_backend_options(parser: Any, use: str) -> None:
    """--backend and --onnx-dir of the commands that generate (docs/onnx.md); `use` says what the backend runs."""
    parser.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help=f"onnxruntime: {use} as the model's ONNX graphs on the CPU (the same motion for a seed within float "
        "error; exported once into ~/.cache/motionlcm or $MOTIONLCM_CACHE; control and step counts other than 1, "
        "2, 4 stay in torch); needs pip install 'motionlcm[onnx]'",
    )
    parser.add_argument(
        "--onnx-dir",
        default=None,
        help="with --backend onnxruntime: graphs from `motionlcm export onnx` for this model",
    )
