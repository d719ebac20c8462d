"""The fused attention path (models/attention.py) against nn.MultiheadAttention as the official code calls it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from motionlcm.models.attention import attend, attention_backend, multi_head_attention, set_attention_backend
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig


@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention_equals_nn_multihead_attention(cross):
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(64, 4).eval()
    nn.init.normal_(attn.in_proj_bias)  # non-zero biases, so a wrong slice of them would show
    query = torch.randn(11, 3, 64)
    memory = torch.randn(7, 3, 64) if cross else None
    keys = memory if cross else query
    mask = torch.zeros(3, keys.shape[0], dtype=torch.bool)
    mask[1, -3:] = True
    mask[2, 2:] = True
    expected = attn(query, keys, keys, key_padding_mask=mask)[0]
    got = multi_head_attention(attn, query, memory, key_padding_mask=mask)
    assert torch.allclose(got, expected, atol=1e-5)
    unmasked = attn(query, keys, keys)[0]
    assert torch.allclose(multi_head_attention(attn, query, memory), unmasked, atol=1e-5)
    assert not torch.allclose(got, unmasked, atol=1e-3)  # the mask matters


def _vae_outputs(vae: MotionVAE, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    set_attention_backend(vae, backend)
    torch.manual_seed(1)
    features, lengths = torch.randn(3, 50, 263), [50, 31, 7]
    z, _ = vae.encode(features, lengths, use_mean=True)
    return z, vae.decode(z, lengths)


@pytest.mark.parametrize(
    "config", [VAEConfig.tiny(), VAEConfig(latent_size=4, hidden_dim=128, ff_size=256, num_layers=3)]
)
def test_vae_sdpa_matches_official_attention(config):
    torch.manual_seed(0)
    vae = MotionVAE(config).eval()
    with torch.no_grad():
        z_ref, x_ref = _vae_outputs(vae, "torch")
        z, x = _vae_outputs(vae, "sdpa")
    assert attention_backend(vae) == "sdpa"
    assert torch.allclose(z, z_ref, atol=1e-5) and torch.allclose(x, x_ref, atol=1e-5)
    assert float(x_ref.abs().max()) > 0.1


def test_denoiser_sdpa_matches_and_trains_identically():
    torch.manual_seed(0)
    denoiser = LatentDenoiser(DenoiserConfig.tiny(dropout=0.0, time_cond_proj_dim=8))
    sample, t, text, w = (
        torch.randn(4, 2, 8),
        torch.tensor([1, 300, 600, 999]),
        torch.randn(4, 1, 16),
        torch.randn(4, 8),
    )
    grads = {}
    for backend in ("torch", "sdpa"):
        set_attention_backend(denoiser, backend)
        denoiser.zero_grad()
        out = denoiser(sample, t, text, guidance_emb=w)
        out.square().mean().backward()
        grads[backend] = (out.detach(), [p.grad.clone() for p in denoiser.parameters() if p.grad is not None])
    assert torch.allclose(grads["sdpa"][0], grads["torch"][0], atol=1e-5)
    for a, b in zip(grads["sdpa"][1], grads["torch"][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_attention_dropout_is_applied_only_in_training():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(16, 2, dropout=0.5)
    x = torch.randn(5, 2, 16)
    assert torch.equal(multi_head_attention(attn, x), multi_head_attention(attn, x))
    assert not torch.allclose(multi_head_attention(attn, x, training=True), multi_head_attention(attn, x))


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="attention backend"):
        set_attention_backend(MotionVAE(VAEConfig.tiny()), "flash")
    attn = nn.MultiheadAttention(8, 2)
    x = torch.randn(3, 1, 8)
    assert torch.allclose(attend(attn, "torch", x), attend(attn, "sdpa", x), atol=1e-6)
