"""Consistency-distillation math: solver grid, boundary scalings, CFG teacher targets, losses and EMA."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.distill import (
    cfg_teacher_target,
    consistency_distillation_loss,
    consistency_function,
    ddim_solver_step,
    ddim_solver_timesteps,
    distillation_timesteps,
    ema_update,
    l2_loss,
    pseudo_huber_loss,
    sample_distillation_step_indices,
    sample_guidance_weights,
    teacher_ode_solution,
    trajectory_distillation_loss,
)
from motionlcm.diffusion.lcm import boundary_scalings
from motionlcm.diffusion.schedules import add_noise, alphas_cumprod, predict_x0_from_eps, scaled_linear_betas

ALPHAS_CUMPROD = alphas_cumprod(scaled_linear_betas())
B, L, D = 4, 2, 8


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------------
# timesteps


def test_solver_timesteps_v1_and_v2():
    assert ddim_solver_timesteps(50).tolist() == list(range(19, 1000, 20))
    assert ddim_solver_timesteps(10).tolist() == list(range(99, 1000, 100))
    assert ddim_solver_timesteps(50).dtype == torch.int64


def test_distillation_timesteps_skip_back_k_and_clamp_at_zero():
    start, target = distillation_timesteps(torch.tensor([0, 1, 49]), 50)
    assert start.tolist() == [19, 39, 999] and target.tolist() == [0, 19, 979]
    start, target = distillation_timesteps(torch.tensor([0, 9]), 10)
    assert start.tolist() == [99, 999] and target.tolist() == [0, 899]


def test_random_indices_and_weights_are_per_sample_and_in_range():
    gen = torch.Generator().manual_seed(0)
    n = sample_distillation_step_indices(1000, 10, generator=gen)
    assert n.shape == (1000,) and n.dtype == torch.int64 and set(n.tolist()) == set(range(10))
    w = sample_guidance_weights(1000, 5.0, 15.0, generator=gen)
    assert w.shape == (1000,) and 5.0 <= w.min() and w.max() <= 15.0 and w.std() > 2.0


# --------------------------------------------------------------------------------------------------
# consistency parameterisation


def test_boundary_scalings_at_zero_and_beyond_19():
    c_skip, c_out = boundary_scalings(torch.tensor([0, 19, 99, 999]))
    assert c_skip[0].item() == 1.0 and c_out[0].item() == 0.0
    torch.testing.assert_close(
        c_skip[1:], torch.tensor([0.25 / (190**2 + 0.25), 0.25 / (990**2 + 0.25), 0.25 / (9990**2 + 0.25)])
    )
    assert 6.5e-6 < c_skip[1] < 7.5e-6 and 2.5e-7 < c_skip[2] < 2.7e-7
    assert torch.all((1 - c_out[1:]).abs() < 1e-5)


def test_consistency_function_is_identity_at_zero_and_x0_hat_late():
    z_t, eps = _randn(2, B, L, D)
    out = consistency_function(z_t, eps, torch.tensor([0, 0, 999, 999]), ALPHAS_CUMPROD)
    torch.testing.assert_close(out[:2], z_t[:2], rtol=0, atol=0)
    x0_hat = predict_x0_from_eps(z_t, eps, 999, ALPHAS_CUMPROD)
    torch.testing.assert_close(out[2:], x0_hat[2:], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# the CFG-augmented DDIM solver


@pytest.mark.parametrize("num_ddim_timesteps", [50, 10])
def test_zero_guidance_target_is_a_ddim_step_of_the_conditional_branch(num_ddim_timesteps):
    k = 1000 // num_ddim_timesteps
    # A leading DDIM schedule offset by k - 1 is the solver grid; its step from t_0 lands on ᾱ_0
    # (set_alpha_to_one=False), as the solver does at n = 0.
    ddim = DDIMScheduler(steps_offset=k - 1, set_alpha_to_one=False)
    ddim.set_timesteps(num_ddim_timesteps)
    assert sorted(ddim.timesteps.tolist()) == ddim_solver_timesteps(num_ddim_timesteps).tolist()
    indices = torch.tensor([0, 1, num_ddim_timesteps // 2, num_ddim_timesteps - 1])
    s, t = distillation_timesteps(indices, num_ddim_timesteps)
    z_s, eps_c, eps_u = _randn(3, B, L, D)
    target = cfg_teacher_target(eps_c, eps_u, z_s, s, t, torch.zeros(B), ALPHAS_CUMPROD)
    for i in range(B):
        expected = ddim.step(eps_c[i : i + 1], int(s[i]), z_s[i : i + 1]).prev_sample
        torch.testing.assert_close(target[i : i + 1], expected, rtol=1e-5, atol=1e-5)


def test_perfect_teacher_target_is_the_forward_process_at_t_prev():
    x0, noise, other = _randn(3, B, L, D)
    s, t = distillation_timesteps(torch.tensor([0, 3, 7, 9]), 10)
    z_s = add_noise(x0, noise, s, ALPHAS_CUMPROD)
    # cond = uncond = the true noise: the guided ε and x̂0 are exact for any w
    target = cfg_teacher_target(noise, noise, z_s, s, t, torch.tensor([5.0, 8.0, 12.0, 15.0]), ALPHAS_CUMPROD)
    torch.testing.assert_close(target, add_noise(x0, noise, t, ALPHAS_CUMPROD), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(target, add_noise(x0, other, t, ALPHAS_CUMPROD))


def test_guided_target_uses_one_plus_w_per_sample():
    z_s, eps_c, eps_u = _randn(3, B, L, D)
    s, t = distillation_timesteps(torch.tensor([2, 2, 5, 5]), 10)
    w = torch.tensor([0.0, 7.0, 0.0, 7.0])
    eps_hat = eps_c + w[:, None, None] * (eps_c - eps_u)
    x0_hat = predict_x0_from_eps(z_s, eps_hat, s, ALPHAS_CUMPROD)
    expected = ddim_solver_step(x0_hat, eps_hat, ALPHAS_CUMPROD[t])
    target = cfg_teacher_target(eps_c, eps_u, z_s, s, t, w, ALPHAS_CUMPROD)
    torch.testing.assert_close(target, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# losses and EMA


def test_pseudo_huber_limits_and_zero():
    x = _randn(B, L, D)
    assert torch.equal(pseudo_huber_loss(x, x, 0.5), torch.zeros(B))
    small = torch.full((B, L, D), 1e-3)
    torch.testing.assert_close(
        pseudo_huber_loss(small, torch.zeros_like(small), 0.5),
        l2_loss(small, torch.zeros_like(small)) / (2 * 0.5),
        rtol=1e-4,
        atol=0,
    )
    large = torch.full((B, L, D), 100.0)
    torch.testing.assert_close(
        pseudo_huber_loss(large, torch.zeros_like(large), 0.001),
        torch.full((B,), 100.0 - 0.001),
        rtol=1e-6,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="c must be > 0"):
        pseudo_huber_loss(x, x, 0.0)


def test_l2_loss_is_per_sample_mse():
    pred, target = _randn(2, B, L, D)
    assert l2_loss(pred, target).shape == (B,)
    torch.testing.assert_close(l2_loss(pred, target).mean(), nn.functional.mse_loss(pred, target))


def test_ema_update_moves_target_five_percent_towards_online():
    online = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    online_before = [p.clone() for p in online.parameters()]
    ema_update(target, online, decay=0.95)
    for p_new, p_old, p_online in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(p_new, p_old + 0.05 * (p_online - p_old))
        assert not p_new.requires_grad or p_new.grad is None
    for p, p0 in zip(online.parameters(), online_before, strict=True):
        assert torch.equal(p, p0)
    with pytest.raises(ValueError, match="different parameters"):
        ema_update(target, nn.Linear(3, 4), decay=0.95)


def _oracle(noise):
    """A network that predicts the true noise of its input at every timestep."""
    return lambda z, t: noise


def test_distillation_loss_vanishes_for_oracle_networks_and_not_for_a_wrong_student():
    torch.manual_seed(0)
    z0, noise = torch.randn(B, L, D), torch.randn(B, L, D)
    n, w = torch.tensor([1, 3, 5, 9]), torch.full((B,), 7.0)
    args = dict(
        teacher=lambda z, t: (noise, noise), target=_oracle(noise), alphas_cumprod=ALPHAS_CUMPROD, num_ddim_timesteps=10
    )
    # every network knows ε: the student's f(z_s, s) and the target's f(z_t, t) are both z0 (c_skip ≈ 0 for t ≥ 99)
    exact = consistency_distillation_loss(z0, noise, n, w, student=_oracle(noise), **args)
    assert exact.shape == (B,) and exact.max() < 1e-6
    wrong = consistency_distillation_loss(z0, noise, n, w, student=_oracle(-noise), **args)
    assert wrong.min() > 0.1
    squared = consistency_distillation_loss(z0, noise, n, w, student=_oracle(-noise), huber_c=None, **args)
    assert (squared > wrong).all()  # the squared error grows faster than pseudo-Huber for |r| ≫ c


def test_distillation_loss_trains_only_the_student():
    torch.manual_seed(0)
    student, teacher, target = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
    z0, noise = torch.randn(B, L, D), torch.randn(B, L, D)
    loss = consistency_distillation_loss(
        z0,
        noise,
        torch.tensor([0, 2, 4, 9]),
        torch.full((B,), 5.0),
        student=lambda z, t: student(z),
        teacher=lambda z, t: (teacher(z), teacher(z) * 0.5),
        target=lambda z, t: target(z),
        alphas_cumprod=ALPHAS_CUMPROD,
        num_ddim_timesteps=10,
    ).mean()
    loss.backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    assert teacher.weight.grad is None and target.weight.grad is None


# --------------------------------------------------------------------------------------------------
# trajectory distillation (the one-step map against the teacher's own sample)


def test_teacher_ode_solution_is_the_guided_ddim_sampler_on_the_same_grid():
    from motionlcm.diffusion.sampling import ddim_sample
    from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser

    torch.manual_seed(0)
    teacher = LatentDenoiser(DenoiserConfig.tiny(text_dim=6, latent_size=L, latent_dim=D)).eval()
    text, empty, noise = torch.randn(B, 1, 6), torch.randn(1, 1, 6), torch.randn(B, L, D)
    w = 6.5
    scheduler = DDIMScheduler(timestep_spacing="trailing", set_alpha_to_one=True)  # 999, 899, ..., 99, then ᾱ = 1
    expected = ddim_sample(teacher, scheduler, text, empty, noise, num_inference_steps=10, guidance_scale=1 + w)

    def both(z, t):
        return teacher(z, t, text), teacher(z, t, empty.expand_as(text))

    grid = ddim_solver_timesteps(10).flip(0)
    got = teacher_ode_solution(noise, torch.full((B,), w), both, ALPHAS_CUMPROD, grid)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-4)  # latents reach |z| ≈ 35: float32 rounding
    other = teacher_ode_solution(noise, torch.full((B,), 1.0), both, ALPHAS_CUMPROD, grid)
    assert (other - got).abs().max() > 1e-3  # w reaches the solve


def _student_that_lands_on(goal, t_value):
    """An ε-predictor whose consistency function at `t_value` returns exactly `goal`."""
    a = ALPHAS_CUMPROD[t_value]
    c_skip, c_out = boundary_scalings(torch.tensor(t_value))

    def eps(z, t):
        x0 = (goal - c_skip * z) / c_out
        return (z - a.sqrt() * x0) / (1 - a).sqrt()

    return eps


def test_trajectory_loss_vanishes_for_a_student_on_the_teacher_sample_and_trains_only_the_student():
    torch.manual_seed(0)
    noise, w = torch.randn(B, L, D), torch.full((B,), 7.0)
    lin = nn.Linear(D, D)
    teacher = lambda z, t: (lin(z), 0.5 * lin(z))  # noqa: E731
    grid = ddim_solver_timesteps(10).flip(0)
    goal = teacher_ode_solution(noise, w, teacher, ALPHAS_CUMPROD, grid)
    args = dict(teacher=teacher, alphas_cumprod=ALPHAS_CUMPROD, solver_timesteps=grid, student_timestep=799)
    exact = trajectory_distillation_loss(noise, w, _student_that_lands_on(goal, 799), **args)
    assert exact.shape == (B,) and exact.max() < 1e-6
    student = nn.Linear(D, D)
    loss = trajectory_distillation_loss(noise, w, lambda z, t: student(z), **args)
    assert loss.min() > 1e-3
    loss.mean().backward()
    assert student.weight.grad.abs().sum() > 0 and lin.weight.grad is None
    # the student is called at the sampler's timestep, not at the grid's first point
    seen = []
    trajectory_distillation_loss(noise, w, lambda z, t: seen.append(t) or student(z), **args)
    assert seen[0].tolist() == [799] * B
