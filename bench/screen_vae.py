"""Screen VAE recipes with short runs: train each variant for the same steps, then measure on a split how
much motion its reconstructions keep (root-aligned MPJPE, ratio of relative joint speeds, jitter).

Usage:
    python bench/screen_vae.py --config configs/bandai-namco/vae.yaml --steps 300 \
        --variant "official=" --variant "l1-vel=system.rec_beta=0 system.rec_vel_weight=1" ...
Each variant is NAME=OVERRIDES (space-separated KEY=VALUE applied on top of the config). Runs go to
runs/screen-vae/NAME (an existing run is evaluated again, not retrained). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from motionlcm.config import load_config
from motionlcm.eval.reconstruction import evaluate_reconstruction
from motionlcm.train.run import train

REPO = Path(__file__).resolve().parents[1]
COLUMNS = (
    "mpjpe_mm",
    "relative_speed_ratio",
    "recon_relative_speed",
    "real_relative_speed",
    "recon_jitter",
    "real_jitter",
    "minutes",
)


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    if not name:
        raise SystemExit(f"--variant {text!r}: expected NAME=KEY=VALUE ...")
    return name, overrides.split()


def run_variant(config_path: Path, name: str, overrides: list[str], steps: int, root: Path) -> dict:
    out = root / name
    minutes = None
    if not (out / "model").is_dir():
        config = load_config(
            config_path,
            [*overrides, f"trainer.max_steps={steps}", f"output_dir={out}", f"checkpoint.every_n_steps={steps}"],
        )
        start = time.perf_counter()
        train("vae", config, force=True, progress=False)
        minutes = (time.perf_counter() - start) / 60
    return {"overrides": overrides, "minutes": minutes, "out": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="base VAE config (YAML)")
    parser.add_argument("--variant", action="append", required=True, help="NAME=KEY=VALUE ... (repeatable)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per variant")
    parser.add_argument("--dataset", type=Path, default=None, help="dataset to evaluate on (default: the config's)")
    parser.add_argument("--split", default="val", help="split evaluated")
    parser.add_argument("--root", type=Path, default=REPO / "runs" / "screen-vae", help="folder of the runs")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "screen_vae.json")
    args = parser.parse_args()
    dataset = args.dataset or Path(load_config(args.config)["data"]["root"])
    rows = {}
    for name, overrides in map(parse_variant, args.variant):
        row = run_variant(args.config, name, overrides, args.steps, args.root)
        row.update(
            evaluate_reconstruction(Path(row["out"]) / "model", dataset, args.split, min_length=20, use_mean=True)
        )
        rows[name] = row
        print(f"{name}: " + ", ".join(f"{k} {row[k]:.3g}" for k in COLUMNS if row.get(k) is not None), flush=True)
    print(f"\n{'variant':<22}" + "".join(f"{c:>22}" for c in COLUMNS))
    for name, row in rows.items():
        cells = "".join(f"{row[c]:>22.4g}" if row.get(c) is not None else f"{'-':>22}" for c in COLUMNS)
        print(f"{name:<22}{cells}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "config": str(args.config),
        "steps": args.steps,
        "split": args.split,
        "torch": torch.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
    }
    args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
