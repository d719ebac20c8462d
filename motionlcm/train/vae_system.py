"""VAESystem: trains the motion VAE (smooth-L1 on features and joints, KL 1e-4; official `configs/vae.yaml`,
`mld/models/modeltype/vae.py`),
optionally with a joint-velocity term and a smaller smooth-L1 beta (docs/benchmarks.md "VAE screen")."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor

from motionlcm.data.features import features_to_joints
from motionlcm.data.normalizer import Normalizer
from motionlcm.models.vae import MotionVAE
from motionlcm.train.ema import EMA
from motionlcm.train.losses import frame_differences, kl_to_standard_normal, masked_smooth_l1
from motionlcm.train.optim import build_optimizer
from motionlcm.train.rng import RNGStateMixin


def latent_spread(z: Tensor, valid: Tensor | None) -> Tensor:
    """(D,) standard deviation of each latent dimension over a batch's real tokens (detached)."""
    tokens = z[valid.to(z.device)] if valid is not None else z.flatten(0, -2)
    return tokens.detach().std(0).clamp_min(1e-3)


class VAESystem(RNGStateMixin, pl.LightningModule):
    """Lightning wiring around a `MotionVAE`.

    Args:
        vae: the model to train.
        normalizer: the dataset's Mean/Std (joints are computed on de-normalised features).
        lr, warmup_steps, total_steps, weight_decay: AdamW + warm-up + cosine (official: 2e-4, 1000).
        rec_feats_weight, rec_joints_weight, kl_weight: loss weights (official: 1, 1, 1e-4).
        rec_vel_weight: weight of a smooth-L1 loss on joint velocities (metres per frame); official 0.
        rec_acc_weight: weight of a smooth-L1 loss on joint accelerations (second differences, metres per
            frame^2); official 0. Penalises the broadband jitter a decoder adds (docs/benchmarks.md).
        rec_beta: smooth-L1 beta of the reconstruction terms (official 1.0; 0 is plain L1). Per-frame motion
            is small next to each clip's mean pose in normalised features and in metres, so with beta 1 its
            errors sit in the quadratic zone, where their gradient vanishes and the mean pose wins.
        ema_decay: keep an exponential moving average of the weights (exported instead) when set.
        latent_noise: during training, decode the latent sample plus Gaussian noise of this many times each
            latent dimension's spread over the batch (0: off). A diffusion model's samples land near, not
            on, the encoder's latents; a decoder that has only seen a thin shell around each posterior mean
            turns them into stretched bones (docs/benchmarks.md, "The model must move"). Scaled by the
            spread, the noise cannot be outrun by the encoder inflating its latents.
    """

    def __init__(
        self,
        vae: MotionVAE,
        normalizer: Normalizer,
        lr: float = 2e-4,
        warmup_steps: int = 1000,
        total_steps: int = 100_000,
        weight_decay: float = 0.0,
        rec_feats_weight: float = 1.0,
        rec_joints_weight: float = 1.0,
        kl_weight: float = 1e-4,
        rec_vel_weight: float = 0.0,
        rec_acc_weight: float = 0.0,
        rec_beta: float = 1.0,
        ema_decay: float | None = None,
        latent_noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.vae = vae
        self.register_buffer("mean", torch.as_tensor(normalizer.mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(normalizer.std, dtype=torch.float32), persistent=False)
        self.lr, self.warmup_steps, self.total_steps, self.weight_decay = lr, warmup_steps, total_steps, weight_decay
        self.weights = {"rec_feats": rec_feats_weight, "rec_joints": rec_joints_weight, "kl": kl_weight}
        if rec_vel_weight:
            self.weights["rec_vel"] = rec_vel_weight
        if rec_acc_weight:
            self.weights["rec_acc"] = rec_acc_weight
        self.rec_beta = rec_beta
        self.latent_noise = latent_noise
        self.ema = EMA(vae, ema_decay) if ema_decay else None

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        """Reconstruct normalised features (B, T, 263) through a latent sample."""
        z, _ = self.vae.encode(features, lengths)
        return self.vae.decode(z, lengths)

    def joints(self, features: Tensor) -> Tensor:
        """Normalised features (B, T, 263) -> joints (B, T, 22, 3) in metres (differentiable)."""
        return features_to_joints(features * self.std + self.mean)

    def compute_loss(self, batch: dict) -> dict[str, Tensor]:
        x, lengths, mask = batch["features"], batch["lengths"], batch["mask"]
        z, dist = self.vae.encode(x, lengths)
        if self.latent_noise and self.training:
            valid = self.vae.latent_mask(lengths)
            noise = self.latent_noise * latent_spread(z, valid) * torch.randn_like(z)
            z = z + (noise * valid[:, :, None].to(z.device) if valid is not None else noise)
        recon = self.vae.decode(z, lengths)
        pred_joints, true_joints, beta = self.joints(recon), self.joints(x), self.rec_beta
        terms = {
            "rec_feats": masked_smooth_l1(recon, x, mask, beta).mean(),
            "rec_joints": masked_smooth_l1(pred_joints, true_joints, mask, beta).mean(),
            "kl": kl_to_standard_normal(dist.loc.transpose(0, 1), dist.scale.transpose(0, 1)).mean(),
        }
        if "rec_vel" in self.weights or "rec_acc" in self.weights:
            pred_vel, true_vel = frame_differences(pred_joints), frame_differences(true_joints)
            if "rec_vel" in self.weights:
                terms["rec_vel"] = masked_smooth_l1(pred_vel, true_vel, mask[:, 1:], beta).mean()
            if "rec_acc" in self.weights:
                pred_acc, true_acc = frame_differences(pred_vel), frame_differences(true_vel)
                terms["rec_acc"] = masked_smooth_l1(pred_acc, true_acc, mask[:, 2:], beta).mean()
        terms["loss"] = sum(self.weights[k] * v for k, v in terms.items())
        return terms

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.compute_loss(batch)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=False, batch_size=len(batch["lengths"]))
        self.log("loss", terms["loss"], prog_bar=True, logger=False, batch_size=len(batch["lengths"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        terms = self.compute_loss(batch)
        size = len(batch["lengths"])
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, prog_bar=False, sync_dist=True, batch_size=size)

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.vae.parameters(), self.lr, self.warmup_steps, self.total_steps, self.weight_decay)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update(self.vae)

    def export_vae(self) -> MotionVAE:
        """The weights to ship: the EMA average when enabled, else the trained model."""
        return self.ema.average if self.ema is not None else self.vae
