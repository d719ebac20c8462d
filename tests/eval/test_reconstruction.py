"""VAE reconstruction metrics (MPJPE aligned/unaligned, FeaError) and their evaluation loop."""

from __future__ import annotations

import numpy as np
import torch

from motionlcm.eval.reconstruction import evaluate_reconstruction, feature_error_sum, mpjpe_sum
from motionlcm.models.folder import save_model_folder
from motionlcm.models.vae import MotionVAE, VAEConfig


def test_mpjpe_alignment_and_mask():
    target = torch.randn(2, 5, 22, 3)
    shifted = target + torch.tensor([0.3, 0.0, 0.4])  # a 0.5 m translation of every joint
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)
    assert float(mpjpe_sum(shifted, target, mask, align_root=True)) < 1e-5
    assert np.isclose(float(mpjpe_sum(shifted, target, mask, align_root=False)), 0.5 * 8, atol=1e-5)
    garbage = shifted.clone()
    garbage[0, 3:] += 100.0  # padded frames must not count
    assert np.isclose(float(mpjpe_sum(garbage, target, mask, align_root=False)), 0.5 * 8, atol=1e-4)


def test_feature_error_is_frobenius_per_sequence():
    target = torch.zeros(2, 4, 263)
    pred = target.clone()
    pred[0, :2, 0] = 3.0  # |error| = sqrt(9 + 9)
    pred[1, :, 1] = 4.0  # only the first 1 frame is valid in sequence 1
    value = float(feature_error_sum(pred, target, torch.tensor([2, 1])))
    assert np.isclose(value, np.sqrt(18) + 4.0)


def test_evaluate_reconstruction_runs_on_a_dataset(bn_dataset_dir, tmp_path):
    torch.manual_seed(0)
    mean, std = np.load(bn_dataset_dir / "Mean.npy"), np.load(bn_dataset_dir / "Std.npy")
    model = save_model_folder(tmp_path / "vae", vae=MotionVAE(VAEConfig.tiny()), mean=mean, std=std)
    first = evaluate_reconstruction(model, bn_dataset_dir, split="train", min_length=20, use_mean=True)
    again = evaluate_reconstruction(model, bn_dataset_dir, split="train", min_length=20, use_mean=True)
    assert first == again and first["clips"] == 12 and first["frames"] > 12 * 20
    assert first["mpjpe_mm"] > 0 and first["mpjpe_unaligned_mm"] > 0 and np.isfinite(first["feature_error"])
