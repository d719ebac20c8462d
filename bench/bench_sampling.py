"""Generate from a model folder and print what the motions do (speed, turn, raised hands) and their timing.

A kinematic sanity check until a learned evaluator exists: for each prompt, `--num` seeded samples, and
per sample the forward speed (m/s), total heading change (deg, + = left) and the fraction of frames with
the left / right wrist above the head. Prints a table and saves JSON.

Usage:
    python bench/bench_sampling.py MODEL_DIR [--steps N] [--num 4] [--seconds 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.pipeline import MotionLCM

REPO = Path(__file__).resolve().parents[1]
PROMPTS = [
    "a person walks forward.",
    "someone runs forward energetically.",
    "a person walks forward and turns to the left.",
    "a person walks forward and turns to the right.",
    "an elderly person waves with the right hand.",
    "a person waves with the left hand.",
    "a person raises both hands.",
]


def describe(motion) -> dict[str, float]:
    f, j = motion.features, motion.joints
    head = j[:, 15, 1]
    return {"speed_mps": float(f[:, 2].mean() * motion.fps), "turn_deg": float(np.degrees(-2 * f[1:, 0].sum())),
            "left_wrist_up": float((j[:, 20, 1] > head).mean()), "right_wrist_up": float((j[:, 21, 1] > head).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="model folder (teacher or student)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--num", type=int, default=4, help="samples per prompt")
    parser.add_argument("--seconds", type=float, default=4.0, help="motion length")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "sampling.json", help="output")
    args = parser.parse_args()
    pipe = MotionLCM.from_pretrained(args.model_dir, device="cpu")
    pipe(PROMPTS[0], seconds=args.seconds, steps=args.steps, seed=0)  # warm-up (and text-encoder load)
    rows, timings = [], []
    for prompt in PROMPTS:
        stats = []
        for seed in range(args.num):
            start = time.perf_counter()
            motion = pipe(prompt, seconds=args.seconds, steps=args.steps, seed=seed)[0]
            timings.append(time.perf_counter() - start)
            stats.append(describe(motion))
        rows.append({"prompt": prompt, **{k: float(np.mean([s[k] for s in stats])) for k in stats[0]}})
    print(f"{'prompt':<48} {'m/s':>6} {'turn':>6} {'L up':>5} {'R up':>5}")
    for r in rows:
        print(f"{r['prompt']:<48} {r['speed_mps']:>6.2f} {r['turn_deg']:>6.0f} {r['left_wrist_up']:>5.2f} "
              f"{r['right_wrist_up']:>5.2f}")
    settings = motion.settings
    print(f"{pipe.kind}, {settings['steps']} steps, guidance {settings['guidance']}: "
          f"{1000 * np.median(timings):.0f} ms per motion (batch 1, {args.seconds:g} s, CPU, median of {len(timings)})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": str(args.model_dir), "settings": settings, "rows": rows,
                                     "ms_per_motion_median": 1000 * float(np.median(timings)),
                                     "machine": platform.processor() or platform.machine(),
                                     "threads": torch.get_num_threads()}, indent=1))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
