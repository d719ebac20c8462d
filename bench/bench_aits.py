"""AITS (average inference time per sentence, batch 1) of model folders, with the per-stage split.

The papers' definition (text encoding through VAE decoding, loading and warm-up excluded); captions and
lengths are taken evenly from a dataset split. Prints a table and saves JSON.

    python bench/bench_aits.py --dataset data/bandai-namco --min-length 20 --sentences 100 \
        --model "student, 1 step=checkpoints/bandai-namco:1" --model "teacher, DDIM 50=checkpoints/bandai-namco-teacher:50"
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from bench_eval import parse_model  # same LABEL=PATH[:STEPS] syntax

from motionlcm.eval.timing import aits_inputs, measure_aits
from motionlcm.pipeline import MotionLCM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="HumanML3D-layout dataset folder (captions, lengths)")
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH[:STEPS]", help="repeatable")
    parser.add_argument("--split", default="test", help="split the captions come from")
    parser.add_argument("--min-length", type=int, default=40, help="shortest clip kept, in frames")
    parser.add_argument("--sentences", type=int, default=100, help="sentences timed per model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", default="bench/results/aits.json", help="where to save the results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    prompts, lengths = aits_inputs(args.dataset, args.split, args.sentences, args.min_length)
    results = {}
    print(
        f"{'model':<28} {'AITS ms':>8} {'median':>7} {'p90':>7} {'text':>6} {'denoise':>8} {'decode':>7} {'joints':>7}"
    )
    for label, path, steps in map(parse_model, args.model):
        pipe = MotionLCM.from_pretrained(path, device=args.device)
        r = measure_aits(pipe, prompts, lengths, steps=steps)
        results[label] = {"model": path, **r}
        s = r["stages"]
        print(
            f"{label:<28} {1000 * r['aits_s']:>8.1f} {1000 * r['median_s']:>7.1f} {1000 * r['p90_s']:>7.1f} "
            f"{1000 * s['text']:>6.1f} {1000 * s['denoise']:>8.1f} {1000 * s['decode']:>7.1f} {1000 * s['joints']:>7.1f}"
        )
    info = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": args.device,
        "sentences": len(prompts),
        "mean_frames": sum(lengths) / len(lengths),
        "results": results,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"{len(prompts)} sentences, mean {info['mean_frames']:.0f} frames, {torch.get_num_threads()} threads; "
        f"saved {out}"
    )


if __name__ == "__main__":
    main()
