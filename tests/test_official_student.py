"""A converted official-layout MotionLCM student gives the hand-computed 1-step latents (V1 and V2)."""

from __future__ import annotations

import math

import pytest
import torch

from motionlcm.cli import main
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.diffusion.schedules import alphas_cumprod, scaled_linear_betas
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.pipeline import MotionLCM


def official_student_checkpoint(path, version):
    torch.manual_seed(0)
    preset = getattr(DenoiserConfig, version)
    student = LatentDenoiser(preset(time_cond_proj_dim=256))
    torch.nn.init.normal_(student.time_embedding.cond_proj.weight, std=0.02)  # a distilled, non-zero projection
    vae = MotionVAE(getattr(VAEConfig, version)())
    state = {f"vae.{k}": v for k, v in vae.state_dict().items()}
    state |= {f"denoiser.{k}": v for k, v in student.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, path)
    return student.eval()


@pytest.mark.parametrize("version, t, scale", [("v2", 799, 8.0), ("v1", 999, 7.5)])
def test_one_step_latents_match_the_lcm_formula(tmp_path, version, t, scale):
    student = official_student_checkpoint(tmp_path / "motionlcm.ckpt", version)
    out = tmp_path / "model"
    assert main(["convert", "official", str(tmp_path / "motionlcm.ckpt"), "--version", version, "-o", str(out)]) == 0
    pipe = MotionLCM.from_pretrained(out, device="cpu")  # no text encoder, no Mean/Std: the sampler still runs
    assert pipe.kind == "student" and pipe.text_encoder is None
    cfg = student.config
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(2, cfg.latent_size, cfg.latent_dim, generator=generator)
    text = torch.randn(2, 1, 768, generator=generator)
    latents = pipe.sample_latents(text, noise, steps=1, guidance=scale)

    # By hand: one consistency step from pure noise at t with the embedded guidance w = s - 1
    # (official mld/models/modeltype/mld.py, _diffusion_reverse; diffusers LCMScheduler.step).
    with torch.no_grad():
        eps = student(noise, torch.tensor([t, t]), text, guidance_scale_embedding(torch.tensor([scale - 1] * 2)))
    alpha = alphas_cumprod(scaled_linear_betas())[t].double()
    x0 = (noise - (1 - alpha).sqrt() * eps) / alpha.sqrt()
    scaled = 10.0 * t
    c_skip, c_out = 0.25 / (scaled**2 + 0.25), scaled / math.sqrt(scaled**2 + 0.25)
    expected = (c_skip * noise + c_out * x0).float()
    assert torch.allclose(latents, expected, atol=1e-5)
    with pytest.raises(ValueError, match="text_encoder_path"):
        pipe("a person walks.", seconds=2)
