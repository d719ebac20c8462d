"""TeacherSystem: trains the MLD latent denoiser with epsilon prediction and caption dropout for CFG.

The VAE is frozen (eval mode); a motion becomes a latent sample z, noised to z_t at a uniform timestep,
and the denoiser predicts the noise from (z_t, t, text). Captions are replaced by "" with probability
`cond_dropout` (0.1, official `guidance_uncondp` in `configs/mld_t2m.yaml`) so the model also learns the
unconditional branch.

Optional geometric terms (not in MLD; MDM's foot contact loss, Tevet et al. 2023, arXiv:2209.14916): at
timesteps below `geometry_max_timestep` the predicted clean latent x̂0 is decoded and its feet are held still
where the training clip's contact labels say they are planted (`contact_weight`), with its root motion held to
the clip's (`root_weight`): a foot penalty alone is cheapest to meet by slowing the whole body.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from motionlcm.data.collate import lengths_to_mask
from motionlcm.data.features import FOOT_CONTACT
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.schedules import add_noise, predict_x0_from_eps
from motionlcm.models.denoiser import LatentDenoiser
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.models.vae import MotionVAE
from motionlcm.train.ema import EMA
from motionlcm.train.losses import check_geometry_weights, foot_contact_loss, masked_token_mse, root_motion_loss
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
        contact_weight: weight of `foot_contact_loss` of the decoded x̂0 with the clip's contact labels
            (0: off, MLD).
        root_weight: weight of `root_motion_loss` of the decoded x̂0 against the clip (0: off).
        geometry_max_timestep: the two terms apply to samples noised to t below this (x̂0 is a blur of
            several motions at high t; docs/benchmarks.md "Where the skating comes from").
        mean, std: (nfeats,) feature statistics the VAE decodes to (needed by the two terms).
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
        contact_weight: float = 0.0,
        root_weight: float = 0.0,
        geometry_max_timestep: int = 200,
        mean: Tensor | None = None,
        std: Tensor | None = None,
    ) -> None:
        super().__init__()
        check_geometry_weights(contact_weight, root_weight, mean, std)
        self.denoiser = denoiser
        self.vae = vae.eval().requires_grad_(False)
        object.__setattr__(self, "text_encoder", text_encoder)  # not a submodule: not checkpointed
        self.scheduler = scheduler
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.clone().float(), persistent=False)
        self.lr, self.warmup_steps, self.total_steps, self.weight_decay = lr, warmup_steps, total_steps, weight_decay
        self.cond_dropout, self.latent_use_mean = cond_dropout, latent_use_mean
        self.ema = EMA(denoiser, ema_decay) if ema_decay else None
        self.contact_weight, self.root_weight = float(contact_weight), float(root_weight)
        self.geometry_max_timestep = int(geometry_max_timestep)
        if mean is not None and std is not None:
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone(), persistent=False)
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone(), persistent=False)

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
            eps = self.denoiser(z_t, t, text_emb)
            terms = {"diffusion": F.mse_loss(eps, noise)}
        else:
            mask = mask.to(z0.device)
            eps = self.denoiser(z_t, t, text_emb, latent_mask=mask)
            terms = {"diffusion": masked_token_mse(eps, noise, mask).mean()}
        if self.contact_weight > 0 or self.root_weight > 0:
            terms |= self.geometric_terms(batch, z_t, eps, t)
        terms["loss"] = (
            terms["diffusion"]
            + self.contact_weight * terms.get("contact", 0.0)
            + self.root_weight * terms.get("root", 0.0)
        )
        return terms

    def geometric_terms(self, batch: dict, z_t: Tensor, eps: Tensor, t: Tensor) -> dict[str, Tensor]:
        """`foot_contact_loss` (the clip's labels) and `root_motion_loss` (to the clip) of the decoded x̂0 of
        the samples noised below `geometry_max_timestep`, summed over them and divided by the batch size."""
        near = t < self.geometry_max_timestep
        if not near.any():
            zero = eps.sum() * 0.0  # keeps the graph: every rank calls backward on the same parameters
            return {"contact": zero, "root": zero}
        lengths = batch["lengths"].to(t.device)[near]
        x0 = predict_x0_from_eps(z_t[near], eps[near], t[near], self.alphas_cumprod)
        features = self.vae.decode(x0, lengths) * self.std + self.mean
        clip = batch["features"][near][:, : features.shape[1]] * self.std + self.mean
        mask = lengths_to_mask(lengths, features.shape[1])
        size = len(t)
        return {
            "contact": foot_contact_loss(features, mask, contacts=clip[..., FOOT_CONTACT]).sum() / size,
            "root": root_motion_loss(features, clip, mask).sum() / size,
        }

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.compute_loss(batch)
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=len(batch["texts"]))
        for name in ("contact", "root"):
            if name in terms:
                self.log(f"train/{name}", terms[name], batch_size=len(batch["texts"]))
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
