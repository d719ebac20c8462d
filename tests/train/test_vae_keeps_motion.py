"""The VAE must keep the motion, not just each clip's mean pose (issue: "The shipped model must move").

A tiny VAE is fitted to one real walking clip with the shipped recipe's losses and position
initialisation; its reconstruction must move like the clip. The same fit with a time-invariant decoder
(positions removed) reconstructs one pose for every frame, and the kinematic metric must flag it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionlcm.data.features import features_to_joints
from motionlcm.data.normalizer import Normalizer
from motionlcm.eval.kinematics import relative_joint_speed
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.train.vae_system import VAESystem

STEPS = 300  # a tiny VAE on one clip leaves the mean-pose plateau after about 200 steps


@pytest.fixture(scope="module")
def walk(bn_dataset_dir):
    normalizer = Normalizer.from_dir(bn_dataset_dir)
    features = np.load(bn_dataset_dir / "new_joint_vecs" / "dataset-2_walk_normal_001.npy")[:80]
    x = torch.as_tensor(normalizer.normalize(features), dtype=torch.float32)[None]
    return normalizer, x


def fit(normalizer: Normalizer, x: torch.Tensor, time_invariant: bool) -> torch.Tensor:
    torch.manual_seed(0)
    vae = MotionVAE(VAEConfig.tiny(position_init="sinusoidal", dropout=0.0))
    if time_invariant:  # every decoder query is the same vector: one pose for all frames
        vae.query_pos_decoder.pe.data.zero_()
        vae.query_pos_decoder.pe.requires_grad_(False)
    system = VAESystem(vae, normalizer, rec_vel_weight=1.0)
    optimizer = torch.optim.Adam([p for p in vae.parameters() if p.requires_grad], lr=1e-3)
    lengths = torch.tensor([x.shape[1]])
    batch = {"features": x, "lengths": lengths, "mask": torch.ones(1, x.shape[1], dtype=torch.bool)}
    for _ in range(STEPS):
        optimizer.zero_grad()
        system.compute_loss(batch)["loss"].backward()
        optimizer.step()
    with torch.no_grad():
        z, _ = vae.encode(x, lengths, use_mean=True)
        return system.joints(vae.decode(z, lengths))[0]


def test_decoder_reconstructs_the_motion_and_a_time_invariant_one_is_flagged(walk) -> None:
    normalizer, x = walk
    real = relative_joint_speed(features_to_joints(normalizer.denormalize(x[0])).numpy())
    moving = relative_joint_speed(fit(normalizer, x, time_invariant=False).numpy())
    frozen = relative_joint_speed(fit(normalizer, x, time_invariant=True).numpy())
    assert real > 0.2
    assert moving > 0.5 * real, (moving, real)
    assert frozen < 0.05 * real, (frozen, real)


def test_sinusoidal_positions_start_distinct_and_smooth() -> None:
    vae = MotionVAE(VAEConfig.tiny(position_init="sinusoidal"))
    pe = vae.query_pos_decoder.pe[:, 0]
    step = (pe[1:] - pe[:-1]).norm(dim=-1)
    far = (pe[:-50] - pe[50:]).norm(dim=-1)
    assert step.min() > 0.05 and (far > step[:-49]).all()


def test_velocity_term_is_reported_only_when_weighted(walk) -> None:
    normalizer, x = walk
    batch = {"features": x, "lengths": torch.tensor([x.shape[1]]), "mask": torch.ones(1, x.shape[1], dtype=torch.bool)}
    vae = MotionVAE(VAEConfig.tiny())
    assert "rec_vel" not in VAESystem(vae, normalizer).compute_loss(batch)
    terms = VAESystem(vae, normalizer, rec_vel_weight=2.0).compute_loss(batch)
    rest = terms["rec_feats"] + terms["rec_joints"] + 1e-4 * terms["kl"]
    assert torch.isclose(terms["loss"], rest + 2.0 * terms["rec_vel"])


def test_unknown_position_init_is_refused() -> None:
    with pytest.raises(ValueError, match="position_init"):
        VAEConfig.tiny(position_init="random")


def conv_tiny() -> VAEConfig:
    return VAEConfig(
        arch="conv", latent_frames=8, latent_size=25, latent_dim=8, hidden_dim=32, num_layers=1, max_len=200
    )


def test_latent_spread_counts_only_real_tokens() -> None:
    from motionlcm.train.vae_system import latent_spread

    z = torch.zeros(2, 4, 3)
    z[0, :2] = torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]])
    z[1, :2] = torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]])
    z[:, 2:] = 100.0  # padding tokens: must not count
    valid = torch.tensor([[True, True, False, False]] * 2)
    expected = torch.tensor([1.0, 2.0, 3.0]) * (4 / 3) ** 0.5  # unbiased std of (+a, -a, +a, -a)
    assert torch.allclose(latent_spread(z, valid), expected)


def test_latent_noise_perturbs_training_decodes_by_the_spread_and_never_evaluation(walk) -> None:
    from motionlcm.models.vae import build_vae

    normalizer, x = walk
    batch = {"features": x, "lengths": torch.tensor([x.shape[1]]), "mask": torch.ones(1, x.shape[1], dtype=torch.bool)}
    torch.manual_seed(0)
    vae = build_vae(conv_tiny())
    seen = []
    decode = vae.decode
    vae.decode = lambda z, lengths, **k: seen.append(z.detach()) or decode(z, lengths, **k)
    noisy, clean = VAESystem(vae, normalizer, latent_noise=0.5), VAESystem(vae, normalizer)
    noisy.train()
    torch.manual_seed(1)
    noisy.compute_loss(batch)
    torch.manual_seed(1)
    clean.compute_loss(batch)  # the same posterior sample, no noise
    valid = vae.latent_mask(batch["lengths"])[0]
    added = (seen[0] - seen[1])[0, valid]
    ratio = added.std(0) / (0.5 * seen[1][0, valid].std(0))
    assert 0.5 < ratio.mean() < 1.5  # 10 tokens per dimension: a loose bound on a std estimate
    assert (seen[0][0, ~valid] == 0).all()  # tokens without frames stay empty
    noisy.eval()
    torch.manual_seed(2)
    evaluation = noisy.compute_loss(batch)["loss"]
    torch.manual_seed(2)
    assert torch.equal(evaluation, clean.compute_loss(batch)["loss"])


def test_init_dir_starts_from_a_trained_vae_of_the_same_shape(bn_dataset_dir, tmp_path) -> None:
    from motionlcm.models.folder import save_model_folder
    from motionlcm.models.vae import build_vae
    from motionlcm.train.datamodule import HumanML3DDataModule
    from motionlcm.train.run import _vae_system

    torch.manual_seed(3)
    trained = build_vae(conv_tiny())
    normalizer = Normalizer.from_dir(bn_dataset_dir)
    save_model_folder(tmp_path / "vae", vae=trained, mean=normalizer.mean, std=normalizer.std, meta={})
    model = {
        "arch": "conv",
        "latent_frames": 8,
        "latent_size": 25,
        "latent_dim": 8,
        "hidden_dim": 32,
        "num_layers": 1,
        "max_len": 200,
    }
    config = {"model": model, "trainer": {"max_steps": 10}, "init_dir": str(tmp_path / "vae")}
    dm = HumanML3DDataModule(root=bn_dataset_dir, batch_size=2)
    dm.setup("fit")
    system = _vae_system(config, dm)
    for key, value in trained.state_dict().items():
        assert torch.equal(system.vae.state_dict()[key], value), key
    with pytest.raises(ValueError, match="config differs"):
        _vae_system({**config, "model": {**model, "hidden_dim": 48}}, dm)


def test_acceleration_term_is_weighted_in_and_penalises_jitter(walk) -> None:
    normalizer, x = walk
    batch = {"features": x, "lengths": torch.tensor([x.shape[1]]), "mask": torch.ones(1, x.shape[1], dtype=torch.bool)}
    vae = MotionVAE(VAEConfig.tiny())
    system = VAESystem(vae, normalizer, rec_acc_weight=100.0)
    terms = system.compute_loss(batch)
    assert "rec_vel" not in terms
    assert torch.isclose(
        terms["loss"], terms["rec_feats"] + terms["rec_joints"] + 1e-4 * terms["kl"] + 100.0 * terms["rec_acc"]
    )
    # the term itself: 0 for the true joints, larger for a jittered copy than for a smoothly offset one
    joints = system.joints(x)
    mask = batch["mask"]
    from motionlcm.train.losses import frame_differences, masked_smooth_l1

    def acc_loss(pred):
        acc = frame_differences(frame_differences(pred))
        true = frame_differences(frame_differences(joints))
        return masked_smooth_l1(acc, true, mask[:, 2:], 0.0).mean()

    jitter = joints + 0.01 * (-1.0) ** torch.arange(joints.shape[1])[None, :, None, None]
    offset = joints + 0.01
    assert acc_loss(joints) == 0 and acc_loss(jitter) > 10 * acc_loss(offset)
