"""LCMScheduler (V1 spacing, V2 map, steps, boundary scalings, config) and the lcm_sample loop."""

from __future__ import annotations

import json

import pytest
import torch

from motionlcm import presets
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.diffusion.lcm import (
    LCMScheduler,
    LCMSchedulerOutput,
    embedded_guidance,
)
from motionlcm.diffusion.lcm_sampling import lcm_sample
from motionlcm.diffusion.schedules import predict_eps_from_x0

MOTIONLCM_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "original_inference_steps": 50,
    "set_alpha_to_one": False,
    "prediction_type": "epsilon",
    "timestep_scaling": 10.0,
}
B, L, D, C = 3, 2, 8, 6


def _diffusers_lcm(**overrides):
    diffusers = pytest.importorskip("diffusers")
    return diffusers.LCMScheduler(**{**MOTIONLCM_CONFIG, **overrides})


def _fixed_model(seed: int = 0):
    """A fixed random 'network': an affine map of the sample plus a timestep-dependent bias."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(D, D, generator=gen) / D**0.5
    bias = torch.randn(D, generator=gen)

    def model(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sample @ weight + bias * (int(t) / 1000)

    return model


# --------------------------------------------------------------------------------------------------
# timesteps


def test_defaults_are_motionlcm_v1():
    scheduler = LCMScheduler()
    assert scheduler.config == LCMScheduler.v1().config
    assert {k: scheduler.config[k] for k in MOTIONLCM_CONFIG} == MOTIONLCM_CONFIG
    assert scheduler.config["sigma_data"] == 0.5 and scheduler.config["timesteps_step_map"] is None
    assert scheduler.config["steps_offset"] == 0 == _diffusers_lcm().config.steps_offset


@pytest.mark.parametrize(
    ("steps", "expected"),
    [(1, [999]), (2, [999, 499]), (4, [999, 759, 499, 259]), (8, [999, 879, 759, 639, 499, 379, 259, 139])],
)
def test_v1_timesteps_match_diffusers(steps, expected):
    reference = _diffusers_lcm()
    scheduler = LCMScheduler.v1()
    reference.set_timesteps(steps)
    scheduler.set_timesteps(steps)
    assert scheduler.timesteps.tolist() == reference.timesteps.tolist() == expected
    assert scheduler.timesteps.dtype == torch.int64


@pytest.mark.parametrize(("steps", "expected"), sorted(presets.SAMPLING["v2"]["timesteps_step_map"].items()))
def test_v2_timesteps_are_the_map(steps, expected):
    scheduler = LCMScheduler.v2()
    scheduler.set_timesteps(steps)
    assert scheduler.timesteps.tolist() == expected
    assert presets.SAMPLING["v2"]["timesteps_step_map"] == {1: [799], 2: [699, 299], 4: [699, 399, 299, 299]}


def test_set_timesteps_rejects_bad_counts():
    with pytest.raises(ValueError, match="original_inference_steps"):
        LCMScheduler.v1().set_timesteps(51)
    with pytest.raises(ValueError, match="choose one of"):
        LCMScheduler.v2().set_timesteps(3)
    with pytest.raises(ValueError, match="outside"):
        LCMScheduler(timesteps_step_map={1: [1000]})


# --------------------------------------------------------------------------------------------------
# boundary scalings


def test_boundary_scalings_match_diffusers():
    reference = _diffusers_lcm()
    scheduler = LCMScheduler()
    for t in [0, 1, 19, 99, 259, 299, 499, 799, 999]:
        c_skip, c_out = scheduler.get_scalings_for_boundary_condition(t)
        ref_skip, ref_out = reference.get_scalings_for_boundary_condition_discrete(torch.tensor(t))
        torch.testing.assert_close(c_skip, torch.as_tensor(ref_skip), rtol=1e-6, atol=0)
        torch.testing.assert_close(c_out, torch.as_tensor(ref_out), rtol=1e-6, atol=0)
    c_skip, c_out = scheduler.get_scalings_for_boundary_condition(0)
    assert c_skip.item() == 1.0 and c_out.item() == 0.0


# --------------------------------------------------------------------------------------------------
# step


def _run_loops(scheduler, reference, steps, precomputed_noise):
    """Run both schedulers from the same z_T with the same re-injected noise; compare every step.

    diffusers always draws the noise from its generator; ours draws from an identically seeded one, or is
    given the same draws up front (`precomputed_noise`).
    """
    model = _fixed_model()
    scheduler.set_timesteps(steps)
    if reference.timesteps.tolist() != scheduler.timesteps.tolist():  # V2: as MotionLCM's subclass does
        reference.timesteps, reference.num_inference_steps = scheduler.timesteps.clone(), steps
    sample = ref_sample = torch.randn(B, L, D, generator=torch.Generator().manual_seed(1))
    gen, ref_gen = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    noise_gen = torch.Generator().manual_seed(2)  # the draws diffusers will make, in order
    draws = iter([torch.randn(B, L, D, generator=noise_gen) for _ in range(steps - 1)])
    for t in scheduler.timesteps:
        kwargs = {"noise": next(draws, None)} if precomputed_noise else {"generator": gen}
        out = scheduler.step(model(sample, t), t, sample, **kwargs)
        ref_out = reference.step(model(ref_sample, t), t, ref_sample, generator=ref_gen)
        assert isinstance(out, LCMSchedulerOutput)
        torch.testing.assert_close(out.denoised, ref_out.denoised, rtol=0, atol=1e-6)
        torch.testing.assert_close(out.prev_sample, ref_out.prev_sample, rtol=0, atol=1e-6)
        sample, ref_sample = out.prev_sample, ref_out.prev_sample
    return sample


@pytest.mark.parametrize("precomputed_noise", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_v1_loop_matches_diffusers(steps, precomputed_noise):
    reference = _diffusers_lcm()
    reference.set_timesteps(steps)
    _run_loops(LCMScheduler.v1(), reference, steps, precomputed_noise)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_v2_loop_matches_diffusers_with_the_map(steps):
    reference = _diffusers_lcm()
    reference.set_timesteps(1)
    _run_loops(LCMScheduler.v2(), reference, steps, precomputed_noise=False)


def test_v2_repeated_299_is_renoise_then_denoise():
    scheduler = LCMScheduler.v2()
    scheduler.set_timesteps(4)
    model = _fixed_model()
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(B, L, D, generator=gen)
    noises = [torch.randn(B, L, D, generator=gen) for _ in range(4)]
    outs = []
    for i, t in enumerate(scheduler.timesteps):
        assert scheduler.step_index == (None if i == 0 else i)
        outs.append(scheduler.step(model(sample, t), t, sample, noise=noises[i]))
        sample = outs[-1].prev_sample
    assert scheduler.step_index == 4
    # step 3 (t = 299) re-noises its denoised value to the next timestep, 299 again
    torch.testing.assert_close(outs[2].prev_sample, scheduler.add_noise(outs[2].denoised, noises[2], 299))
    # step 4 (t = 299) denoises that and returns the denoised value without noise (noises[3] unused)
    assert torch.equal(outs[3].prev_sample, outs[3].denoised)
    assert not torch.equal(outs[3].denoised, outs[2].denoised)


def test_last_step_returns_denoised_and_one_step_ignores_noise():
    scheduler = LCMScheduler.v2()
    scheduler.set_timesteps(1)
    sample, eps = torch.randn(2, B, L, D, generator=torch.Generator().manual_seed(0))
    out = scheduler.step(eps, 799, sample, noise=torch.full_like(sample, 1e6))
    assert torch.equal(out.prev_sample, out.denoised)
    c_skip, c_out = scheduler.get_scalings_for_boundary_condition(799)
    x0_hat = (sample - (1 - scheduler.alphas_cumprod[799]).sqrt() * eps) / scheduler.alphas_cumprod[799].sqrt()
    torch.testing.assert_close(out.denoised, c_skip * sample + c_out * x0_hat)


def test_step_rejects_misuse():
    scheduler = LCMScheduler.v1()
    sample = torch.zeros(B, L, D)
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(sample, 999, sample)
    scheduler.set_timesteps(2)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(sample, 500, sample)
    scheduler.step(sample, 999, sample)
    with pytest.raises(ValueError, match="expected timestep 499"):
        scheduler.step(sample, 999, sample)
    scheduler.step(sample, 499, sample)
    with pytest.raises(ValueError, match="finished"):
        scheduler.step(sample, 499, sample)


def test_add_noise_matches_diffusers():
    reference = _diffusers_lcm()
    x0, noise = torch.randn(2, B, L, D, generator=torch.Generator().manual_seed(0))
    timesteps = torch.tensor([0, 299, 999])
    expected = reference.add_noise(x0, noise, timesteps)
    torch.testing.assert_close(LCMScheduler().add_noise(x0, noise, timesteps), expected, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize("preset", ["v1", "v2"])
def test_config_json_round_trip(preset):
    scheduler = getattr(LCMScheduler, preset)()
    rebuilt = LCMScheduler.from_config(json.loads(json.dumps(scheduler.config)))
    assert rebuilt.config == scheduler.config
    for steps in (1, 2, 4):
        scheduler.set_timesteps(steps)
        rebuilt.set_timesteps(steps)
        assert rebuilt.timesteps.tolist() == scheduler.timesteps.tolist()


def test_from_diffusers_config():
    reference = _diffusers_lcm()
    scheduler = LCMScheduler.from_config(dict(reference.config))
    assert scheduler.config == LCMScheduler.v1().config
    torch.testing.assert_close(scheduler.alphas_cumprod, reference.alphas_cumprod, rtol=0, atol=0)
    with pytest.raises(ValueError, match="thresholding"):
        LCMScheduler.from_config({**reference.config, "thresholding": True})
    with pytest.raises(ValueError, match="unknown config keys"):
        LCMScheduler.from_config({"num_inference_steps": 4})


# --------------------------------------------------------------------------------------------------
# guidance values and lcm_sample


def test_v2_guidance_and_embedded_value():
    assert presets.GUIDANCE["v2"] == {1: 8.0, 2: 12.5, 4: 13.5}
    assert [embedded_guidance(s) for s in (7.5, 8.0, 12.5, 13.5)] == [6.5, 7.0, 11.5, 12.5]


class PerfectStudent:
    """Predicts the exact noise of a known x0 at every z_t; records its calls."""

    def __init__(self, x0: torch.Tensor, alphas_cumprod: torch.Tensor) -> None:
        self.x0, self.alphas_cumprod = x0, alphas_cumprod
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, sample, timestep, text_emb, guidance_emb=None):
        assert timestep.shape == (sample.shape[0],) and timestep.dtype == torch.int64
        assert text_emb.shape == (sample.shape[0], 1, C)
        self.calls.append((timestep.clone(), guidance_emb))
        return predict_eps_from_x0(sample, self.x0, timestep, self.alphas_cumprod)


def _sample_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, L, D, generator=gen),
        torch.randn(B, 1, C, generator=gen),
        torch.randn(B, L, D, generator=gen),
    )


@pytest.mark.parametrize(("preset", "steps"), [("v2", 1), ("v2", 2), ("v2", 4), ("v1", 1), ("v1", 4)])
def test_perfect_student_recovers_x0(preset, steps):
    x0, text_emb, noise = _sample_inputs()
    scheduler = getattr(LCMScheduler, preset)()
    student = PerfectStudent(x0, scheduler.alphas_cumprod)
    out = lcm_sample(
        student,
        scheduler,
        text_emb,
        noise,
        steps,
        guidance_scale=8.0,
        generator=torch.Generator().manual_seed(0),
    )
    # at t >= 259, c_skip < 1e-7 and c_out = 1 - O(1e-7): the consistency function is x̂0 = x0
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-5)
    assert len(student.calls) == steps
    assert [int(t[0]) for t, _ in student.calls] == scheduler.timesteps.tolist()


def test_lcm_sample_embeds_s_minus_one():
    x0, text_emb, noise = _sample_inputs()
    scheduler = LCMScheduler.v2()
    student = PerfectStudent(x0, scheduler.alphas_cumprod)
    lcm_sample(student, scheduler, text_emb, noise, 2, guidance_scale=presets.GUIDANCE["v2"][2])
    expected = guidance_scale_embedding(torch.full((B,), 11.5))
    for _, guidance_emb in student.calls:
        torch.testing.assert_close(guidance_emb, expected, rtol=0, atol=0)


def test_lcm_sample_is_reproducible_with_a_seed():
    _, text_emb, noise = _sample_inputs()
    gen_model = torch.Generator().manual_seed(3)
    weight = torch.randn(D, D, generator=gen_model) / D**0.5

    def student(sample, timestep, text, guidance_emb=None):
        return torch.tanh(sample @ weight) + timestep[:, None, None] / 1000

    def run(seed):
        return lcm_sample(
            student,
            LCMScheduler.v2(),
            text_emb,
            noise,
            4,
            guidance_scale=13.5,
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(run(0), run(0))
    assert not torch.allclose(run(0), run(1))


def test_from_preset_names_the_two_versions_only():
    assert LCMScheduler.from_preset("v1").config == LCMScheduler.v1().config
    assert LCMScheduler.from_preset("v2").config == LCMScheduler.v2().config
    with pytest.raises(ValueError, match="'v3' is not one of v1, v2"):
        LCMScheduler.from_preset("v3")
