"""Kinematic prompt checks: do generated motions step, wave, raise and turn with the side the prompt names?

Usage:
    python bench/prompt_checks.py [MODEL_DIR] [--steps 1] [--seeds 10] [--json bench/results/prompt_checks.json]
For each prompt, generates one motion per seed and applies the check of motionlcm/eval/motion_checks.py
that the prompt calls for; prints the pass count per prompt (and the mean of the measured values) and
writes every value to JSON. Turning prompts pass when the figure steps and its heading changes by at least
30 degrees to the named side. Uses held-in phrasings; the issue's held-out phrasings are judged separately.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.eval import motion_checks
from motionlcm.eval.kinematics import kinematic_summary

REPO = Path(__file__).resolve().parents[1]
MIN_TURN = 30.0  # degrees to the named side over the clip

# (prompt, seconds, check, side); "steps" checks also the pace (motion_checks.PACE[side])
PROMPTS = [
    ("a person walks forward", 4.0, "steps", "walk"),
    ("someone runs forward", 3.0, "steps", "run"),
    ("an elderly person walks slowly", 5.0, "steps", "slow walk"),
    ("a person walks and turns left", 5.0, "turn", "left"),
    ("a person walks and turns right", 5.0, "turn", "right"),
    ("a person waves with the right hand", 4.0, "waves", "right"),
    ("a person waves with the left hand", 4.0, "waves", "left"),
    ("someone waves both hands", 4.0, "waves", "both"),
    ("a person raises the right hand", 3.0, "raises", "right"),
    ("a person raises the left hand", 3.0, "raises", "left"),
    ("a person raises both hands", 3.0, "raises", "both"),
]

# The same checks phrased as users write them and the captions never do: gendered subjects and possessive
# pronouns (the Bandai-Namco captions name no gender; the model folder's prompt rewrites read them as the
# captions' neutral subject, `--literal-prompt` turns them off).
PARAPHRASED = [
    ("a man walks forward", 4.0, "steps", "walk"),
    ("a woman runs forward", 3.0, "steps", "run"),
    ("a woman walks and turns left", 5.0, "turn", "left"),
    ("a man walks and turns right", 5.0, "turn", "right"),
    ("a man waves his right hand", 4.0, "waves", "right"),
    ("she waves with her left hand", 4.0, "waves", "left"),
    ("he raises his right hand", 3.0, "raises", "right"),
    ("a woman raises her left arm", 3.0, "raises", "left"),
    ("she raises both of her hands", 3.0, "raises", "both"),
]
SETS = {"held-in": PROMPTS, "paraphrased": PARAPHRASED}


def check(kind: str, side: str | None, joints: np.ndarray) -> dict:
    if kind == "steps":
        stepping, pace = motion_checks.steps(joints), motion_checks.pace(joints, *motion_checks.PACE[side])
        return stepping | pace | {"ok": stepping["ok"] and pace["ok"]}
    if kind == "turn":
        degrees = motion_checks.turn_degrees(joints)
        signed = degrees if side == "left" else -degrees
        stepping = motion_checks.steps(joints)
        return stepping | {"turn_degrees": degrees, "ok": signed >= MIN_TURN and stepping["ok"]}
    return getattr(motion_checks, kind)(joints, side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per prompt (0..N-1)")
    parser.add_argument(
        "--prompts",
        choices=sorted(SETS),
        default="held-in",
        help="which prompt set: the captions' own phrasing, or gendered/pronoun paraphrases",
    )
    parser.add_argument(
        "--literal-prompt",
        action="store_true",
        help="encode the prompts as typed, without the model folder's prompt rewrites",
    )
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "prompt_checks.json")
    args = parser.parse_args()
    from motionlcm import MotionLCM

    pipe = MotionLCM.from_pretrained(args.model_dir, device="cpu")
    pipe.rewrite_prompts = not args.literal_prompt
    rows = []
    start = time.perf_counter()
    for prompt, seconds, kind, side in SETS[args.prompts]:
        results = []
        for seed in range(args.seeds):
            joints = np.asarray(pipe([prompt], seconds=seconds, steps=args.steps, seed=seed)[0].joints, np.float64)
            results.append(check(kind, side, joints) | kinematic_summary(joints))
        read_as = pipe.read_prompt(prompt)
        passed = sum(bool(r["ok"]) for r in results)
        means = {k: float(np.mean([r[k] for r in results])) for k in results[0] if k != "ok"}
        rows.append(
            {
                "prompt": prompt,
                "read_as": read_as,
                "seconds": seconds,
                "check": kind,
                "side": side,
                "passed": passed,
                "seeds": args.seeds,
                "means": means,
                "runs": results,
            }
        )
        shown = ", ".join(f"{k} {v:.2f}" for k, v in means.items())
        print(f"{passed:>2}/{args.seeds}  {prompt:<40} {shown}", flush=True)
    total = sum(r["passed"] for r in rows)
    print(f"passed {total} of {len(rows) * args.seeds} ({time.perf_counter() - start:.0f} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": str(args.model_dir or "shipped"),
                "steps": args.steps,
                "prompts": args.prompts,
                "literal_prompt": args.literal_prompt,
                "machine": platform.processor() or platform.machine(),
                "torch": torch.__version__,
                "rows": rows,
            },
            indent=1,
            default=float,
        )
    )
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
