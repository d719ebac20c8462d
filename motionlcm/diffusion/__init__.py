"""Diffusion math: noise schedules, the DDIM scheduler, classifier-free guidance and sampling loops.

Pure torch (and numpy): importable without Lightning or diffusers.
"""

from motionlcm.diffusion.ddim import DDIMScheduler, DDIMSchedulerOutput
from motionlcm.diffusion.guidance import classifier_free_guidance, guidance_scale_embedding
from motionlcm.diffusion.sampling import ddim_sample
from motionlcm.diffusion.schedules import (
    add_noise,
    alphas_cumprod,
    linear_betas,
    predict_eps_from_x0,
    predict_x0_from_eps,
    scaled_linear_betas,
)

__all__ = [
    "DDIMScheduler",
    "DDIMSchedulerOutput",
    "add_noise",
    "alphas_cumprod",
    "classifier_free_guidance",
    "ddim_sample",
    "guidance_scale_embedding",
    "linear_betas",
    "predict_eps_from_x0",
    "predict_x0_from_eps",
    "scaled_linear_betas",
]
