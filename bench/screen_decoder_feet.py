"""Screen: can the VAE decoder alone plant the feet? Fine-tunes only the decoder of a model folder (encoder,
latent space, teacher and student untouched) with the shipped VAE's reconstruction terms (stage 3:
features, joints, joint velocities, joint accelerations x 1000, latent noise 0.5) plus optional geometric
terms against the training clip, then measures on test clips the skating of the reconstructions and of the
student's generations decoded by the fine-tuned decoder.

Usage:
    python bench/screen_decoder_feet.py --name c10r10 --contact-weight 10 --root-weight 10 --steps 600
Terms (weights default 0):
- `--contact-weight`: MDM's foot contact loss with the clip's ground-truth labels (`losses.foot_contact_loss`);
- `--root-weight`: the root's turning and travel against the clip's (`losses.root_motion_loss`);
- `--foot-velocity-weight`: squared error of the ankles' and feet's horizontal velocities (m/s) against the
  clip's.
Writes bench/results/screen_decoder_feet_NAME.json and prints one row per evaluation.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.cleanup import clean_joints
from motionlcm.data.features import FOOT_CONTACT, features_to_joints
from motionlcm.eval.kinematics import foot_skating_ratio, relative_joint_speed, root_speed
from motionlcm.train.datamodule import HumanML3DDataModule
from motionlcm.train.losses import (
    foot_contact_loss,
    frame_differences,
    masked_sequence_mean,
    masked_smooth_l1,
    root_motion_loss,
)
from motionlcm.train.vae_system import latent_spread

REPO = Path(__file__).resolve().parents[1]
FOOT_JOINTS = [7, 8, 10, 11]  # ankles and feet, as foot_contact_loss
ACC_WEIGHT, LATENT_NOISE = 1000.0, 0.5  # configs/bandai-namco/vae-smooth.yaml, the shipped stage 3
FPS = 20.0


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, mean, std) -> tuple:
    """Stage 3's terms (VAESystem: rec_feats + rec_joints + rec_vel + 1000 rec_acc) and the joints/velocities."""
    pred, true = features_to_joints(recon * std + mean), features_to_joints(x * std + mean)
    pred_vel, true_vel = frame_differences(pred), frame_differences(true)
    loss = (
        masked_smooth_l1(recon, x, mask).mean()
        + masked_smooth_l1(pred, true, mask).mean()
        + masked_smooth_l1(pred_vel, true_vel, mask[:, 1:]).mean()
        + ACC_WEIGHT * masked_smooth_l1(frame_differences(pred_vel), frame_differences(true_vel), mask[:, 2:]).mean()
    )
    return loss, pred_vel, true_vel


