"""How well does a VAE's decoder handle latents that are not exactly a posterior mean?

Diffusion models place their samples near, not on, the latents the encoder produces. This probe encodes
real clips (posterior means, in diffusion units: unit spread per dimension), perturbs them with Gaussian
noise of a few scales, decodes, and measures whether the result is still a body: the bone-length
deviation (mean over clips of the largest |bone length - the clip's median| in metres, and its 95th
percentile over frames and bones), the relative joint speed, the jitter and the foot-skating ratio against the real clips'.

Usage:
    python bench/latent_robustness.py MODEL_DIR DATASET [--split val] [--clips 128] [--noise 0 0.1 0.25 0.5]
Prints a table and writes JSON (docs/benchmarks.md, "The model must move").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.collate import collate_motion
from motionlcm.data.features import features_to_joints
from motionlcm.data.humanml3d import HumanML3DDataset
from motionlcm.data.normalizer import Normalizer
from motionlcm.data.skeleton import bone_lengths
from motionlcm.eval.kinematics import foot_skating_ratio, jitter, relative_joint_speed
from motionlcm.models.folder import load_model_folder


def skeleton_stats(clips: list[np.ndarray]) -> dict[str, float]:
    """Bone-length deviation and kinematics averaged over clips."""
    worst, p95, speed, jerk, skate = [], [], [], [], []
    for joints in clips:
        bones = bone_lengths(joints)
        deviation = np.abs(bones - np.median(bones, 0))
        worst.append(deviation.max())
        p95.append(np.percentile(deviation, 95))
        speed.append(relative_joint_speed(joints))
        jerk.append(jitter(joints))
        skate.append(foot_skating_ratio(joints))
    return {
        "bone_dev_max_m": float(np.mean(worst)),
        "bone_dev_p95_m": float(np.mean(p95)),
        "relative_speed": float(np.mean(speed)),
        "jitter": float(np.mean(jerk)),
        "skating": float(np.mean(skate)),
    }


@torch.no_grad()
def probe(model_dir: Path, dataset_dir: Path, split: str, clips: int, noise: list[float], seed: int) -> dict:
    folder = load_model_folder(model_dir)
    mean, std = torch.as_tensor(folder.mean), torch.as_tensor(folder.std)
    dataset = HumanML3DDataset(
        dataset_dir,
        split=split,
        normalizer=Normalizer(folder.mean, folder.std),
        min_length=40,
        random_crop=False,
        seed=seed,
    )
    picks = np.linspace(0, len(dataset) - 1, min(clips, len(dataset))).round().astype(int)
    batch = collate_motion([dataset[int(i)] for i in picks])
    x, lengths = batch["features"], batch["lengths"]
    z, _ = folder.vae.encode(x, lengths, use_mean=True)
    valid = folder.vae.latent_mask(lengths)
    valid = valid[:, :, None].float() if valid is not None else 1.0

    def joints_of(features: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
        joints = features_to_joints(features * std + mean).numpy()
        return [joints[i, :n] for i, n in enumerate(lengths.tolist())]

    generator = torch.Generator().manual_seed(seed)
    rows = {"real": skeleton_stats(joints_of(x, lengths))}
    for scale in noise:
        eps = torch.randn(z.shape, generator=generator) * scale * valid
        rows[f"noise {scale:g}"] = skeleton_stats(joints_of(folder.vae.decode(z + eps, lengths), lengths))
    # halfway between two clips' latents (each clip with the next one, same token count: the shorter length)
    other = torch.roll(torch.arange(len(picks)), 1)
    both = torch.minimum(lengths, lengths[other])
    rows["interpolation 0.5"] = skeleton_stats(joints_of(folder.vae.decode(0.5 * (z + z[other]), both), both))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="a model folder with a VAE")
    parser.add_argument("dataset", type=Path, help="a HumanML3D-layout dataset folder")
    parser.add_argument("--split", default="val", help="split whose clips are encoded (default val)")
    parser.add_argument("--clips", type=int, default=128, help="clips, evenly spread over the split")
    parser.add_argument(
        "--noise",
        type=float,
        nargs="+",
        default=[0.0, 0.1, 0.25, 0.5, 1.0],
        help="noise scales in diffusion units (latents have unit spread per dimension)",
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()
    rows = probe(args.model_dir, args.dataset, args.split, args.clips, args.noise, args.seed)
    print(
        f"{'latents':20s} {'bone dev max (m)':>17s} {'bone dev p95 (m)':>17s} {'rel. speed':>11s} {'jitter':>8s} {'skating':>8s}"
    )
    for name, row in rows.items():
        print(
            f"{name:20s} {row['bone_dev_max_m']:17.3f} {row['bone_dev_p95_m']:17.3f} "
            f"{row['relative_speed']:11.3f} {row['jitter']:8.0f} {row['skating']:8.3f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": str(args.model_dir), "split": args.split, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
