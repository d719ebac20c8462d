"""DistillSystem: latent consistency distillation of an MLD teacher into a 1-4 step student (MotionLCM).

Wiring only: the loss is `motionlcm.diffusion.distill.consistency_distillation_loss` (a plain function). The online
student is trained, the target is its EMA (decay 0.95), the teacher is frozen. The student starts as a
copy of the teacher (optionally with wider feed-forward blocks, grown function-preservingly) with a
zero-initialised guidance projection; the target starts as an exact copy of the student.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pytorch_lightning as pl
import torch
from torch import Tensor

from motionlcm import presets
from motionlcm.data.collate import lengths_to_mask
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.distill import (
    consistency_distillation_loss,
    ddim_solver_timesteps,
    distillation_distance,
    ema_update,
    one_step_samples,
    sample_distillation_step_indices,
    sample_guidance_weights,
)
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.models.denoiser import LatentDenoiser, widen_feed_forward
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.models.vae import MotionVAE
from motionlcm.train.losses import check_geometry_weights, foot_contact_loss, root_motion_loss
from motionlcm.train.optim import build_optimizer
from motionlcm.train.rng import RNGStateMixin

LOSSES = ("huber", "l2")
PRESETS = presets.DISTILLATION  # solver points N, pseudo-Huber c per version (motionlcm/presets.py)


def student_from_teacher(
    teacher: LatentDenoiser, time_cond_proj_dim: int = 256, ff_size: int | None = None
) -> LatentDenoiser:
    """A student with the teacher's weights and a zero guidance projection (equal outputs at start).

    `ff_size` larger than the teacher's gives a wider student that still starts as the teacher's function
    (`widen_feed_forward`): the consistency function need not have the teacher's size.
    """
    if ff_size is not None and ff_size != teacher.config.ff_size:
        teacher = widen_feed_forward(teacher, ff_size)
    student = LatentDenoiser(replace(teacher.config, time_cond_proj_dim=time_cond_proj_dim))
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or set(missing) != {"time_embedding.cond_proj.weight"}:
        raise ValueError(f"teacher and student layouts differ: missing {missing}, unexpected {unexpected}")
    return student


class DistillSystem(RNGStateMixin, pl.LightningModule):
    """Lightning wiring for consistency distillation.

    Args:
        teacher: trained MLD denoiser (frozen).
        vae: trained VAE (frozen).
        text_encoder: frozen text encoder (not checkpointed).
        scheduler: the teacher's noise schedule.
        num_ddim_timesteps: N solver points, skip k = 1000 // N (V1 50, V2 10).
        w_min, w_max: guidance range sampled per sample (5, 15).
        loss: "huber" (pseudo-Huber with `huber_c`) or "l2".
        huber_c: pseudo-Huber constant (V1 0.001, V2 0.5).
        ema_decay: target-network EMA decay (0.95).
        lr, warmup_steps, total_steps, weight_decay: AdamW + warm-up + cosine (official 2e-4, 1000).
        frozen_dropout: keep dropout active in the teacher, target and VAE, as the official code
            unintentionally does (docs/distillation.md, "Dropout in the frozen networks"); default False (eval mode).
        export: weights to ship, "online" (official) or "target" (the EMA).
        student_ff_size: feed-forward width of the student; None = the teacher's. A larger value distils
            into a wider network that starts as the teacher's function (`widen_feed_forward`).
        trajectory_weight: weight of `trajectory_distillation_loss` beside the consistency loss (0: off,
            MotionLCM). Each step then also solves the guided teacher from fresh noise down the N-point grid
            and pulls the student's one-step output there (N more teacher calls per step).
        one_step_timestep: the timestep 1-step sampling calls the student at (V2 799, V1 999).
        student: start from these student weights (a previous distillation) instead of the teacher's.
        contact_weight: weight of `foot_contact_loss` on the decoded one-step sample from fresh noise (0:
            off, MotionLCM), whose feet then hold still where its own labels say they are planted. Needs
            `mean` and `std`, the feature statistics the VAE decodes to.
        root_weight: weight of `root_motion_loss` of the same sample to the teacher's sample from the same
            noise (with `contact_weight`). Alone, the contact term taught a student to stop walking within
            100 steps, and at the contact term's weight to walk at half the pace (docs/benchmarks.md "Where
            the skating comes from").
        mean, std: (263,) feature statistics (for `contact_weight` and `root_weight`).
    """

    def __init__(
        self,
        teacher: LatentDenoiser,
        vae: MotionVAE,
        text_encoder: TextEncoder,
        scheduler: DDIMScheduler,
        num_ddim_timesteps: int = 10,
        w_min: float = 5.0,
        w_max: float = 15.0,
        loss: str = "huber",
        huber_c: float = 0.5,
        ema_decay: float = 0.95,
        lr: float = 2e-4,
        warmup_steps: int = 1000,
        total_steps: int = 100_000,
        weight_decay: float = 0.0,
        frozen_dropout: bool = False,
        export: str = "online",
        student_ff_size: int | None = None,
        trajectory_weight: float = 0.0,
        one_step_timestep: int = 999,
        student: LatentDenoiser | None = None,
        contact_weight: float = 0.0,
        root_weight: float = 0.0,
        mean: Tensor | None = None,
        std: Tensor | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss: {loss!r} is not one of {', '.join(LOSSES)}")
        if export not in ("online", "target"):
            raise ValueError(f"export: {export!r} is not 'online' or 'target'")
        if not trajectory_weight >= 0:
            raise ValueError(f"trajectory_weight: expected a number >= 0, got {trajectory_weight}")
        check_geometry_weights(contact_weight, root_weight, mean, std)
        if not 0 <= one_step_timestep < len(scheduler.alphas_cumprod):
            raise ValueError(f"one_step_timestep: {one_step_timestep} is outside the schedule's timesteps")
        if student is None:
            student = student_from_teacher(teacher, ff_size=student_ff_size)
        elif student.config.time_cond_proj_dim is None:
            raise ValueError("student: the initial student has no guidance embedding (a teacher, not a student)")
        elif student_ff_size is not None and student_ff_size != student.config.ff_size:
            raise ValueError(
                f"student_ff_size: {student_ff_size} differs from the initial student's {student.config.ff_size}"
            )
        self.student = student
        self.target = copy.deepcopy(self.student).requires_grad_(False)
        self.teacher = teacher.requires_grad_(False)
        self.vae = vae.requires_grad_(False)
        object.__setattr__(self, "text_encoder", text_encoder)  # not a submodule: not checkpointed
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone().float(), persistent=False)
        self.num_ddim_timesteps, self.w_range = num_ddim_timesteps, (w_min, w_max)
        self.loss_name, self.huber_c, self.ema_decay = loss, huber_c, ema_decay
        self.lr, self.warmup_steps, self.total_steps, self.weight_decay = lr, warmup_steps, total_steps, weight_decay
        self.frozen_dropout, self.export = frozen_dropout, export
        self.trajectory_weight, self.one_step_timestep = float(trajectory_weight), int(one_step_timestep)
        self.contact_weight, self.root_weight = float(contact_weight), float(root_weight)
        if mean is not None and std is not None:
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone(), persistent=False)
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone(), persistent=False)
        # the teacher's decreasing DDIM grid of the trajectory term (999, 899, ..., 99 for N = 10)
        grid = ddim_solver_timesteps(num_ddim_timesteps, len(scheduler.alphas_cumprod)).flip(0)
        self.register_buffer("solver_grid", grid, persistent=False)
        self.batched_teacher = True  # one teacher call on [cond; uncond]; False: two calls (same numbers)
        self.set_frozen_modes(training=True)

    def set_frozen_modes(self, training: bool) -> None:
        """Teacher, target and VAE in eval mode, or (frozen_dropout) following the system's mode."""
        for module in (self.teacher, self.target, self.vae):
            module.train(training and self.frozen_dropout)

    def train(self, mode: bool = True) -> DistillSystem:
        super().train(mode)
        self.set_frozen_modes(mode)
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning (>= 2.3) does not call .train() on the whole module when fitting starts; it keeps each
        # submodule's mode and restores the recorded modes after validation. Set the frozen modes here.
        self.set_frozen_modes(training=True)

    def setup(self, stage: str) -> None:
        self.text_encoder.to(self.device)

    @torch.no_grad()
    def encode(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """Latents z0 (B, L, D), caption embeddings and empty-caption embeddings (B, 1, C)."""
        z0, _ = self.vae.encode(batch["features"], batch["lengths"])
        cond = self.text_encoder(batch["texts"]).to(self.device)
        uncond = self.text_encoder([""]).to(self.device).expand_as(cond)
        return z0, cond, uncond

    def teacher_predictions(
        self, z_s: Tensor, s: Tensor, cond: Tensor, uncond: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The teacher's ε for the caption and for the empty caption: one call on the doubled batch
        (`batched_teacher`, the default) or two calls as the official step makes them."""
        if not self.batched_teacher:
            return self.teacher(z_s, s, cond, latent_mask=mask), self.teacher(z_s, s, uncond, latent_mask=mask)
        doubled = None if mask is None else torch.cat([mask, mask])
        eps = self.teacher(torch.cat([z_s, z_s]), torch.cat([s, s]), torch.cat([cond, uncond]), latent_mask=doubled)
        return eps.chunk(2)

    def compute_loss(self, batch: dict) -> dict[str, Tensor]:
        """`consistency_distillation_loss` on one batch; this method only binds the networks to the text."""
        z0, cond, uncond = self.encode(batch)
        batch_size = z0.shape[0]
        n = sample_distillation_step_indices(batch_size, self.num_ddim_timesteps, device=z0.device)
        noise = torch.randn_like(z0)
        w = sample_guidance_weights(batch_size, *self.w_range, device=z0.device)
        w_emb = guidance_scale_embedding(w).to(z0.dtype)
        mask = self.vae.latent_mask(batch["lengths"])  # segment latents: only the clip's own tokens count
        mask = None if mask is None else mask.to(z0.device)
        student = lambda z, t: self.student(z, t, cond, w_emb, latent_mask=mask)  # noqa: E731
        teacher = lambda z, t: self.teacher_predictions(z, t, cond, uncond, mask)  # noqa: E731
        huber_c = self.huber_c if self.loss_name == "huber" else None
        per_sample = consistency_distillation_loss(
            z0,
            noise,
            n,
            w,
            student=student,
            teacher=teacher,
            target=lambda z, t: self.target(z, t, cond, w_emb, latent_mask=mask),
            alphas_cumprod=self.alphas_cumprod,
            num_ddim_timesteps=self.num_ddim_timesteps,
            huber_c=huber_c,
            mask=mask,
        )
        terms = {"consistency": per_sample.mean()}
        motion = self.contact_weight > 0 or self.root_weight > 0
        if self.trajectory_weight > 0 or motion:
            pred, goal = one_step_samples(
                torch.randn_like(z0),
                w,
                student=student,
                teacher=teacher,
                alphas_cumprod=self.alphas_cumprod,
                solver_timesteps=self.solver_grid,
                student_timestep=self.one_step_timestep,
            )
            if self.trajectory_weight > 0:
                terms["trajectory"] = distillation_distance(pred, goal, huber_c, mask).mean()
            if motion:
                terms |= self.motion_terms(pred, goal, batch["lengths"])
        terms["loss"] = (
            terms["consistency"]
            + self.trajectory_weight * terms.get("trajectory", 0.0)
            + self.contact_weight * terms.get("contact", 0.0)
            + self.root_weight * terms.get("root", 0.0)
        )
        return terms

    def motion_terms(self, pred: Tensor, goal: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """On the decoded one-step sample: `foot_contact_loss`, and `root_motion_loss` against the teacher's
        sample from the same noise (planted feet, without stopping the body to get them)."""
        lengths = lengths.to(pred.device)
        features = self.vae.decode(pred, lengths) * self.std + self.mean
        with torch.no_grad():
            reference = self.vae.decode(goal, lengths) * self.std + self.mean
        mask = lengths_to_mask(lengths, features.shape[1])
        return {
            "contact": foot_contact_loss(features, mask).mean(),
            "root": root_motion_loss(features, reference, mask).mean(),
        }

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.compute_loss(batch)
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(batch["texts"]))
        for name in ("trajectory", "contact", "root"):
            if name in terms:
                self.log(f"train/{name}", terms[name], batch_size=len(batch["texts"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        terms = self.compute_loss(batch)
        self.log("val/loss", terms["loss"], sync_dist=True, batch_size=len(batch["texts"]))

    def configure_optimizers(self) -> dict:
        return build_optimizer(
            self.student.parameters(), self.lr, self.warmup_steps, self.total_steps, self.weight_decay
        )

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        ema_update(self.target, self.student, self.ema_decay)

    def export_student(self) -> LatentDenoiser:
        """The student weights to ship: online (as the official code saves) or the EMA target."""
        return self.student if self.export == "online" else self.target
