"""`foot_contact_loss` on a real Bandai-Namco walk, and the distillation's contact term."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionlcm.data.features import FOOT_CONTACT
from motionlcm.train.losses import foot_contact_loss, root_motion_loss
from tests.train.test_distill_system import batch, make_system

WALK = "dataset-2_walk-turn-left_normal_001"


def _walk(bn_dataset_dir) -> torch.Tensor:
    return torch.from_numpy(np.load(bn_dataset_dir / "new_joint_vecs" / f"{WALK}.npy")).double()[None]


def _slid(features: torch.Tensor, speed: float) -> torch.Tensor:
    """The same clip with the body carried forward `speed` m/s faster: every foot slides, labels unchanged."""
    out = features.clone()
    out[..., 2] += speed / 20.0  # root linear velocity, forward (z) in the root's facing frame, per frame
    return out


def test_a_sliding_walk_costs_far_more_than_the_real_one(bn_dataset_dir):
    real = _walk(bn_dataset_dir)
    mask = torch.ones(real.shape[:2], dtype=torch.bool)
    losses = [float(foot_contact_loss(_slid(real, s), mask)) for s in (0.0, 0.5, 1.0)]
    assert losses[0] < 0.1  # real planted feet move less than 0.9 m/s (HumanML3D's contact rule)
    assert losses[1] > 3 * losses[0] and losses[2] > 2 * losses[1]  # grows with the slide
    shortened = mask.clone()
    shortened[:, 40:] = False
    padded = _slid(real, 1.0)
    padded[:, 40:] = 1e3  # frames past the length do not count
    assert float(foot_contact_loss(padded, shortened)) == pytest.approx(
        float(foot_contact_loss(_slid(real, 1.0)[:, :40], mask[:, :40])), rel=1e-9
    )


def test_the_gradient_moves_the_feet_not_the_labels(bn_dataset_dir):
    features = _slid(_walk(bn_dataset_dir), 1.0).requires_grad_(True)
    foot_contact_loss(features, torch.ones(features.shape[:2], dtype=torch.bool)).backward()
    assert features.grad[..., FOOT_CONTACT].abs().max() == 0  # the labels are detached
    assert features.grad[..., 2].abs().sum() > 0  # the root velocity (what slides) gets a gradient
    assert features.grad[..., 4:67].abs().sum() > 0  # and so do the joint positions


def test_the_root_term_is_zero_for_the_reference_and_grows_with_a_slowed_body(bn_dataset_dir):
    walk = _walk(bn_dataset_dir)
    mask = torch.ones(walk.shape[:2], dtype=torch.bool)
    assert float(root_motion_loss(walk, walk, mask)) == 0
    slowed = walk.clone()
    slowed[..., 1:3] *= 0.5  # the body travels at half the pace
    halted = walk.clone()
    halted[..., 1:3] = 0
    costs = [float(root_motion_loss(m, walk, mask)) for m in (slowed, halted)]
    assert 0 < costs[0] < costs[1] and costs[1] == pytest.approx(4 * costs[0], rel=1e-9)


def test_the_distillation_adds_the_contact_term_with_its_weight():
    stats = {"mean": torch.zeros(263), "std": torch.ones(263)}
    plain = make_system(num_ddim_timesteps=10, one_step_timestep=799)
    weighted = make_system(num_ddim_timesteps=10, one_step_timestep=799, contact_weight=3.0, root_weight=7.0, **stats)
    torch.manual_seed(5)
    base = plain.compute_loss(batch())
    torch.manual_seed(5)
    terms = weighted.compute_loss(batch())
    assert "contact" not in base and terms["contact"] > 0 and terms["root"] > 0
    assert torch.allclose(terms["consistency"], base["consistency"])
    assert torch.allclose(terms["loss"], terms["consistency"] + 3.0 * terms["contact"] + 7.0 * terms["root"])
    terms["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in weighted.student.parameters())
    with pytest.raises(ValueError, match="contact_weight: expected"):
        make_system(contact_weight=-1.0, **stats)
    with pytest.raises(ValueError, match="root_weight: expected"):
        make_system(contact_weight=1.0, root_weight=-1.0, **stats)
    with pytest.raises(ValueError, match="mean and std"):
        make_system(contact_weight=1.0)
