"""Diffusion math: noise schedules, DDIM and LCM schedulers, classifier-free guidance, consistency
distillation terms and sampling loops.

Pure torch (and numpy): importable without Lightning or diffusers.
"""

from motionlcm.diffusion.ddim import DDIMScheduler, DDIMSchedulerOutput
from motionlcm.diffusion.guidance import classifier_free_guidance, guidance_scale_embedding
from motionlcm.diffusion.lcm import LCMScheduler, LCMSchedulerOutput
from motionlcm.diffusion.lcm_sampling import lcm_sample
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
    "LCMScheduler",
    "LCMSchedulerOutput",
    "add_noise",
    "alphas_cumprod",
    "classifier_free_guidance",
    "ddim_sample",
    "guidance_scale_embedding",
    "lcm_sample",
    "linear_betas",
    "predict_eps_from_x0",
    "predict_x0_from_eps",
    "scaled_linear_betas",
]
