"""Classifier-free guidance, the guidance-scale embedding and the DDIM sampling loop."""

from __future__ import annotations

import math

import pytest
import torch

from motionlcm.diffusion import (
    DDIMScheduler,
    add_noise,
    classifier_free_guidance,
    ddim_sample,
    guidance_scale_embedding,
    predict_eps_from_x0,
)

B, L, D, C = 3, 2, 8, 6


class ToyDenoiser:
    """A fixed random per-sample map (sample, t, text) -> ε that records the batch size of every call."""

    def __init__(self, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(D, D, generator=gen) / D**0.5
        self.text_weight = torch.randn(C, D, generator=gen)
        self.batch_sizes: list[int] = []

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        assert timestep.shape == (sample.shape[0],) and timestep.dtype == torch.int64
        assert text_emb.shape == (sample.shape[0], 1, C)
        self.batch_sizes.append(sample.shape[0])
        return torch.tanh(sample @ self.weight + text_emb @ self.text_weight + timestep[:, None, None] / 1000)


def _inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, 1, C, generator=gen),
        torch.randn(1, 1, C, generator=gen),
        torch.randn(B, L, D, generator=gen),
    )


def _reference_loop(denoiser, text_emb, uncond_emb, noise, guidance_scale):
    """Unbatched DDIM (η = 0) written out: two denoiser calls per step and CFG (one call if
    `guidance_scale` is None), then eq. 12 by hand."""
    alpha_bar = DDIMScheduler().alphas_cumprod
    z = noise
    for t in range(981, 0, -20):
        timestep = torch.full((B,), t)
        eps = denoiser(z, timestep, text_emb)
        if guidance_scale is not None:
            eps_uncond = denoiser(z, timestep, uncond_emb.expand(B, 1, C))
            eps = eps_uncond + guidance_scale * (eps - eps_uncond)
        a_t, a_prev = alpha_bar[t], alpha_bar[max(t - 20, 0)]  # t = 1 lands on ᾱ_0 (set_alpha_to_one False)
        x0 = (z - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return z


# --------------------------------------------------------------------------------------------------
# classifier-free guidance


def test_cfg_formula():
    gen = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, B, L, D, generator=gen)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 7.5), uncond + 7.5 * (cond - uncond))
    scales = torch.tensor([1.0, 2.0, 8.0]).view(B, 1, 1)
    guided = classifier_free_guidance(cond, uncond, scales)
    torch.testing.assert_close(guided[2], classifier_free_guidance(cond[2], uncond[2], 8.0))


# --------------------------------------------------------------------------------------------------
# guidance-scale embedding


def test_guidance_embedding_of_zero_is_zeros_then_ones():
    emb = guidance_scale_embedding(torch.zeros(2))
    assert emb.shape == (2, 256) and emb.dtype == torch.float32
    assert torch.equal(emb, torch.cat([torch.zeros(2, 128), torch.ones(2, 128)], dim=1))


def test_guidance_embedding_matches_direct_formula():
    w = torch.tensor([0.0, 0.5, 6.5, 14.0], dtype=torch.float64)
    emb = guidance_scale_embedding(w, embedding_dim=16, dtype=torch.float64)
    for row, w_value in enumerate(w.tolist()):
        for i in range(8):
            arg = 1000 * w_value * math.exp(-math.log(10000) * i / 7)
            assert emb[row, i].item() == pytest.approx(math.sin(arg), abs=1e-9)
            assert emb[row, 8 + i].item() == pytest.approx(math.cos(arg), abs=1e-9)


def test_guidance_embedding_float32_is_bit_exact_to_reference_ops():
    """The LCM reference (MotionLCM, diffusers' LCM pipeline) order of operations, restated."""
    w = torch.linspace(5.0, 15.0, 7)
    half = 128
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(torch.log(torch.tensor(10000.0)) / (half - 1)))
    args = (w * 1000.0)[:, None] * freqs[None, :]
    expected = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    assert torch.equal(guidance_scale_embedding(w), expected)


def test_guidance_embedding_odd_dim_is_zero_padded_and_errors():
    emb = guidance_scale_embedding(torch.tensor([3.0]), embedding_dim=9)
    assert emb.shape == (1, 9) and emb[0, -1] == 0
    torch.testing.assert_close(emb[:, :8], guidance_scale_embedding(torch.tensor([3.0]), embedding_dim=8))
    with pytest.raises(ValueError, match="shape"):
        guidance_scale_embedding(torch.zeros(2, 1))


# --------------------------------------------------------------------------------------------------
# sampling loop


