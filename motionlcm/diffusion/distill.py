"""Latent consistency distillation (Luo et al. 2023, LCM; MotionLCM §3.2) as plain functions of tensors.

One training step is `consistency_distillation_loss` (bottom of this file), which composes the pieces
above it: solver timesteps, the consistency function (with the sampler's boundary scalings c_skip/c_out,
`motionlcm.diffusion.lcm`), the teacher's CFG-augmented DDIM step and the pseudo-Huber distance. The EMA
target update follows each optimiser step (`ema_update`).

Timesteps and w are per sample, shape (B,). Losses are per sample, shape (B,); the caller reduces.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from motionlcm.diffusion.guidance import classifier_free_guidance
from motionlcm.diffusion.lcm import SIGMA_DATA, TIMESTEP_SCALING, boundary_scalings
from motionlcm.diffusion.schedules import add_noise, predict_x0_from_eps


def _per_sample(x: Tensor, like: Tensor) -> Tensor:
    """Reshape a (B,) or scalar tensor to broadcast against `like` (B, ...)."""
    return x.reshape(-1, *([1] * (like.ndim - 1))).to(device=like.device, dtype=like.dtype)


# --------------------------------------------------------------------------------------------------
# timesteps


def ddim_solver_timesteps(num_ddim_timesteps: int, num_train_timesteps: int = 1000) -> Tensor:
    """The skipping-step solver grid: t_n = (n + 1) · k − 1 with k = T // N, n = 0..N−1
    (official `train_motionlcm.py`, `DDIMSolver`).

    V1 (N = 50): 19, 39, ..., 999. V2 (N = 10): 99, 199, ..., 999.

    Args:
        num_ddim_timesteps: N, the number of solver points.
        num_train_timesteps: T.

    Returns:
        The grid in increasing order, shape (N,), int64.
    """
    if not 1 <= num_ddim_timesteps <= num_train_timesteps:
        raise ValueError(f"num_ddim_timesteps must be in [1, {num_train_timesteps}], got {num_ddim_timesteps}")
    k = num_train_timesteps // num_ddim_timesteps
    return torch.arange(1, num_ddim_timesteps + 1, dtype=torch.long) * k - 1


def sample_distillation_step_indices(
    batch_size: int,
    num_ddim_timesteps: int,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> Tensor:
    """Solver indices n ~ U{0, ..., N−1}, one per sample (as in official `train_motionlcm.py`, `main`).

    Returns:
        Indices, shape (B,), int64.
    """
    n = torch.randint(0, num_ddim_timesteps, (batch_size,), generator=generator)
    return n.to(device)


def distillation_timesteps(
    indices: Tensor, num_ddim_timesteps: int, num_train_timesteps: int = 1000
) -> tuple[Tensor, Tensor]:
    """Start and target timesteps of a skipping step: s = t_n and t = max(s − k, 0), as official
    `train_motionlcm.py` (`start_timesteps`, `timesteps`).

    For n ≥ 1, t = t_{n−1} (the previous solver point); for n = 0, t = 0, whose ᾱ_0 is exactly the
    official `DDIMSolver`'s ᾱ_prev at n = 0 (`alpha_cumprods[0]`; the solver step and the target both use t).

    Args:
        indices: solver indices n, shape (B,).
        num_ddim_timesteps: N.
        num_train_timesteps: T.

    Returns:
        (s, t), each shape (B,), int64, on the device of `indices`.
    """
    grid = ddim_solver_timesteps(num_ddim_timesteps, num_train_timesteps).to(indices.device)
    start = grid[indices]
    target = (start - num_train_timesteps // num_ddim_timesteps).clamp(min=0)
    return start, target


def sample_guidance_weights(
    batch_size: int,
    w_min: float = 5.0,
    w_max: float = 15.0,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> Tensor:
    """Guidance weights w ~ U[w_min, w_max], one per sample ([5, 15] in official `motionlcm_t2m.yaml`, V1 and V2).

    w is the LCM-form weight of `cfg_teacher_target` (CFG scale 1 + w) and the value the student embeds.

    Returns:
        w, shape (B,), float32.
    """
    return (w_min + (w_max - w_min) * torch.rand(batch_size, generator=generator)).to(device)


# --------------------------------------------------------------------------------------------------
# consistency parameterisation (c_skip, c_out: `boundary_scalings`, with the sampler in lcm.py)


def consistency_function(
    z_t: Tensor,
    eps_pred: Tensor,
    timesteps: int | Tensor,
    alphas_cumprod: Tensor,
    sigma_data: float = SIGMA_DATA,
    timestep_scaling: float = TIMESTEP_SCALING,
) -> Tensor:
    """f_θ(z_t, t) = c_skip(t) · z_t + c_out(t) · x̂0, with x̂0 from the ε prediction (official
    `train_motionlcm.py`: `predicted_origin`, then `model_pred`).

    Args:
        z_t: noisy latents, shape (B, ...).
        eps_pred: the network's ε prediction at t, same shape.
        timesteps: int, 0-d or (B,).
        alphas_cumprod: ᾱ, shape (T,).
        sigma_data: σ_d of `boundary_scalings`.
        timestep_scaling: see `boundary_scalings`.

    Returns:
        The denoised estimate, same shape as `z_t`.
    """
    x0_hat = predict_x0_from_eps(z_t, eps_pred, timesteps, alphas_cumprod)
    c_skip, c_out = boundary_scalings(torch.as_tensor(timesteps, device=z_t.device), sigma_data, timestep_scaling)
    return _per_sample(c_skip, z_t) * z_t + _per_sample(c_out, z_t) * x0_hat


# --------------------------------------------------------------------------------------------------
# teacher: the augmented-PF-ODE solver


def ddim_solver_step(x0_hat: Tensor, eps_hat: Tensor, alpha_bar_prev: Tensor) -> Tensor:
    """Deterministic DDIM (η = 0) jump to an earlier point: z_prev = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev) · ε̂
    (DDIM eq. 12 with σ = 0).

    Args:
        x0_hat: predicted clean latents, shape (B, ...).
        eps_hat: predicted noise, same shape.
        alpha_bar_prev: ᾱ at the earlier timestep, scalar or shape (B,).

    Returns:
        z_prev, same shape as `x0_hat`.
    """
    alpha_bar_prev = _per_sample(torch.as_tensor(alpha_bar_prev), x0_hat)
    return alpha_bar_prev**0.5 * x0_hat + (1 - alpha_bar_prev) ** 0.5 * eps_hat


def cfg_teacher_target(
    eps_cond: Tensor,
    eps_uncond: Tensor,
    z_s: Tensor,
    s: Tensor,
    t_prev: Tensor,
    w: Tensor,
    alphas_cumprod: Tensor,
) -> Tensor:
    """One CFG-augmented DDIM step of the teacher from s to t_prev (LCM eq. 8; official
    `train_motionlcm.py`, `DDIMSolver.ddim_step`).

    x̂0 and ε̂ are each guided in the LCM form cond + w · (cond − uncond), i.e. CFG with scale 1 + w, then
    z_prev = √ᾱ_{t_prev} · x̂0 + √(1 − ᾱ_{t_prev}) · ε̂. With t_prev from `distillation_timesteps`, ᾱ_prev is
    ᾱ at the previous solver point, or ᾱ_0 when n = 0 (t_prev = 0), exactly as the official `DDIMSolver`.

    Args:
        eps_cond: teacher ε with the text condition, shape (B, ...).
        eps_uncond: teacher ε with the empty prompt, same shape.
        z_s: the noisy latents at s, same shape.
        s: start timesteps, shape (B,).
        t_prev: target timesteps, shape (B,).
        w: guidance weights (LCM form), shape (B,).
        alphas_cumprod: ᾱ, shape (T,).

    Returns:
        z_prev, the teacher's estimate of z at t_prev, same shape as `z_s`.
    """
    x0_hat, eps_hat = guided_predictions(eps_cond, eps_uncond, z_s, s, w, alphas_cumprod)
    alpha_bar_prev = alphas_cumprod.to(z_s.device)[torch.as_tensor(t_prev, device=z_s.device)]
    return ddim_solver_step(x0_hat, eps_hat, alpha_bar_prev)


def guided_predictions(
    eps_cond: Tensor, eps_uncond: Tensor, z_s: Tensor, s: Tensor, w: Tensor, alphas_cumprod: Tensor
) -> tuple[Tensor, Tensor]:
    """The teacher's x̂0 and ε̂ at s, each guided in the LCM form cond + w · (cond − uncond) (CFG scale 1 + w).

    Returns:
        (x̂0, ε̂), each shaped like `z_s`.
    """
    x0_cond = predict_x0_from_eps(z_s, eps_cond, s, alphas_cumprod)
    x0_uncond = predict_x0_from_eps(z_s, eps_uncond, s, alphas_cumprod)
    scale = 1 + _per_sample(torch.as_tensor(w), z_s)  # cond + w (cond − uncond) = uncond + (1 + w)(cond − uncond)
    return (classifier_free_guidance(x0_cond, x0_uncond, scale), classifier_free_guidance(eps_cond, eps_uncond, scale))


@torch.no_grad()
def teacher_ode_solution(
    z_start: Tensor,
    w: Tensor,
    teacher: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    alphas_cumprod: Tensor,
    timesteps: Tensor,
) -> Tensor:
    """Solve the (1 + w)-guided teacher's PF-ODE from `z_start` at timesteps[0] down the decreasing grid
    `timesteps` with deterministic DDIM steps (`cfg_teacher_target`), and return the guided x̂0 of the last
    point: the teacher's sample from that noise, as `ddim_sample` would draw it on this grid.

    Args:
        z_start: latents at timesteps[0] (pure noise when it is the last training timestep), shape (B, ...).
        w: guidance weights (LCM form), shape (B,).
        teacher: the teacher's (ε with the caption, ε with the empty caption).
        alphas_cumprod: ᾱ, shape (T,).
        timesteps: strictly decreasing int64 grid, shape (K,), e.g. `ddim_solver_timesteps(N).flip(0)`.

    Returns:
        The teacher's clean latents, shape of `z_start`.
    """
    z = z_start
    grid = timesteps.tolist()
    if not grid:
        raise ValueError("timesteps: the grid is empty")
    for step, prev in zip(grid, [*grid[1:], None], strict=True):
        s = torch.full(z.shape[:1], step, dtype=torch.long, device=z.device)
        eps_cond, eps_uncond = teacher(z, s)
        if prev is None:
            return guided_predictions(eps_cond, eps_uncond, z, s, w, alphas_cumprod)[0]
        z = cfg_teacher_target(eps_cond, eps_uncond, z, s, torch.full_like(s, prev), w, alphas_cumprod)


# --------------------------------------------------------------------------------------------------
# losses and the EMA target


def _mean_per_sample(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over all but the batch dimension; with a (B, L) token mask over x (B, L, D), over the valid
    tokens only (segment latents past a clip's length do not count)."""
    if mask is None:
        return x.flatten(1).mean(dim=1)
    weights = mask[:, :, None].to(x.dtype).expand_as(x)
    return (x * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1.0)


