"""Tests for motionlcm.models.denoiser and the embeddings in motionlcm.models.layers."""

from __future__ import annotations

import math

import pytest
import torch

from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.models import DenoiserConfig, LatentDenoiser
from motionlcm.models.denoiser import widen_feed_forward
from motionlcm.models.layers import timestep_embedding
from tests.models.official_layout import denoiser_shapes, shapes_of

TEXT_DIM = 16


def _meta_denoiser(config: DenoiserConfig) -> LatentDenoiser:
    with torch.device("meta"):
        return LatentDenoiser(config)


def _millions(module: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 2)


def _inputs(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, 2, 8, generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    text = torch.randn(batch, 1, TEXT_DIM, generator=gen)
    return z, t, text


@pytest.fixture()
def teacher() -> LatentDenoiser:
    torch.manual_seed(0)
    return LatentDenoiser(DenoiserConfig.tiny(TEXT_DIM)).eval()


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("lcm", [False, True])
def test_state_dict_equals_official_layout(version: str, lcm: bool) -> None:
    config = getattr(DenoiserConfig, version)(time_cond_proj_dim=256 if lcm else None)
    assert shapes_of(_meta_denoiser(config)) == denoiser_shapes(version, lcm)


@pytest.mark.parametrize(("version", "teacher_m", "lcm_m"), [("v1", 8.22, 8.42), ("v2", 8.24, 8.43)])
def test_parameter_counts_match_reference(version: str, teacher_m: float, lcm_m: float) -> None:
    config = getattr(DenoiserConfig, version)()
    assert _millions(_meta_denoiser(config)) == teacher_m
    assert _millions(_meta_denoiser(getattr(DenoiserConfig, version)(time_cond_proj_dim=256))) == lcm_m


def test_presets_follow_official_configs() -> None:
    v1, v2 = DenoiserConfig.v1(), DenoiserConfig.v2()
    assert (v1.text_act, v2.text_act) == ("relu", None)
    assert (v1.latent_size, v1.latent_dim, v2.latent_size, v2.latent_dim) == (1, 256, 16, 32)
    assert not v1.use_projections and v2.use_projections
    assert DenoiserConfig.from_dict(v2.to_dict()) == v2
    with pytest.raises(ValueError, match="text_act"):
        DenoiserConfig(text_act="tanh")


def test_output_shape_and_input_forms(teacher: LatentDenoiser) -> None:
    z, _, text = _inputs()
    eps = teacher(z, 500, text)
    assert eps.shape == z.shape
    torch.testing.assert_close(teacher(z, torch.tensor(500), text[:, 0]), eps, rtol=0, atol=0)
    torch.testing.assert_close(teacher(z, torch.full((3,), 500), text), eps, rtol=0, atol=0)
    with pytest.raises(ValueError, match="timestep"):
        teacher(z, torch.tensor([1, 2]), text)
    with pytest.raises(ValueError, match="text_emb"):
        teacher(z, 1, text[:2])


def test_output_depends_on_text_and_timestep(teacher: LatentDenoiser) -> None:
    z, t, text = _inputs()
    eps = teacher(z, t, text)
    assert (teacher(z, t, torch.randn_like(text)) - eps).abs().max() > 1e-3
    assert (teacher(z, t + 1, text) - eps).abs().max() > 1e-5
    assert (teacher(z, t, text)[0] - teacher(z, t.flip(0), text)[0]).abs().max() > 1e-3


def test_batch_independence(teacher: LatentDenoiser) -> None:
    z, t, text = _inputs(4)
    eps = teacher(z, t, text)
    torch.testing.assert_close(teacher(z[2:3], t[2:3], text[2:3]), eps[2:3], rtol=0, atol=1e-6)


def test_v1_text_relu_drops_negative_components() -> None:
    torch.manual_seed(0)
    model = LatentDenoiser(DenoiserConfig.tiny(TEXT_DIM, text_act="relu")).eval()
    z, t, text = _inputs()
    torch.testing.assert_close(model(z, t, text), model(z, t, text.clamp(min=0)), rtol=0, atol=0)


def test_lcm_copy_of_teacher_is_identical_until_trained(teacher: LatentDenoiser) -> None:
    student = LatentDenoiser(DenoiserConfig.tiny(TEXT_DIM, time_cond_proj_dim=256)).eval()
    result = student.load_state_dict(teacher.state_dict(), strict=False)
    assert result.missing_keys == ["time_embedding.cond_proj.weight"] and result.unexpected_keys == []
    assert student.time_embedding.cond_proj.bias is None
    assert (student.time_embedding.cond_proj.weight == 0).all()
    z, t, text = _inputs()
    w_emb = guidance_scale_embedding(torch.tensor([5.0, 7.5, 15.0]), 256)
    torch.testing.assert_close(student(z, t, text, w_emb), teacher(z, t, text), rtol=0, atol=0)
    torch.nn.init.normal_(student.time_embedding.cond_proj.weight, std=0.1)
    assert (student(z, t, text, w_emb) - teacher(z, t, text)).abs().max() > 1e-4


def test_widening_the_feed_forward_keeps_the_function(teacher: LatentDenoiser) -> None:
    wide = widen_feed_forward(teacher, 2 * teacher.config.ff_size).eval()
    z, t, text = torch.randn(3, 2, 8), torch.tensor([1, 500, 999]), torch.randn(3, 1, teacher.config.text_dim)
    assert wide.config.ff_size == 2 * teacher.config.ff_size
    assert torch.allclose(wide(z, t, text), teacher.eval()(z, t, text), atol=1e-6)
    old = teacher.config.ff_size
    for layer in (m for m in wide.modules() if hasattr(m, "linear1")):
        assert layer.linear1.weight[old:].abs().sum() > 0 and torch.all(layer.linear2.weight[:, old:] == 0)
    with pytest.raises(ValueError, match="ff_size"):
        widen_feed_forward(teacher, old - 1)


def test_guidance_embedding_on_a_teacher_raises(teacher: LatentDenoiser) -> None:
    z, t, text = _inputs()
    with pytest.raises(ValueError, match="cond_proj"):
        teacher(z, t, text, guidance_scale_embedding(torch.ones(3), 256))


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    student = LatentDenoiser(DenoiserConfig.tiny(TEXT_DIM, time_cond_proj_dim=256))
    z, t, text = _inputs()
    student(z, t, text, guidance_scale_embedding(torch.tensor([5.0, 6.0, 7.0]), 256)).square().mean().backward()
    for name, p in student.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_timestep_embedding_matches_diffusers() -> None:
    diffusers_embeddings = pytest.importorskip("diffusers.models.embeddings")
    t = torch.tensor([0, 1, 19, 499, 999])
    for flip, shift in ((True, 0.0), (False, 1.0)):
        ours = timestep_embedding(t, 768, flip_sin_to_cos=flip, freq_shift=shift)
        ref = diffusers_embeddings.get_timestep_embedding(t, 768, flip_sin_to_cos=flip, downscale_freq_shift=shift)
        torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_timestep_embedding_closed_form() -> None:
    emb = timestep_embedding(torch.tensor([0.0, 10.0]), 8, flip_sin_to_cos=True, freq_shift=0)
    freqs = [math.exp(-math.log(10000) * i / 4) for i in range(4)]
    expected = [[1.0] * 4 + [0.0] * 4, [math.cos(10 * f) for f in freqs] + [math.sin(10 * f) for f in freqs]]
    torch.testing.assert_close(emb, torch.tensor(expected), rtol=0, atol=1e-6)
    assert timestep_embedding(torch.tensor([3.0]), 7).shape == (1, 7)


def test_golden_numbers() -> None:
    """Fixed-seed tiny LCM; the same seed gives the official MldDenoiser the same initial weights."""
    torch.manual_seed(1234)
    model = LatentDenoiser(DenoiserConfig.tiny(TEXT_DIM, time_cond_proj_dim=256)).eval()
    torch.nn.init.normal_(model.time_embedding.cond_proj.weight, std=0.02)
    z, t, text = _inputs(seed=5)
    with torch.no_grad():
        eps = model(z, t, text, guidance_scale_embedding(torch.tensor([6.5, 7.0, 11.5]), 256))
    torch.testing.assert_close(eps.sum(), torch.tensor(GOLDEN_EPS_SUM), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(eps.abs().sum(), torch.tensor(GOLDEN_EPS_ABS_SUM), rtol=1e-4, atol=1e-4)


# Recorded from this implementation; the official MldDenoiser built and fed the same way gave identical values.
GOLDEN_EPS_SUM = -1.8874032497406006
GOLDEN_EPS_ABS_SUM = 18.38119125366211
