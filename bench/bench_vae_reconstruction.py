"""VAE reconstruction quality on a dataset split (MPJPE aligned/unaligned in mm, FeaError), as a table + JSON.

Usage:
    python bench/bench_vae_reconstruction.py MODEL_DIR DATASET_DIR [--split test] [--min-length 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from motionlcm.eval.reconstruction import evaluate_reconstruction

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="model folder with a VAE")
    parser.add_argument("dataset_dir", type=Path, help="HumanML3D-layout dataset")
    parser.add_argument("--split", default="test", help="split file name")
    parser.add_argument("--min-length", type=int, default=40, help="shortest clip evaluated (rows)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "vae_reconstruction.json")
    args = parser.parse_args()
    rows = {}
    for mode, use_mean in (("posterior sample (official)", False), ("posterior mean", True)):
        rows[mode] = evaluate_reconstruction(
            args.model_dir, args.dataset_dir, args.split, min_length=args.min_length, use_mean=use_mean
        )
    print(f"{'latent':<28} {'clips':>6} {'frames':>7} {'MPJPE mm':>9} {'unaligned mm':>13} {'FeaError':>9}")
    for mode, r in rows.items():
        print(
            f"{mode:<28} {r['clips']:>6} {r['frames']:>7} {r['mpjpe_mm']:>9.1f} {r['mpjpe_unaligned_mm']:>13.1f} "
            f"{r['feature_error']:>9.3f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(args.model_dir),
                "dataset": str(args.dataset_dir),
                "split": args.split,
                "torch": torch.__version__,
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