def pseudo_huber_loss(pred: Tensor, target: Tensor, c: float, mask: Tensor | None = None) -> Tensor:
    """Pseudo-Huber distance √((pred − target)² + c²) − c, averaged over all but the batch dimension
    (Song & Dhariwal 2023; c = `huber_c` of the official `motionlcm_t2m.yaml`: 0.001 for V1, 0.5 for V2).

    ≈ r² / (2c) for |r| ≪ c and ≈ |r| − c for |r| ≫ c. Computed as the equal r² / (√(r² + c²) + c), which
    avoids float32 cancellation for |r| ≪ c (the naive form loses ~1 % at r = 1e-3, c = 0.5).

    Args:
        pred: shape (B, ...).
        target: same shape.
        c: the Huber constant, > 0.
        mask: optional (B, L) token mask for (B, L, D) latents: average over the valid tokens only.

    Returns:
        Per-sample losses, shape (B,).
    """
    if c <= 0:
        raise ValueError(f"pseudo-Huber c must be > 0, got {c}")
    sq = (pred - target) ** 2
    return _mean_per_sample(sq / (torch.sqrt(sq + c**2) + c), mask)  # = √(r² + c²) − c


def l2_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Squared error averaged over all but the batch dimension (official `loss_type` "l2"); with a
    (B, L) token mask, over the valid tokens only.

    Returns:
        Per-sample losses, shape (B,).
    """
    return _mean_per_sample((pred - target) ** 2, mask)


def distillation_distance(pred: Tensor, target: Tensor, huber_c: float | None, mask: Tensor | None = None) -> Tensor:
    """The distance both distillation losses use: pseudo-Huber with `huber_c`, or the squared error when None.

    Returns:
        Per-sample losses, shape (B,).
    """
    if huber_c is None:
        return l2_loss(pred, target, mask)
    return pseudo_huber_loss(pred, target, huber_c, mask)


@torch.no_grad()
def ema_update(target_module: nn.Module, online_module: nn.Module, decay: float) -> None:
    """θ_target ← μ · θ_target + (1 − μ) · θ_online, in place, parameters only (official
    `train_motionlcm.py`, `update_ema`; `ema_decay` μ = 0.95).

    The online module is only read. Buffers are not averaged (the denoiser has none that train).

    Args:
        target_module: the EMA copy, updated in place.
        online_module: the student being trained; same architecture.
        decay: μ in [0, 1].
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    target_params = dict(target_module.named_parameters())
    online_params = dict(online_module.named_parameters())
    if target_params.keys() != online_params.keys():
        raise ValueError("target and online modules have different parameters")
    names = list(target_params)
    # θ + (1 − μ)(θ_online − θ), all parameters in one multi-tensor kernel
    torch._foreach_lerp_([target_params[n] for n in names], [online_params[n].detach() for n in names], 1.0 - decay)


