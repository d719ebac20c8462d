"""Frame strips of generated motions for the docs: walk, run, a wave and a turn, so that anyone can see
whether the limbs move (issue "The shipped model must move").

Usage:
    python bench/render_examples.py [MODEL_DIR] [--seed 0] [--out docs/img]
Writes docs/img/generated_{walk,run,wave,turn}.png (8 evenly spaced frames, the prompt and the measured
relative joint speed in the title) with the same renderer as `motionlcm render`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from motionlcm.eval.kinematics import ankle_height_range, relative_joint_speed
from motionlcm.render.stick import render_frames

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = [
    ("walk", "a person walks forward", 4.0),
    ("run", "someone runs forward", 3.0),
    ("wave", "a person waves with the right hand", 4.0),
    ("turn", "a person walks and turns left", 5.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="output folder")
    args = parser.parse_args()
    from motionlcm import MotionLCM

    pipe = MotionLCM.from_pretrained(args.model_dir, device="cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, prompt, seconds in EXAMPLES:
        joints = np.asarray(pipe([prompt], seconds=seconds, steps=args.steps, seed=args.seed)[0].joints)
        speed, ankles = relative_joint_speed(joints), ankle_height_range(joints)
        title = (
            f'"{prompt}" ({seconds:g} s, seed {args.seed}): relative joint speed {speed:.2f} m/s, '
            f"ankle ranges {ankles[0]:.2f} / {ankles[1]:.2f} m"
        )
        path = render_frames(joints, args.out / f"generated_{name}.png", num=8, title=title)
        print(f"{path}: {title}")


if __name__ == "__main__":
    main()
