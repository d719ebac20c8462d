"""Neural networks: the motion VAE and the latent denoiser (MLD teacher / LCM student), plus model folders."""

from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig

__all__ = ["DenoiserConfig", "LatentDenoiser", "MotionVAE", "VAEConfig"]