# --------------------------------------------------------------------------------------------------
# one distillation step


def consistency_distillation_loss(
    z0: Tensor,
    noise: Tensor,
    indices: Tensor,
    w: Tensor,
    student: Callable[[Tensor, Tensor], Tensor],
    teacher: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    target: Callable[[Tensor, Tensor], Tensor],
    alphas_cumprod: Tensor,
    num_ddim_timesteps: int,
    huber_c: float | None = 0.5,
    mask: Tensor | None = None,
) -> Tensor:
    """The latent consistency distillation loss of one batch (LCM Algorithm 1; MotionLCM §3.2):

        s, t   = t_n, max(t_n − k, 0)                                # the skipping-step pair
        z_s    = √ᾱ_s z0 + √(1 − ᾱ_s) ε
        pred   = f_θ(z_s, s)                                          # the online student
        z_t    = DDIM step of the (1 + w)-guided teacher from s to t  # the augmented PF-ODE solver
        target = f_θ⁻(z_t, t)                                         # the EMA target, no gradient
        loss   = d(pred, target)                                      # pseudo-Huber (c) or squared error

    The networks are callables of (latents, timesteps) with the text condition and the embedded w already
    bound, so this function holds only the math; `DistillSystem` wires the modules in.

    Args:
        z0: clean latents, shape (B, ...).
        noise: ε, same shape.
        indices: solver indices n, shape (B,) (`sample_distillation_step_indices`).
        w: guidance weights (LCM form), shape (B,) (`sample_guidance_weights`).
        student: ε prediction of the online student.
        teacher: the teacher's (ε with the caption, ε with the empty caption).
        target: ε prediction of the EMA target network.
        alphas_cumprod: ᾱ, shape (T,).
        num_ddim_timesteps: N, the number of solver points.
        huber_c: pseudo-Huber c; None for the squared error.
        mask: optional (B, L) token mask for (B, L, D) latents.

    Returns:
        Per-sample losses, shape (B,).
    """
    s, t = distillation_timesteps(indices, num_ddim_timesteps, len(alphas_cumprod))
    z_s = add_noise(z0, noise, s, alphas_cumprod)
    pred = consistency_function(z_s, student(z_s, s), s, alphas_cumprod)
    with torch.no_grad():
        eps_cond, eps_uncond = teacher(z_s, s)
        z_t = cfg_teacher_target(eps_cond, eps_uncond, z_s, s, t, w, alphas_cumprod)
        goal = consistency_function(z_t, target(z_t, t), t, alphas_cumprod)
    return distillation_distance(pred, goal, huber_c, mask)


