"""The convolutional VAE with segment latents (models/conv_vae.py) and the denoiser's latent mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionlcm.data.normalizer import Normalizer
from motionlcm.eval.kinematics import relative_joint_speed
from motionlcm.models.conv_vae import ConvMotionVAE
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.folder import load_model_folder, save_model_folder
from motionlcm.models.vae import VAEConfig, build_vae
from motionlcm.train.vae_system import VAESystem


def tiny(**overrides) -> VAEConfig:
    base = {
        "arch": "conv",
        "latent_frames": 4,
        "latent_size": 10,
        "latent_dim": 8,
        "hidden_dim": 32,
        "num_layers": 1,
        "num_heads": 2,
        "ff_size": 32,
        "max_len": 40,
    }
    return VAEConfig(**{**base, **overrides})


@pytest.fixture
def vae() -> ConvMotionVAE:
    torch.manual_seed(0)
    return build_vae(tiny()).eval()


def test_config_is_checked() -> None:
    assert isinstance(build_vae(tiny()), ConvMotionVAE)
    for bad in ({"latent_frames": 3}, {"latent_frames": 0}, {"max_len": 41}, {"arch": "rnn"}):
        with pytest.raises(ValueError):
            tiny(**bad)
    with pytest.raises(ValueError, match="latent_frames"):
        VAEConfig(latent_frames=4)  # the transformer VAE has global latents


def test_latent_mask_counts_segments(vae) -> None:
    mask = vae.latent_mask(torch.tensor([1, 4, 5, 40]))
    assert mask.sum(1).tolist() == [1, 1, 2, 10]


def test_encode_zeroes_tokens_past_the_length_and_ignores_padding(vae) -> None:
    x = torch.randn(2, 40, 263)
    lengths = torch.tensor([13, 40])
    z, dist = vae.encode(x, lengths)
    assert z.shape == (2, 10, 8) and (z[0, 4:] == 0).all() and (z[0, :4] != 0).any()
    assert torch.equal(dist.loc[4:, 0], torch.zeros(6, 8)) and torch.equal(dist.scale[4:, 0], torch.ones(6, 8))
    garbage = x.clone()
    garbage[0, 13:] = 100.0
    mu, _ = vae.encode(x, lengths, use_mean=True)
    assert torch.allclose(mu, vae.encode(garbage, lengths, use_mean=True)[0])
    alone, _ = vae.encode(x[:1, :13], lengths[:1], use_mean=True)  # batch padding does not matter
    assert torch.allclose(alone, mu[:1], atol=1e-5)


def test_decode_ignores_tokens_past_the_length(vae) -> None:
    z = torch.randn(1, 10, 8)
    out = vae.decode(z, [13], num_frames=20)
    changed = z.clone()
    changed[:, 4:] = 50.0
    assert torch.equal(out, vae.decode(changed, [13], num_frames=20))
    assert (out[:, 13:] == 0).all() and (out[:, :13] != 0).any()
    with pytest.raises(ValueError, match="at most 40"):
        vae.decode(z, [41])


def test_model_folder_round_trip(vae, tmp_path) -> None:
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    save_model_folder(tmp_path / "m", vae=vae, mean=mean, std=std)
    loaded = load_model_folder(tmp_path / "m")
    assert isinstance(loaded.vae, ConvMotionVAE)
    x = torch.randn(1, 16, 263)
    assert torch.equal(loaded.vae.encode(x, [16], use_mean=True)[0], vae.encode(x, [16], use_mean=True)[0])


def test_fits_a_real_walk_with_its_motion(bn_dataset_dir) -> None:
    normalizer = Normalizer.from_dir(bn_dataset_dir)
    features = np.load(bn_dataset_dir / "new_joint_vecs" / "dataset-2_walk_normal_001.npy")[:40]
    x = torch.as_tensor(normalizer.normalize(features), dtype=torch.float32)[None]
    torch.manual_seed(0)
    vae = build_vae(tiny(hidden_dim=64))
    system = VAESystem(vae, normalizer)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
    batch = {"features": x, "lengths": torch.tensor([40]), "mask": torch.ones(1, 40, dtype=torch.bool)}
    for _ in range(150):
        optimizer.zero_grad()
        system.compute_loss(batch)["loss"].backward()
        optimizer.step()
    with torch.no_grad():
        recon = system.joints(vae.decode(vae.encode(x, [40], use_mean=True)[0], [40]))[0].numpy()
    real = relative_joint_speed(system.joints(x)[0].numpy())
    assert relative_joint_speed(recon) > 0.6 * real


def test_denoiser_latent_mask_isolates_the_valid_tokens() -> None:
    torch.manual_seed(0)
    denoiser = LatentDenoiser(DenoiserConfig.tiny(latent_size=6, dropout=0.0)).eval()
    sample, text = torch.randn(2, 6, 8), torch.randn(2, 3, 16)
    mask = torch.tensor([[True, True, True, False, False, False], [True] * 6])
    out = denoiser(sample, 10, text, latent_mask=mask)
    changed = sample.clone()
    changed[0, 3:] = 9.0
    again = denoiser(changed, 10, text, latent_mask=mask)
    assert torch.allclose(out, again, atol=1e-6) and (out[0, 3:] == 0).all()
    assert torch.allclose(out[1], denoiser(sample[1:], 10, text[1:])[0], atol=1e-5)  # all valid = no mask


def test_fit_latent_std_gives_unit_latents_and_keeps_the_reconstruction(vae) -> None:
    from motionlcm.models.conv_vae import fit_latent_std

    torch.manual_seed(1)
    batches = [{"features": torch.randn(4, 40, 263) * 3, "lengths": torch.tensor([40, 33, 17, 8])} for _ in range(3)]
    before = vae.decode(
        vae.encode(batches[0]["features"], batches[0]["lengths"], use_mean=True)[0], batches[0]["lengths"]
    )
    std = fit_latent_std(vae, batches)
    assert (std != 1).all()
    tokens = torch.cat(
        [vae.encode(b["features"], b["lengths"], use_mean=True)[0][vae.latent_mask(b["lengths"])] for b in batches]
    )
    assert torch.allclose(tokens.std(0), torch.ones(8), atol=1e-4)
    after = vae.decode(
        vae.encode(batches[0]["features"], batches[0]["lengths"], use_mean=True)[0], batches[0]["lengths"]
    )
    assert torch.allclose(before, after, atol=1e-5)


def test_posterior_sigma_never_underflows(vae) -> None:
    """Trained with latent noise, the encoder drives its log-variance down until sigma underflows to 0 and
    torch.distributions refuses it (the first noise screen crashed at step 190); it is bounded below."""
    last = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Conv1d)][-1]
    with torch.no_grad():
        last.bias[8:] = -1e4  # the log-variance half of the output channels
    z, dist = vae.encode(torch.randn(2, 40, 263), torch.tensor([13, 40]))
    assert (dist.scale > 0).all() and dist.scale.min() >= np.exp(-15.0) * 0.999 and torch.isfinite(z).all()
