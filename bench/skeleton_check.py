"""Does a model keep a rigid skeleton? Per prompt: the largest deviation of any decoded bone's length from
its median over the clip, how far `conform_to_skeleton` (what `MotionLCM` returns) moves the joints, the
BVH export's largest FK error on the conformed joints (it fits one rigid skeleton), and the kinematics.

Usage:
    python bench/skeleton_check.py [MODEL_DIR] [--seed 0]
Real clips and the conv VAE's reconstructions keep bone lengths within millimetres to centimetres; a model
whose generations stretch bones by decimetres cannot be exported faithfully (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse

import numpy as np

from motionlcm.data.skeleton import bone_lengths
from motionlcm.eval.kinematics import foot_skating_ratio, jitter, relative_joint_speed
from motionlcm.export.bvh_export import bvh_to_joints, joints_to_bvh

PROMPTS = [
    "a person walks and turns left.",
    "someone runs in an energetic way.",
    "a person waves with the left hand",
    "a person walks forward",
]


def bone_length_deviation(joints: np.ndarray) -> float:
    """Largest |bone length - its median over the clip| in metres, over the 21 bones."""
    bones = bone_lengths(joints)
    return float(np.abs(bones - np.median(bones, 0)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    args = parser.parse_args()
    from motionlcm import MotionLCM

    pipe = MotionLCM.from_pretrained(args.model_dir, device="cpu")
    raw = pipe(PROMPTS, seconds=4, seed=args.seed, conform=False, foot_lock=False)
    conformed = pipe(PROMPTS, seconds=4, seed=args.seed)
    for before, motion in zip(raw, conformed, strict=True):
        j = np.asarray(motion.joints, np.float64)
        error = np.linalg.norm(bvh_to_joints(joints_to_bvh(j)) - j, axis=-1).max()
        moved = np.linalg.norm(j - before.joints, axis=-1)
        print(
            f"{motion.text:36s} decoded bone-length deviation {bone_length_deviation(before.joints):.3f} m; "
            f"conformed: joints moved {moved.mean() * 100:.1f} cm mean / {moved.max() * 100:.1f} max, "
            f"BVH error {error * 100:.2f} cm, speed {relative_joint_speed(j):.2f} m/s, jitter {jitter(j):.0f} m/s³, "
            f"skating {foot_skating_ratio(j):.2f} (decoded {foot_skating_ratio(before.joints):.2f})"
        )


if __name__ == "__main__":
    main()
