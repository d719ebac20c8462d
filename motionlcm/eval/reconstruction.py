"""VAE reconstruction metrics as MLD/MotionLCM report them (official MotionLCM `mld/models/metrics/pos.py`).

MPJPE is summed per frame and divided by the total number of valid frames, root-aligned (pelvis
subtracted) and unaligned; the kinematic metrics (eval/kinematics.py) of the real clips and of their
reconstructions are averaged over clips, with the ratio of relative joint speeds (a VAE that drops the
motion and keeps each clip's mean pose scores far below 1); FeaError is the Frobenius norm of each sequence's normalised-feature error
(padding removed), summed over sequences and divided by the total frame count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from motionlcm.data.collate import collate_motion
from motionlcm.data.features import features_to_joints
from motionlcm.data.humanml3d import HumanML3DDataset
from motionlcm.data.normalizer import Normalizer
from motionlcm.eval.kinematics import kinematic_summary
from motionlcm.models.folder import load_model_folder


def mpjpe_sum(pred: Tensor, target: Tensor, mask: Tensor, align_root: bool) -> Tensor:
    """Sum over valid frames of the mean joint error: joints (B, T, J, 3), mask (B, T) -> scalar (m)."""
    if align_root:
        pred, target = pred - pred[..., :1, :], target - target[..., :1, :]
    per_frame = torch.linalg.vector_norm(pred - target, dim=-1).mean(-1)
    return (per_frame * mask).sum()


def feature_error_sum(pred: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """Sum over sequences of the Frobenius norm of the feature error on valid frames: scalar."""
    return sum(torch.linalg.norm(pred[i, :n] - target[i, :n]) for i, n in enumerate(lengths.tolist()))


@torch.no_grad()
def evaluate_reconstruction(
    model_dir: str | Path,
    dataset_dir: str | Path,
    split: str = "test",
    batch_size: int = 64,
    min_length: int = 40,
    use_mean: bool = False,
    seed: int = 1234,
) -> dict[str, float]:
    """Reconstruct every clip of a split through the model folder's VAE and report the metrics.

    Clips are taken from their first frame, their length rounded down to a multiple of 4 (no random crop).
    `use_mean=False` decodes a posterior sample, as the official evaluation does.
    """
    folder = load_model_folder(model_dir)
    if folder.vae is None or folder.mean is None:
        raise ValueError(f"{model_dir}: needs a VAE and Mean/Std")
    normalizer = Normalizer(folder.mean, folder.std)
    dataset = HumanML3DDataset(
        dataset_dir, split=split, normalizer=normalizer, min_length=min_length, random_crop=False, seed=seed
    )
    torch.manual_seed(seed)
    mean, std = torch.as_tensor(folder.mean), torch.as_tensor(folder.std)
    totals = {"mpjpe": 0.0, "mpjpe_unaligned": 0.0, "feature_error": 0.0, "frames": 0}
    kinematics: dict[str, list[dict[str, float]]] = {"real": [], "recon": []}
    for start in range(0, len(dataset), batch_size):
        batch = collate_motion([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        x, lengths, mask = batch["features"], batch["lengths"], batch["mask"].float()
        z, _ = folder.vae.encode(x, lengths, use_mean=use_mean)
        recon = folder.vae.decode(z, lengths)
        pred, target = features_to_joints(recon * std + mean), features_to_joints(x * std + mean)
        totals["mpjpe"] += float(mpjpe_sum(pred, target, mask, align_root=True))
        totals["mpjpe_unaligned"] += float(mpjpe_sum(pred, target, mask, align_root=False))
        totals["feature_error"] += float(feature_error_sum(recon, x, lengths))
        totals["frames"] += int(lengths.sum())
        for i, n in enumerate(lengths.tolist()):
            kinematics["real"].append(kinematic_summary(target[i, :n].numpy()))
            kinematics["recon"].append(kinematic_summary(pred[i, :n].numpy()))
    frames = max(1, totals["frames"])
    result = {
        "clips": len(dataset),
        "frames": totals["frames"],
        "mpjpe_mm": 1000 * totals["mpjpe"] / frames,
        "mpjpe_unaligned_mm": 1000 * totals["mpjpe_unaligned"] / frames,
        "feature_error": totals["feature_error"] / frames,
    }
    for role, rows in kinematics.items():
        for key in rows[0] if rows else ():
            result[f"{role}_{key}"] = float(np.mean([row[key] for row in rows]))
    if kinematics["real"]:
        result["relative_speed_ratio"] = result["recon_relative_speed"] / max(result["real_relative_speed"], 1e-12)
    return result
