"""Beta schedules, ᾱ and the forward process: closed forms and parity with diffusers."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch

import motionlcm.diffusion
from motionlcm.diffusion import (
    add_noise,
    alphas_cumprod,
    linear_betas,
    predict_eps_from_x0,
    predict_x0_from_eps,
    scaled_linear_betas,
)

MLD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012}


def _diffusers_ddim(**overrides):
    diffusers = pytest.importorskip("diffusers")
    config = dict(
        MLD_SCHEDULE,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )
    config.update(overrides)
    return diffusers.DDIMScheduler(**config)


def test_scaled_linear_betas_closed_form():
    betas = scaled_linear_betas(**MLD_SCHEDULE)
    assert betas.shape == (1000,) and betas.dtype == torch.float32
    assert betas[0].item() == pytest.approx(0.00085, rel=1e-6)
    assert betas[-1].item() == pytest.approx(0.012, rel=1e-6)
    sqrt_steps = torch.diff(betas.double().sqrt())
    assert torch.allclose(sqrt_steps, sqrt_steps.mean().expand_as(sqrt_steps), atol=1e-8)


def test_alphas_cumprod_reference_values():
    alpha_bar = alphas_cumprod(scaled_linear_betas(**MLD_SCHEDULE))
    assert alpha_bar[0].item() == pytest.approx(0.99915, abs=1e-5)
    assert alpha_bar[999].item() == pytest.approx(0.00466, abs=1e-5)
    assert torch.all(torch.diff(alpha_bar) < 0)


@pytest.mark.parametrize(
    ("schedule", "make_betas", "kwargs"),
    [
        ("scaled_linear", scaled_linear_betas, MLD_SCHEDULE),
        ("linear", linear_betas, {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02}),
    ],
)
def test_betas_and_alphas_cumprod_match_diffusers(schedule, make_betas, kwargs):
    reference = _diffusers_ddim(beta_schedule=schedule, **kwargs)
    betas = make_betas(**kwargs)
    torch.testing.assert_close(betas, reference.betas, rtol=0, atol=1e-7)
    torch.testing.assert_close(alphas_cumprod(betas), reference.alphas_cumprod, rtol=0, atol=1e-7)


def test_add_noise_closed_form_and_per_sample_timesteps():
    alpha_bar = alphas_cumprod(scaled_linear_betas())
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 3, 4, 5, generator=gen)
    timesteps = torch.tensor([0, 500, 999])
    z_t = add_noise(x0, noise, timesteps, alpha_bar)
    for i, t in enumerate(timesteps.tolist()):
        a = alpha_bar[t].double()
        expected = a.sqrt() * x0[i].double() + (1 - a).sqrt() * noise[i].double()
        torch.testing.assert_close(z_t[i].double(), expected, rtol=0, atol=1e-6)
    # one int timestep broadcasts to the whole batch
    torch.testing.assert_close(
        add_noise(x0, noise, 500, alpha_bar), add_noise(x0, noise, torch.full((3,), 500), alpha_bar)
    )


def test_add_noise_matches_diffusers():
    reference = _diffusers_ddim()
    gen = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 8, 16, 32, generator=gen)
    timesteps = torch.randint(0, 1000, (8,), generator=gen)
    expected = reference.add_noise(x0, noise, timesteps)
    torch.testing.assert_close(
        add_noise(x0, noise, timesteps, alphas_cumprod(scaled_linear_betas())), expected, rtol=0, atol=1e-6
    )


def test_predictions_invert_add_noise():
    alpha_bar = alphas_cumprod(scaled_linear_betas()).double()
    gen = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(2, 6, 4, 8, generator=gen, dtype=torch.float64)
    timesteps = torch.tensor([0, 1, 250, 500, 981, 999])
    z_t = add_noise(x0, noise, timesteps, alpha_bar)
    torch.testing.assert_close(predict_x0_from_eps(z_t, noise, timesteps, alpha_bar), x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(predict_eps_from_x0(z_t, x0, timesteps, alpha_bar), noise, rtol=0, atol=1e-10)


def test_diffusion_imports_only_torch_numpy_and_siblings():
    """House rule: diffusion/ imports only torch, numpy, the stdlib, itself and the constants of
    motionlcm/presets.py, the bottom of the package (checked statically)."""
    package = Path(motionlcm.diffusion.__file__).parent
    allowed = {"torch", "numpy", "motionlcm"} | set(sys.stdlib_module_names)
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
                if roots[0] == "motionlcm":
                    names = [alias.name for alias in node.names]
                    ok = (
                        node.module.startswith("motionlcm.diffusion")
                        or node.module == "motionlcm.presets"
                        or (node.module == "motionlcm" and names == ["presets"])
                    )
                    assert ok, (path.name, node.module, names)
            else:
                continue
            assert set(roots) <= allowed, (path.name, roots)