def trajectory_distillation_loss(
    noise: Tensor,
    w: Tensor,
    student: Callable[[Tensor, Tensor], Tensor],
    teacher: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    alphas_cumprod: Tensor,
    solver_timesteps: Tensor,
    student_timestep: int,
    huber_c: float | None = 0.5,
    mask: Tensor | None = None,
) -> Tensor:
    """The one-step student's distance to the teacher's own sample from the same noise (knowledge
    distillation of the sampler, Luhman & Luhman 2021, arXiv:2101.02388), an auxiliary term beside the
    consistency loss (not in MotionLCM):

        x_teacher = DDIM solve of the (1 + w)-guided teacher from ε down `solver_timesteps`
        pred      = f_θ(ε, student_timestep)        # exactly what 1-step sampling computes
        loss      = d(pred, x_teacher)

    The consistency loss reaches the one-step map only through N chained self-consistency targets, each
    with the EMA target's error; this term supervises the map that 1-step sampling uses directly, with
    `student_timestep` the sampler's first timestep (V2: 799, V1: 999), so training and sampling see the
    same input.

    Args:
        noise: ε, shape (B, ...); the start of both the solve and the student's step.
        w: guidance weights (LCM form), shape (B,).
        student: ε prediction of the online student (w embedded).
        teacher: the teacher's (ε with the caption, ε with the empty caption).
        alphas_cumprod: ᾱ, shape (T,).
        solver_timesteps: the teacher's decreasing DDIM grid, shape (K,).
        student_timestep: the timestep the student is called at.
        huber_c: pseudo-Huber c; None for the squared error.
        mask: optional (B, L) token mask for (B, L, D) latents.

    Returns:
        Per-sample losses, shape (B,).
    """
    pred, goal = one_step_samples(noise, w, student, teacher, alphas_cumprod, solver_timesteps, student_timestep)
    return distillation_distance(pred, goal, huber_c, mask)


def one_step_samples(
    noise: Tensor,
    w: Tensor,
    student: Callable[[Tensor, Tensor], Tensor],
    teacher: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    alphas_cumprod: Tensor,
    solver_timesteps: Tensor,
    student_timestep: int,
) -> tuple[Tensor, Tensor]:
    """From the same noise ε: the student's one-step sample f_θ(ε, student_timestep) (differentiable, what
    1-step sampling returns) and the guided teacher's DDIM solve down `solver_timesteps` (the trajectory
    term's goal; `trajectory_distillation_loss` for the arguments)."""
    goal = teacher_ode_solution(noise, w, teacher, alphas_cumprod, solver_timesteps)
    t = torch.full(noise.shape[:1], student_timestep, dtype=torch.long, device=noise.device)
    return consistency_function(noise, student(noise, t), t, alphas_cumprod), goal
