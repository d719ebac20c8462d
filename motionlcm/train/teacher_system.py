"""TeacherSystem: trains the MLD latent denoiser with epsilon prediction and caption dropout for CFG.

The VAE is frozen (eval mode); a motion becomes a latent sample z, noised to z_t at a uniform timestep,
and the denoiser predicts the noise from (z_t, t, text). Captions are replaced by "" with probability
`cond_dropout` (0.1, official `guidance_uncondp` in `configs/mld_t2m.yaml`) so the model also learns the
unconditional branch.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.schedules import add_noise
from motionlcm.models.denoiser import LatentDenoiser
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.models.vae import MotionVAE
from motionlcm.train.ema import EMA
from motionlcm.train.losses import masked_token_mse
from motionlcm.train.optim import build_optimizer
from motionlcm.train.rng import RNGStateMixin


class TeacherSystem(RNGStateMixin, pl.LightningModule):
    """Lightning wiring around a `LatentDenoiser`, a frozen `MotionVAE` and a frozen `TextEncoder`.

    The text encoder is deliberately not a registered submodule: its weights are never checkpointed.

    Args:
        denoiser: the model to train.
        vae: trained VAE (frozen).
        text_encoder: frozen text encoder; its `dim` must equal the denoiser's text_dim.
        scheduler: gives the noise schedule (alphas_cumprod) and num_train_timesteps.
        lr, warmup_steps, total_steps, weight_decay: AdamW + warm-up + cosine (official: 1e-4, 1000).
        cond_dropout: probability of training a sample with the empty caption.
        latent_use_mean: encode motions to the posterior mean instead of a sample (official: sample).
        ema_decay: keep an exponential moving average of the denoiser (exported instead) when set.
    """

    def __init__(
        self,
        denoiser: LatentDenoiser,
        vae: MotionVAE,
        text_encoder: TextEncoder,
        scheduler: DDIMScheduler,
        lr: float = 1e-4,
        warmup_steps: int = 1000,
        total_steps: int = 100_000,
        weight_decay: float = 0.0,
        cond_dropout: float = 0.1,
        latent_use_mean: bool = False,
        ema_decay: float | None = None,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.vae = vae.eval().requires_grad_(False)
        object.__setattr__(self, "text_encoder", text_encoder)  # not a submodule: not checkpointed
        self.scheduler = scheduler
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone().float(), persistent=False)
        self.lr, self.warmup_steps, self.total_steps, self.weight_decay = lr, warmup_steps, total_steps, weight_decay
        self.cond_dropout, self.latent_use_mean = cond_dropout, latent_use_mean
        self.ema = EMA(denoiser, ema_decay) if ema_decay else None

    def train(self, mode: bool = True) -> TeacherSystem:
        super().train(mode)
        self.vae.eval()  # frozen: dropout stays off
        return self

    def setup(self, stage: str) -> None:
        self.text_encoder.to(self.device)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> Tensor:
        return self.text_encoder(texts).to(self.device)

    @torch.no_grad()
    def encode_motion(self, features: Tensor, lengths: Tensor) -> Tensor:
        z, _ = self.vae.encode(features, lengths, use_mean=self.latent_use_mean)
        return z

    def drop_captions(self, texts: list[str]) -> list[str]:
        keep = torch.rand(len(texts)) >= self.cond_dropout
        return [t if k else "" for t, k in zip(texts, keep.tolist(), strict=False)]

    def compute_loss(self, batch: dict, drop_captions: bool = True) -> dict[str, Tensor]:
        z0 = self.encode_motion(batch["features"], batch["lengths"])
        texts = self.drop_captions(batch["texts"]) if drop_captions else batch["texts"]
        text_emb = self.encode_text(texts)
        t = torch.randint(0, self.scheduler.num_train_timesteps, (z0.shape[0],), device=z0.device)
        noise = torch.randn_like(z0)
        z_t = add_noise(z0, noise, t, self.alphas_cumprod)
        mask = self.vae.latent_mask(batch["lengths"])  # segment latents: only the clip's own tokens
        if mask is None:
            return {"loss": F.mse_loss(self.denoiser(z_t, t, text_emb), noise)}
        mask = mask.to(z0.device)
        eps = self.denoiser(z_t, t, text_emb, latent_mask=mask)
        return {"loss": masked_token_mse(eps, noise, mask).mean()}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.compute_loss(batch)
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(batch["texts"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        terms = self.compute_loss(batch, drop_captions=False)
        self.log("val/loss", terms["loss"], sync_dist=True, batch_size=len(batch["texts"]))

    def configure_optimizers(self) -> dict:
        return build_optimizer(
            self.denoiser.parameters(), self.lr, self.warmup_steps, self.total_steps, self.weight_decay
        )

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update(self.denoiser)

    def export_denoiser(self) -> LatentDenoiser:
        """The weights to ship: the EMA average when enabled, else the trained model."""
        return self.ema.average if self.ema is not None else self.denoiser