def foot_velocity_loss(pred_vel: torch.Tensor, true_vel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    diff = (pred_vel - true_vel)[:, :, FOOT_JOINTS][..., [0, 2]] * FPS
    return masked_sequence_mean(diff.square().sum(-1).mean(-1), mask[:, 1:])


def test_clips(root: Path, count: int) -> tuple[list[str], list[np.ndarray]]:
    names = open(root / "test.txt").read().split()
    names = sorted(np.random.default_rng(0).choice(names, min(count, len(names)), replace=False))
    captions = [(root / "texts" / f"{n}.txt").read_text().split("\n")[0].split("#")[0] for n in names]
    return captions, [np.load(root / "new_joint_vecs" / f"{n}.npy")[:196] for n in names]


@torch.no_grad()
def evaluate(pipe, captions: list[str], features: list[np.ndarray], batch: int = 40) -> dict[str, float]:
    """Skating (cleaned joints, as users get them) of the reconstructions and of the student's samples
    (seeded per batch, the same for every decoder), root-aligned MPJPE of the reconstructions."""
    vae, mean, std = pipe.vae.eval(), pipe.mean, pipe.std
    out: dict[str, list[float]] = {
        k: [] for k in ("rec_skating", "rec_mpjpe_mm", "gen_skating", "gen_speed", "gen_root_speed")
    }
    for i in range(0, len(captions), batch):
        chunk = features[i : i + batch]
        lengths = [len(f) for f in chunk]
        x = torch.zeros(len(chunk), max(lengths), 263)
        for k, f in enumerate(chunk):
            x[k, : len(f)] = (torch.from_numpy(f).float() - mean) / std
        z, _ = vae.encode(x, torch.tensor(lengths), use_mean=True)
        recon = vae.decode(z, lengths) * std + mean
        pred, true = features_to_joints(recon).numpy(), features_to_joints(x * std + mean).numpy()
        contacts = recon[..., FOOT_CONTACT].numpy()
        for p, t, c, n in zip(pred, true, contacts, lengths, strict=True):
            out["rec_skating"].append(foot_skating_ratio(clean_joints(p[:n], c[:n])))
            aligned = (p[:n] - p[:n, :1]) - (t[:n] - t[:n, :1])
            out["rec_mpjpe_mm"].append(float(np.linalg.norm(aligned, axis=-1).mean() * 1000))
        for motion in pipe(captions[i : i + batch], frames=lengths, seed=i):
            joints = np.asarray(motion.joints, np.float64)
            out["gen_skating"].append(foot_skating_ratio(joints))
            out["gen_speed"].append(relative_joint_speed(joints))
            out["gen_root_speed"].append(root_speed(joints))
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "checkpoints" / "bandai-namco"), help="student model folder")
    parser.add_argument("--dataset", default=str(REPO / "data" / "bandai-namco"), help="HumanML3D-layout dataset")
    parser.add_argument("--name", required=True, help="variant name (JSON file name)")
    parser.add_argument("--steps", type=int, default=600, help="decoder fine-tuning steps (batches of 64)")
    parser.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    parser.add_argument("--contact-weight", type=float, default=0.0, help="weight of the foot contact loss")
    parser.add_argument("--root-weight", type=float, default=0.0, help="weight of the root motion loss")
    parser.add_argument("--foot-velocity-weight", type=float, default=0.0, help="weight of the foot velocity loss")
    parser.add_argument("--eval-every", type=int, default=300, help="evaluate every this many steps")
    parser.add_argument("--clips", type=int, default=200, help="test clips evaluated (a fixed random draw)")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the batches and the latent noise")
    args = parser.parse_args()
    from motionlcm import MotionLCM

    torch.manual_seed(args.seed)
    pipe = MotionLCM.from_pretrained(args.model, device="cpu")
    vae, mean, std = pipe.vae.float(), pipe.mean.float(), pipe.std.float()
    vae.encoder.requires_grad_(False)
    optimizer = torch.optim.AdamW(vae.decoder.parameters(), lr=args.lr)
    data = HumanML3DDataModule(args.dataset, batch_size=64, min_length=20, seed=args.seed, bucket_by_length=True)
    data.setup("fit")
    captions, features = test_clips(Path(args.dataset), args.clips)
    rows = [{"step": 0, **evaluate(pipe, captions, features)}]
    print(rows[-1], flush=True)
    step, start = 0, time.perf_counter()
    while step < args.steps:
        for batch in data.train_dataloader():
            vae.train()
            x, lengths, mask = batch["features"], batch["lengths"], batch["mask"]
            with torch.no_grad():
                z, _ = vae.encode(x, lengths)
                valid = vae.latent_mask(lengths)[:, :, None]
                z = z + LATENT_NOISE * latent_spread(z, valid[..., 0]) * torch.randn_like(z) * valid
            recon = vae.decode(z, lengths)
            loss, pred_vel, true_vel = reconstruction_loss(recon, x, mask, mean, std)
            xr, rr = x * std + mean, recon * std + mean
            if args.contact_weight:
                loss = loss + args.contact_weight * foot_contact_loss(rr, mask, contacts=xr[..., FOOT_CONTACT]).mean()
            if args.root_weight:
                loss = loss + args.root_weight * root_motion_loss(rr, xr, mask).mean()
            if args.foot_velocity_weight:
                loss = loss + args.foot_velocity_weight * foot_velocity_loss(pred_vel, true_vel, mask).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0 or step == args.steps:
                rows.append(
                    {"step": step, "minutes": (time.perf_counter() - start) / 60, **evaluate(pipe, captions, features)}
                )
                print(rows[-1], flush=True)
            if step >= args.steps:
                break
    out = REPO / "bench" / "results" / f"screen_decoder_feet_{args.name}.json"
    record = {"args": vars(args), "machine": platform.processor() or platform.machine(), "rows": rows}
    out.write_text(json.dumps(record, indent=1))
    print(out)


if __name__ == "__main__":
    main()
