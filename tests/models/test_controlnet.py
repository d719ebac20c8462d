"""Motion ControlNet: an untrained ControlNet changes nothing, residuals enter after the right block, the
trajectory encoders see the hints (and only the controlled ones), and the official key layout."""

from __future__ import annotations

import pytest
import torch

from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.models.controlnet import (
    ControlNet,
    TrajectoryEncoder,
    TrajectoryEncoderConfig,
    controlled_denoiser,
    controlnet_from_denoiser,
)
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser


def student(**overrides):
    torch.manual_seed(0)
    config = DenoiserConfig.tiny(text_dim=6, time_cond_proj_dim=256, dropout=0.0, **overrides)
    return LatentDenoiser(config).eval()


def inputs(batch=3, config=None):
    config = config or DenoiserConfig.tiny()
    torch.manual_seed(1)
    z = torch.randn(batch, config.latent_size, config.latent_dim)
    text = torch.randn(batch, 1, 6)
    w = guidance_scale_embedding(torch.full((batch,), 7.0))
    return z, torch.full((batch,), 799), text, w


def randomize(module):
    torch.manual_seed(5)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module


def test_untrained_controlnet_leaves_the_student_exactly_unchanged():
    net = student()
    z, t, text, w = inputs()
    controlnet = controlnet_from_denoiser(net).eval()
    condition = torch.randn_like(z)
    steered = controlled_denoiser(net, controlnet, condition)(z, t, text, guidance_emb=w)
    assert torch.equal(steered, net(z, t, text, w))


def test_trained_controlnet_changes_the_output_and_depends_on_the_condition():
    net = student()
    z, t, text, w = inputs()
    controlnet = randomize(controlnet_from_denoiser(net)).eval()
    a = controlled_denoiser(net, controlnet, torch.zeros_like(z))(z, t, text, guidance_emb=w)
    b = controlled_denoiser(net, controlnet, torch.ones_like(z))(z, t, text, guidance_emb=w)
    assert not torch.allclose(a, net(z, t, text, w))
    assert not torch.allclose(a, b)


def test_residuals_enter_after_their_block_before_the_skip():
    """Reference: run the blocks by hand, adding residual i after block i (official maybe_controlnet_moe)."""
    net = student(num_layers=5)
    z, t, text, w = inputs()
    seq, _ = net.tokens(z, t, text, w)
    residuals = [torch.randn_like(seq) for _ in range(5)]
    enc = net.encoder
    x, skips = seq, []
    for i, block in enumerate(enc.input_blocks):
        x = block(x) + residuals[i]
        skips.append(x)
    x = enc.middle_block(x) + residuals[2]
    for k, (block, linear) in enumerate(zip(enc.output_blocks, enc.linear_blocks, strict=True)):
        x = block(linear(torch.cat([x, skips.pop()], -1))) + residuals[3 + k]
    expected = net.latent_post(enc.norm(x)[: z.shape[1]]).permute(1, 0, 2)
    got = net(z, t, text, w, control_residuals=residuals)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="one per block"):
        net(z, t, text, w, control_residuals=residuals[:4])


def test_controlnet_copy_has_the_students_weights_and_no_final_norm():
    net = student()
    controlnet = controlnet_from_denoiser(net)
    assert controlnet.encoder.norm is None
    for key, value in net.state_dict().items():
        if not key.startswith("encoder.norm."):
            assert torch.equal(controlnet.state_dict()[key], value)


def test_official_v2_controlnet_keys_and_shapes():
    """shared/docs/motionlcm-reference.md section 11.2: controlnet.* keys."""
    with torch.device("meta"):
        net = ControlNet(DenoiserConfig.v2(time_cond_proj_dim=256), "silu")
        v1 = ControlNet(DenoiserConfig.v1(time_cond_proj_dim=256), None)
    keys = net.state_dict()
    assert "encoder.norm.weight" not in keys
    assert tuple(keys["controlnet_cond_embedding.0.weight"].shape) == (256, 32)
    assert tuple(keys["controlnet_cond_embedding.2.weight"].shape) == (256, 256)
    assert tuple(keys["controlnet_cond_embedding.4.weight"].shape) == (32, 256)
    assert [k for k in keys if k.startswith("controlnet_down_mid_blocks.") and k.endswith("weight")] == [
        f"controlnet_down_mid_blocks.{i}.weight" for i in range(9)
    ]
    assert {k for k in v1.state_dict() if k.startswith("controlnet_cond_embedding")} == {
        f"controlnet_cond_embedding.{i}.{p}" for i in range(3) for p in ("weight", "bias")
    }


def test_official_v2_trajectory_encoder_keys_and_shapes():
    with torch.device("meta"):
        keys = TrajectoryEncoder(TrajectoryEncoderConfig.v2()).state_dict()
    assert tuple(keys["skel_embedding.weight"].shape) == (256, 66)
    assert tuple(keys["global_motion_token"].shape) == (16, 256)
    assert tuple(keys["query_pos_encoder.pe"].shape) == (500, 1, 256)
    assert tuple(keys["latent_proj.weight"].shape) == (32, 256)
    assert "encoder.norm.weight" in keys


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_trajectory_encoder_ignores_free_values_and_sees_controlled_ones(arch):
    torch.manual_seed(0)
    config = TrajectoryEncoderConfig.tiny(arch=arch, latent_size=4, mask_channels=True, latent_frames=4, dropout=0.0)
    encoder = TrajectoryEncoder(config).eval()
    hints = torch.randn(2, 13, 22, 3)
    mask = torch.zeros(2, 13, 22, 3, dtype=torch.bool)
    mask[:, 3, 0] = True
    out = encoder(hints, mask)
    assert out.shape == (2, 4, 8)
    changed_free = hints.clone()
    changed_free[:, :, 5] += 1.0  # a joint that is not controlled
    torch.testing.assert_close(encoder(changed_free, mask), out)
    moved = hints.clone()
    moved[:, 3, 0] += 1.0
    assert not torch.allclose(encoder(moved, mask), out)


def test_conv_encoder_tokens_follow_their_frames():
    """Segment alignment: a hint at frames 0-3 changes token 0, not a token far away."""
    torch.manual_seed(0)
    encoder = TrajectoryEncoder(TrajectoryEncoderConfig.tiny(arch="conv", latent_size=6, latent_frames=4)).eval()
    hints, mask = torch.zeros(1, 24, 22, 3), torch.zeros(1, 24, 22, 3, dtype=torch.bool)
    base = encoder(hints, mask)
    mask[0, 1, 0] = True
    hints[0, 1, 0] = 2.0
    diff = (encoder(hints, mask) - base).abs().sum(-1)[0]
    assert diff[0] > 0 and diff[5] == 0


def test_encoder_refuses_bad_shapes():
    encoder = TrajectoryEncoder(TrajectoryEncoderConfig.tiny())
    with pytest.raises(ValueError, match="hints"):
        encoder(torch.zeros(1, 5, 21, 3), torch.zeros(1, 5, 21, 3, dtype=torch.bool))
