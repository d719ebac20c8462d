"""The figure of docs/export.md: one generated motion on the SMPL stick figure and, retargeted with the shipped
rig file, on the Bandai-Namco skeleton, the same frames one above the other.

Usage:
    python bench/render_export_figure.py [--prompt "a person walks forward"] [--seconds 4] [--seed 0]
        [--out docs/img/export_rig.png]
Renders both with the project's own renderer (`render_frames`; the BVH is read back with `Motion.load`, so
the lower strip is the written file's own forward kinematics).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RIG = REPO / "datasets" / "bandai-namco" / "rig.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="a person walks forward", help="text prompt")
    parser.add_argument("--seconds", type=float, default=4.0, help="motion length")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "export_rig.png", help="output image")
    args = parser.parse_args()
    from motionlcm import Motion, MotionLCM
    from motionlcm.render.stick import render_frames

    motion = MotionLCM.from_pretrained(device="cpu")(args.prompt, seconds=args.seconds, seed=args.seed)[0]
    frames = np.linspace(0, motion.frames - 1, 6).round().astype(int).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        bvh = motion.save_bvh(Path(tmp) / "rig.bvh", rig=RIG)
        on_rig = Motion.load(bvh)
        top, bottom = Path(tmp) / "smpl.png", Path(tmp) / "rig.png"
        render_frames(motion.joints, top, frames=frames, title=f'"{args.prompt}": 22 SMPL joints (motionlcm generate)')
        render_frames(on_rig.joints, bottom, frames=frames, parents=on_rig.parents, joint_names=on_rig.names,
                      title="the same motion on the Bandai-Namco skeleton (--rig datasets/bandai-namco/rig.yaml)")  # fmt: skip
        images = [mpimg.imread(p) for p in (top, bottom)]
    width = max(i.shape[1] for i in images)
    padded = [np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=1.0) for i in images]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(args.out, np.concatenate(padded, axis=0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
