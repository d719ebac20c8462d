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
