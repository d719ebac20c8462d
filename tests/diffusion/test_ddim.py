"""DDIMScheduler: timesteps, steps and config, checked against closed forms and diffusers."""

from __future__ import annotations

import json

import pytest
import torch

from motionlcm.diffusion import DDIMScheduler, add_noise

MLD_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


def _diffusers_ddim(**overrides):
    diffusers = pytest.importorskip("diffusers")
    return diffusers.DDIMScheduler(**{**MLD_CONFIG, **overrides})


def _fixed_model(seed: int = 0, dim: int = 8):
    """A fixed random 'network': an affine map of the sample plus a timestep-dependent bias."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(dim, dim, generator=gen) / dim**0.5
    bias = torch.randn(dim, generator=gen)

    def model(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sample @ weight + bias * (int(t) / 1000)

    return model


# --------------------------------------------------------------------------------------------------
# timesteps


def test_defaults_are_mld():
    assert DDIMScheduler().config == {**MLD_CONFIG, "clip_sample_range": 1.0}


def test_fifty_leading_steps_are_981_to_1():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(981, 0, -20))
    assert scheduler.timesteps.dtype == torch.int64


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("num_inference_steps", [1, 3, 10, 50, 100])
def test_set_timesteps_matches_diffusers(spacing, num_inference_steps):
    reference = _diffusers_ddim(timestep_spacing=spacing)
    scheduler = DDIMScheduler(timestep_spacing=spacing)
    reference.set_timesteps(num_inference_steps)
    scheduler.set_timesteps(num_inference_steps)
    assert scheduler.timesteps.tolist() == reference.timesteps.tolist()


def test_set_timesteps_rejects_bad_counts():
    with pytest.raises(ValueError, match="num_inference_steps"):
        DDIMScheduler().set_timesteps(1001)
    with pytest.raises(ValueError, match="num_inference_steps"):
        DDIMScheduler().set_timesteps(0)


# --------------------------------------------------------------------------------------------------
# step


def _run_loops(scheduler, reference, model, eta=0.0, prediction_type="epsilon", steps=50):
    """Run both schedulers side by side from the same z_T with the same η noise; compare every step."""
    scheduler.set_timesteps(steps)
    reference.set_timesteps(steps)
    assert scheduler.timesteps.tolist() == reference.timesteps.tolist()
    gen = torch.Generator().manual_seed(123)
    ours = theirs = torch.randn(4, 2, 8, generator=gen)
    for t in scheduler.timesteps:
        noise = torch.randn(ours.shape, generator=gen) if eta > 0 else None
        out = scheduler.step(model(ours, t), t, ours, eta=eta, variance_noise=noise)
        ref = reference.step(model(theirs, t), t, theirs, eta=eta, variance_noise=noise)
        torch.testing.assert_close(out.pred_original_sample, ref.pred_original_sample, rtol=0, atol=1e-6)
        torch.testing.assert_close(out.prev_sample, ref.prev_sample, rtol=0, atol=1e-6)
        ours, theirs = out.prev_sample, ref.prev_sample
    return ours


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_full_loop_matches_diffusers(eta):
    final = _run_loops(DDIMScheduler(), _diffusers_ddim(), _fixed_model(), eta=eta)
    assert torch.isfinite(final).all()


@pytest.mark.parametrize("prediction_type", ["sample", "v_prediction"])
def test_other_prediction_types_match_diffusers(prediction_type):
    model = _fixed_model(seed=1)
    _run_loops(
        DDIMScheduler(prediction_type=prediction_type),
        _diffusers_ddim(prediction_type=prediction_type),
        lambda z, t: 0.1 * model(z, t),
        steps=10,
    )


def test_clip_sample_matches_diffusers():
    _run_loops(DDIMScheduler(clip_sample=True), _diffusers_ddim(clip_sample=True), _fixed_model(), steps=10)


def test_generator_noise_matches_diffusers():
    scheduler, reference = DDIMScheduler(), _diffusers_ddim()
    scheduler.set_timesteps(10)
    reference.set_timesteps(10)
    sample = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    eps = _fixed_model()(sample, 501)
    ours = scheduler.step(eps, 501, sample, eta=1.0, generator=torch.Generator().manual_seed(7))
    ref = reference.step(eps, 501, sample, eta=1.0, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours.prev_sample, ref.prev_sample, rtol=0, atol=1e-6)


def test_eta_zero_step_is_eq_12():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(50)
    gen = torch.Generator().manual_seed(3)
    sample, eps = torch.randn(2, 2, 3, 8, generator=gen)
    out = scheduler.step(eps, 981, sample)
    a_t, a_prev = scheduler.alphas_cumprod[981], scheduler.alphas_cumprod[961]
    x0 = (sample - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    torch.testing.assert_close(out.pred_original_sample, x0)
    torch.testing.assert_close(out.prev_sample, a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps)


def test_last_step_lands_on_alpha_bar_0_or_1():
    gen = torch.Generator().manual_seed(4)
    sample, eps = torch.randn(2, 2, 3, 8, generator=gen)
    for set_alpha_to_one in (False, True):
        scheduler = DDIMScheduler(set_alpha_to_one=set_alpha_to_one)
        scheduler.set_timesteps(50)
        out = scheduler.step(eps, 1, sample)
        a_prev = torch.tensor(1.0) if set_alpha_to_one else scheduler.alphas_cumprod[0]
        expected = a_prev.sqrt() * out.pred_original_sample + (1 - a_prev).sqrt() * eps
        torch.testing.assert_close(out.prev_sample, expected)


def test_eta_zero_is_deterministic_and_eta_positive_uses_the_generator():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(50)
    sample = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(5))
    eps = _fixed_model()(sample, 501)
    assert torch.equal(scheduler.step(eps, 501, sample).prev_sample, scheduler.step(eps, 501, sample).prev_sample)

    def noisy(seed):
        return scheduler.step(eps, 501, sample, eta=1.0, generator=torch.Generator().manual_seed(seed)).prev_sample

    assert torch.equal(noisy(0), noisy(0))
    assert not torch.equal(noisy(0), noisy(1))


def test_step_errors():
    scheduler = DDIMScheduler()
    sample = torch.zeros(1, 2, 8)
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(sample, 981, sample)
    scheduler.set_timesteps(50)
    with pytest.raises(ValueError, match="not both"):
        scheduler.step(sample, 981, sample, eta=1.0, generator=torch.Generator(), variance_noise=sample)


def test_add_noise_method_matches_function_and_diffusers():
    scheduler, reference = DDIMScheduler(), _diffusers_ddim()
    gen = torch.Generator().manual_seed(6)
    x0, noise = torch.randn(2, 5, 2, 8, generator=gen)
    timesteps = torch.tensor([0, 1, 400, 981, 999])
    z_t = scheduler.add_noise(x0, noise, timesteps)
    torch.testing.assert_close(z_t, add_noise(x0, noise, timesteps, scheduler.alphas_cumprod))
    torch.testing.assert_close(z_t, reference.add_noise(x0, noise, timesteps), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# config


def test_config_round_trip_through_json():
    scheduler = DDIMScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, steps_offset=0)
    rebuilt = DDIMScheduler.from_config(json.loads(json.dumps(scheduler.config)))
    assert rebuilt.config == scheduler.config
    assert torch.equal(rebuilt.alphas_cumprod, scheduler.alphas_cumprod)
    assert len(rebuilt) == rebuilt.num_train_timesteps == 1000


def test_from_diffusers_config():
    reference = _diffusers_ddim()
    scheduler = DDIMScheduler.from_config(dict(reference.config))
    assert scheduler.config == DDIMScheduler().config
    with pytest.raises(ValueError, match="thresholding"):
        DDIMScheduler.from_config({**reference.config, "thresholding": True})


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown config keys"):
        DDIMScheduler.from_config({"num_train_timesteps": 1000, "betas": [0.1]})


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("beta_schedule", "cosine", "scaled_linear"),
        ("prediction_type", "x0", "v_prediction"),
        ("timestep_spacing", "uniform", "trailing"),
    ],
)
def test_unknown_choices_name_the_allowed_values(key, value, allowed):
    with pytest.raises(ValueError, match=allowed):
        DDIMScheduler(**{key: value})
