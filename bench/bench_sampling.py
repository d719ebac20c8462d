"""Generate from a model folder and print what the motions do (speed, turn, raised hands) and their timing.

For each prompt (one per Bandai-Namco content, phrased differently from the training captions), `--num`
seeded samples, and per sample the forward speed (m/s), total heading change (deg, + = left) and the
fraction of frames with the left / right wrist above the head. With `--evaluator`, also the evaluator's
verdict: the fraction of samples whose nearest prompt (of the ten) in the evaluator's embedding space is
their own. Prints a table and saves JSON.

Usage:
    python bench/bench_sampling.py MODEL_DIR [--steps N] [--num 4] [--seconds 4] [--evaluator DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.eval.protocol import load_evaluator
from motionlcm.pipeline import MotionLCM

REPO = Path(__file__).resolve().parents[1]
PROMPTS = [  # one per content of the Bandai-Namco data; the five examples among them
    "a person walks forward.",
    "someone runs in an energetic way.",
    "a person walks and turns left.",
    "a person walks and turns right.",
    "an elderly person waves with the right hand.",
    "a person waves with the left hand.",
    "a person waves both hands over the head.",
    "a person raises both hands.",
    "a person raises the left hand.",
    "a person raises the right hand.",
]


def describe(motion) -> dict[str, float]:
    f, j = motion.features, motion.joints
    head = j[:, 15, 1]
    return {
        "speed_mps": float(f[:, 2].mean() * motion.fps),
        "turn_deg": float(np.degrees(-2 * f[1:, 0].sum())),
        "left_wrist_up": float((j[:, 20, 1] > head).mean()),
        "right_wrist_up": float((j[:, 21, 1] > head).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="model folder (teacher or student)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--num", type=int, default=4, help="samples per prompt")
    parser.add_argument("--seconds", type=float, default=4.0, help="motion length")
    parser.add_argument("--evaluator", type=Path, default=None, help="evaluator folder: rank prompts per sample")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "sampling.json", help="output")
    args = parser.parse_args()
    pipe = MotionLCM.from_pretrained(args.model_dir, device="cpu")
    pipe(PROMPTS[0], seconds=args.seconds, steps=args.steps, seed=0)  # warm-up (and text-encoder load)
    evaluator = load_evaluator(args.evaluator) if args.evaluator else None
    prompt_emb = evaluator.embed_texts(PROMPTS) if evaluator else None
    rows, timings = [], []
    for index, prompt in enumerate(PROMPTS):
        stats = []
        for seed in range(args.num):
            start = time.perf_counter()
            motion = pipe(prompt, seconds=args.seconds, steps=args.steps, seed=seed)[0]
            timings.append(time.perf_counter() - start)
            stats.append(describe(motion))
            if evaluator is not None:
                emb = evaluator.embed_motions(torch.from_numpy(motion.features)[None], torch.tensor([motion.frames]))
                stats[-1]["evaluator_match"] = float(torch.cdist(emb, prompt_emb).argmin() == index)
        rows.append({"prompt": prompt, **{k: float(np.mean([s[k] for s in stats])) for k in stats[0]}})
    print(f"{'prompt':<48} {'m/s':>6} {'turn':>6} {'L up':>5} {'R up':>5} {'match':>5}")
    for r in rows:
        match = f"{r['evaluator_match']:>5.2f}" if "evaluator_match" in r else "    -"
        print(
            f"{r['prompt']:<48} {r['speed_mps']:>6.2f} {r['turn_deg']:>6.0f} {r['left_wrist_up']:>5.2f} "
            f"{r['right_wrist_up']:>5.2f} {match}"
        )
    settings = motion.settings
    print(
        f"{pipe.kind}, {settings['steps']} steps, guidance {settings['guidance']}: "
        f"{1000 * np.median(timings):.0f} ms per motion (batch 1, {args.seconds:g} s, CPU, median of {len(timings)})"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(args.model_dir),
                "settings": settings,
                "rows": rows,
                "ms_per_motion_median": 1000 * float(np.median(timings)),
                "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
            },
            indent=1,
        )
    )
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
