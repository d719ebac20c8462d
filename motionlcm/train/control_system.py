"""ControlSystem: train a motion ControlNet and trajectory encoder on a frozen student (MotionLCM sec. 3.3;
official `train_motion_control.py`, `mld/models/modeltype/mld.py::train_diffusion_forward`; reference
section 7.3).

One step: encode the clip, take its real joints as hints under a random mask, noise the latent at a
solver timestep (or, with `one_step_fraction`, replace it by pure noise at the one-step sampling timestep,
the exact input of 1-step generation), let the ControlNet steer the frozen student's x0 prediction, and
minimise

    diffusion_weight * |x0 - z0|^2  +  control_weight * smooth-L1(joints(decode(x0)), hints) on the mask.

Only the ControlNet and the trajectory encoder train; student, VAE and text encoder are frozen (eval mode).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from motionlcm.data.features import features_to_joints
from motionlcm.data.hints import HintNormalizer, training_masks
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.distill import ddim_solver_timesteps, sample_guidance_weights
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.models.controlnet import ControlNet, TrajectoryEncoder
from motionlcm.models.denoiser import LatentDenoiser
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.models.vae import MotionVAE
from motionlcm.train.losses import masked_token_mse
from motionlcm.train.optim import build_optimizer
from motionlcm.train.rng import RNGStateMixin


def predicted_origin(eps: Tensor, z_t: Tensor, alpha_bar: Tensor) -> Tensor:
    """x0 = (z_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar), alpha_bar per sample (B,)."""
    a = alpha_bar[:, None, None]
    return (z_t - (1 - a).sqrt() * eps) / a.sqrt()


def masked_control_loss(joints: Tensor, hints: Tensor, mask: Tensor, beta: float = 1.0) -> Tensor:
    """Smooth-L1 (metres) of joints against hints over the controlled axes, the mean per sample then over the
    batch (official V2 spatial: `control_loss_func: l1_smooth` with beta 1, `vaeloss_type: mask`, `use_3d:
    true`). Below `beta` metres the loss is quadratic: beta 1 barely pulls at centimetre errors, a small beta
    (0.05) keeps an L1 pull down to a few centimetres."""
    weights = mask.to(joints.dtype)
    per_sample = (F.smooth_l1_loss(joints, hints, reduction="none", beta=beta) * weights).flatten(1).sum(1)
    return (per_sample / weights.flatten(1).sum(1).clamp_min(1.0)).mean()


class ControlSystem(RNGStateMixin, pl.LightningModule):
    """Lightning wiring for ControlNet training.

    Args:
        student: the trained consistency student (frozen).
        vae: its VAE (frozen; gradients flow through its decoder into the prediction).
        text_encoder: frozen text encoder (not checkpointed).
        scheduler: the noise schedule (for alphas_cumprod).
        controlnet: the ControlNet (from `controlnet_from_denoiser(student)`).
        trajectory_encoder: the hint encoder.
        hint_normalizer: joint statistics of the training set.
        mean, std: (263,) feature statistics of the model folder.
        joints: the joints trained to be controlled (`hints.CONTROL_JOINTS`).
        temporal: "initial motions" control (the first 25 % of frames) instead of spatial.
        temporal_share: with `temporal` False, the share of samples given a prefix all the same (a controller
            for both spatial control and `continue_motion`).
        prefix_joints: the joint sets a prefix holds, one drawn per sample (default: `joints`).
        random_prefix: prefixes of 1..25 % of the frames (any prefix a user gives) instead of exactly 25 %.
        joint_subsets: spatial samples control a random subset of `joints` instead of one joint.
        free_height: share of pelvis samples whose height is free (floor-plane paths).
        num_ddim_timesteps: N solver points the timesteps are drawn from (official V2 10).
        w_min, w_max: guidance range (official V2 5..15).
        one_step_timestep: the timestep of 1-step sampling (V2 799).
        one_step_fraction: share of samples given pure noise at `one_step_timestep` (0: official).
        diffusion_weight, control_weight: loss weights (official 1, `cond_ratio` 1).
        control_beta: smooth-L1 threshold of the control loss in metres (official 1.0).
        one_step_diffusion_weight: factor on the diffusion term of the pure-noise samples, whose only
            information about z0 is the text and the hints (regressing to z0 there averages motions out).
        preservation_weight: weight of |x0 - x0_free|^2, x0_free the frozen student's own prediction from the
            same input: the ControlNet changes the student's (sharp) sample as little as the hints allow,
            where the diffusion term pulls it towards the mean of the motions that fit (blurred, slower).
        lr, warmup_steps, total_steps, weight_decay: AdamW + warm-up + cosine (official 1e-4, 1000).
    """

    def __init__(
        self,
        student: LatentDenoiser,
        vae: MotionVAE,
        text_encoder: TextEncoder,
        scheduler: DDIMScheduler,
        controlnet: ControlNet,
        trajectory_encoder: TrajectoryEncoder,
        hint_normalizer: HintNormalizer,
        mean: Tensor,
        std: Tensor,
        joints: tuple[int, ...] = (0,),
        temporal: bool = False,
        temporal_share: float = 0.0,
        prefix_joints: tuple[tuple[int, ...], ...] | None = None,
        random_prefix: bool = False,
        joint_subsets: bool = False,
        free_height: float = 0.0,
        num_ddim_timesteps: int = 10,
        w_min: float = 5.0,
        w_max: float = 15.0,
        one_step_timestep: int = 799,
        one_step_fraction: float = 0.0,
        diffusion_weight: float = 1.0,
        control_weight: float = 1.0,
        control_beta: float = 1.0,
        one_step_diffusion_weight: float = 1.0,
        preservation_weight: float = 0.0,
        lr: float = 1e-4,
        warmup_steps: int = 1000,
        total_steps: int = 100_000,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if not all(0.0 <= v <= 1.0 for v in (one_step_fraction, free_height, temporal_share)):
            raise ValueError("one_step_fraction, free_height and temporal_share must lie in [0, 1]")
        self.student = student.eval().requires_grad_(False)
        self.vae = vae.eval().requires_grad_(False)
        self.controlnet, self.trajectory_encoder = controlnet, trajectory_encoder
        object.__setattr__(self, "text_encoder", text_encoder)  # not a submodule: not checkpointed
        self.hint_normalizer = hint_normalizer
        # checkpointed, so that a controller can be exported from any checkpoint (`export_control_checkpoint`)
        self.register_buffer("hint_mean", torch.as_tensor(hint_normalizer.mean))
        self.register_buffer("hint_std", torch.as_tensor(hint_normalizer.std))
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone().float(), persistent=False)
        self.register_buffer("solver_timesteps", ddim_solver_timesteps(num_ddim_timesteps), persistent=False)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32), persistent=False)
        self.joints, self.temporal, self.free_height = tuple(joints), temporal, free_height
        self.temporal_share, self.random_prefix, self.joint_subsets = temporal_share, random_prefix, joint_subsets
        self.prefix_joints = tuple(tuple(s) for s in prefix_joints) if prefix_joints else None
        self.w_range, self.one_step_timestep, self.one_step_fraction = (
            (w_min, w_max),
            one_step_timestep,
            one_step_fraction,
        )
        self.diffusion_weight, self.control_weight, self.control_beta = diffusion_weight, control_weight, control_beta
        self.one_step_diffusion_weight, self.preservation_weight = one_step_diffusion_weight, preservation_weight
        self.lr, self.warmup_steps, self.total_steps, self.weight_decay = lr, warmup_steps, total_steps, weight_decay

    def train(self, mode: bool = True) -> ControlSystem:
        super().train(mode)
        self.student.eval()
        self.vae.eval()
        return self

    def on_train_epoch_start(self) -> None:
        self.student.eval()  # Lightning keeps submodule modes: the frozen parts stay in eval mode
        self.vae.eval()

    def setup(self, stage: str) -> None:
        self.text_encoder.to(self.device)

    def joints_of(self, features: Tensor) -> Tensor:
        """(B, T, 22, 3) joints in metres from normalised features (differentiable)."""
        return features_to_joints(features * self.std + self.mean)

    def sample_timesteps(self, batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Per sample: a solver timestep, or the one-step timestep with pure-noise input (flag True)."""
        index = torch.randint(len(self.solver_timesteps), (batch,), device=device)
        pure = torch.rand(batch, device=device) < self.one_step_fraction
        t = torch.where(pure, torch.full_like(index, self.one_step_timestep), self.solver_timesteps[index])
        return t, pure

    def compute_loss(self, batch: dict) -> dict[str, Tensor]:
        features, lengths = batch["features"], batch["lengths"]
        with torch.no_grad():
            z0, _ = self.vae.encode(features, lengths)
            cond_text = self.text_encoder(batch["texts"]).to(self.device)
            real = self.joints_of(features)
        mask = training_masks(
            lengths.cpu(),
            features.shape[1],
            self.joints,
            self.temporal,
            free_height=self.free_height,
            temporal_share=self.temporal_share,
            prefix_joints=self.prefix_joints,
            random_prefix=self.random_prefix,
            joint_subsets=self.joint_subsets,
        )
        mask = mask.to(self.device) & batch["mask"][:, :, None, None]
        condition = self.trajectory_encoder(self.hint_normalizer.normalize(real), mask)
        t, pure = self.sample_timesteps(z0.shape[0], z0.device)
        alpha_bar = self.alphas_cumprod[t]
        noise = torch.randn_like(z0)
        z_t = torch.where(
            pure[:, None, None],
            noise,
            alpha_bar[:, None, None].sqrt() * z0 + (1 - alpha_bar[:, None, None]).sqrt() * noise,
        )
        w = sample_guidance_weights(z0.shape[0], *self.w_range, device=z0.device)
        w_emb = guidance_scale_embedding(w).to(z0.dtype)
        latent_mask = self.vae.latent_mask(lengths)
        latent_mask = None if latent_mask is None else latent_mask.to(z0.device)
        residuals = self.controlnet(z_t, t, cond_text, w_emb, latent_mask, condition=condition)
        eps = self.student(z_t, t, cond_text, w_emb, latent_mask, control_residuals=residuals)
        x0 = predicted_origin(eps, z_t, alpha_bar)
        if latent_mask is not None:
            x0 = x0 * latent_mask[:, :, None]
        token_mask = latent_mask if latent_mask is not None else torch.ones_like(z0[..., 0], dtype=torch.bool)
        per_sample = masked_token_mse(x0, z0, token_mask)
        diffusion = (per_sample * torch.where(pure, self.one_step_diffusion_weight, 1.0)).mean()
        joints = self.joints_of(self.vae.decode(x0, lengths, num_frames=features.shape[1]))
        control = masked_control_loss(joints, real, mask, self.control_beta)
        with torch.no_grad():
            distance = ((joints - real) * mask).norm(dim=-1)[mask.any(-1)].mean()
        loss = self.diffusion_weight * diffusion + self.control_weight * control
        terms = {"diffusion": diffusion, "control": control, "error_m": distance}
        if self.preservation_weight > 0:
            with torch.no_grad():
                free = predicted_origin(self.student(z_t, t, cond_text, w_emb, latent_mask), z_t, alpha_bar)
            terms["preservation"] = masked_token_mse(x0, free * token_mask[:, :, None], token_mask).mean()
            loss = loss + self.preservation_weight * terms["preservation"]
        return {"loss": loss, **terms}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.compute_loss(batch)
        size = len(batch["texts"])
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=size)
        self.log("train/error_m", terms["error_m"], prog_bar=True, batch_size=size)
        self.log("train/diffusion", terms["diffusion"], batch_size=size)
        if "preservation" in terms:
            self.log("train/preservation", terms["preservation"], batch_size=size)
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        terms = self.compute_loss(batch)
        size = len(batch["texts"])
        self.log("val/loss", terms["loss"], sync_dist=True, batch_size=size)
        self.log("val/error_m", terms["error_m"], sync_dist=True, batch_size=size)

    def configure_optimizers(self) -> dict:
        params = [*self.controlnet.parameters(), *self.trajectory_encoder.parameters()]
        return build_optimizer(params, self.lr, self.warmup_steps, self.total_steps, self.weight_decay)