def test_batched_cfg_sampler_equals_unbatched_reference_loop():
    text_emb, uncond_emb, noise = _inputs()
    denoiser = ToyDenoiser()
    latents = ddim_sample(denoiser, DDIMScheduler(), text_emb, uncond_emb, noise, guidance_scale=7.5)
    assert denoiser.batch_sizes == [2 * B] * 50
    expected = _reference_loop(ToyDenoiser(), text_emb, uncond_emb, noise, guidance_scale=7.5)
    torch.testing.assert_close(latents, expected, rtol=1e-5, atol=1e-5)


def test_uncond_embedding_may_be_one_or_per_sample():
    text_emb, uncond_emb, noise = _inputs(1)
    one = ddim_sample(ToyDenoiser(), DDIMScheduler(), text_emb, uncond_emb, noise, num_inference_steps=10)
    per_sample = ddim_sample(
        ToyDenoiser(), DDIMScheduler(), text_emb, uncond_emb.expand(B, 1, C), noise, num_inference_steps=10
    )
    assert torch.equal(one, per_sample)


@pytest.mark.parametrize("guidance_scale", [1.0, 0.5])
def test_no_guidance_runs_only_the_conditional_branch(guidance_scale):
    text_emb, _, noise = _inputs(2)
    denoiser = ToyDenoiser()
    latents = ddim_sample(denoiser, DDIMScheduler(), text_emb, None, noise, guidance_scale=guidance_scale)
    assert denoiser.batch_sizes == [B] * 50
    expected = _reference_loop(ToyDenoiser(), text_emb, None, noise, guidance_scale=None)
    torch.testing.assert_close(latents, expected, rtol=1e-5, atol=1e-5)


def test_guidance_without_uncond_embedding_raises():
    text_emb, _, noise = _inputs()
    with pytest.raises(ValueError, match="uncond_emb"):
        ddim_sample(ToyDenoiser(), DDIMScheduler(), text_emb, None, noise, guidance_scale=7.5)


def _perfect_denoiser(x0: torch.Tensor, alphas_cumprod: torch.Tensor):
    """The exact noise separating z_t from the known x0: ε = (z_t − √ᾱ_t·x0) / √(1 − ᾱ_t)."""

    def denoiser(sample, timestep, text_emb):
        return predict_eps_from_x0(sample, x0, timestep, alphas_cumprod)

    return denoiser


@pytest.mark.parametrize("num_inference_steps", [1, 10, 50])
def test_perfect_denoiser_recovers_x0(num_inference_steps):
    """With exact ε, DDIM (η = 0) keeps ε fixed along the path, so the chain ends exactly on x0 (ᾱ = 1).

    Exact up to the scheduler's float32 ᾱ coefficients (as in diffusers), hence 1e-6 on float64 latents.
    """
    text_emb, _, noise = _inputs(3)
    x0 = torch.randn(B, L, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    noise = noise.double()
    scheduler = DDIMScheduler(set_alpha_to_one=True)
    denoiser = _perfect_denoiser(x0, scheduler.alphas_cumprod.double())
    latents = ddim_sample(denoiser, scheduler, text_emb, None, noise, num_inference_steps, guidance_scale=1.0)
    torch.testing.assert_close(latents, x0, rtol=0, atol=1e-6)


def test_perfect_denoiser_with_mld_schedule_ends_at_alpha_bar_0():
    """MLD's set_alpha_to_one=False: the last step lands on t = 0, i.e. x0 noised with the constant ε."""
    text_emb, _, noise = _inputs(5)
    x0 = torch.randn(B, L, D, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    noise = noise.double()
    scheduler = DDIMScheduler()
    alpha_bar = scheduler.alphas_cumprod.double()
    eps = predict_eps_from_x0(noise, x0, 981, alpha_bar)  # the ε implied at the first step
    latents = ddim_sample(_perfect_denoiser(x0, alpha_bar), scheduler, text_emb, None, noise, guidance_scale=1.0)
    torch.testing.assert_close(latents, add_noise(x0, eps, 0, alpha_bar), rtol=0, atol=1e-6)
    assert not torch.allclose(latents, x0, atol=1e-3)  # √(1 − ᾱ_0) ≈ 0.029 of noise is left


def test_stochastic_sampling_is_seeded():
    text_emb, uncond_emb, noise = _inputs(7)

    def sample(seed):
        gen = torch.Generator().manual_seed(seed)
        return ddim_sample(
            ToyDenoiser(),
            DDIMScheduler(),
            text_emb,
            uncond_emb,
            noise,
            num_inference_steps=10,
            eta=1.0,
            generator=gen,
        )

    assert torch.equal(sample(0), sample(0))
    assert not torch.equal(sample(0), sample(1))
