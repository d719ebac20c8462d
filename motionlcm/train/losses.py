"""Training losses as plain functions; each returns one value per sequence, the caller reduces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from motionlcm.data.features import FOOT_CONTACT, features_to_joints

# HumanML3D's contact label order (feature columns 259:263): left ankle, left foot, right ankle, right foot
CONTACT_JOINTS = (7, 10, 8, 11)


def masked_sequence_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over the feature dims, then over the valid frames of each sequence: (B, T, ...) -> (B,).

    MotionLCM's `mask_loss: true` reduction (official `configs/vae.yaml`; `loss_calculate` in
    `mld/models/modeltype/vae.py`).
    """
    per_frame = values.flatten(2).mean(-1)
    mask = mask.to(per_frame.dtype)
    return (per_frame * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def masked_smooth_l1(pred: Tensor, target: Tensor, mask: Tensor, beta: float = 1.0) -> Tensor:
    """Smooth-L1 (beta 1, as MotionLCM's VAE losses) with the masked per-sequence mean: (B,)."""
    return masked_sequence_mean(F.smooth_l1_loss(pred, target, reduction="none", beta=beta), mask)


def frame_differences(x: Tensor) -> Tensor:
    """Per-frame velocity x[:, t+1] - x[:, t] of a (B, T, ...) sequence: (B, T-1, ...)."""
    return x[:, 1:] - x[:, :-1]


def kl_to_standard_normal(mu: Tensor, std: Tensor) -> Tensor:
    """KL(N(mu, std) || N(0, 1)) averaged over all latent elements of each sample: (B,)."""
    kl = 0.5 * (mu.square() + std.square() - 1.0) - torch.log(std)
    return kl.flatten(1).mean(-1)


def masked_token_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Squared error of (B, L, D) latents averaged over the valid tokens of each sample ((B, L) mask): (B,)."""
    weights = mask[:, :, None].to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1.0)


def foot_contact_loss(features: Tensor, mask: Tensor, contacts: Tensor | None = None, fps: float = 20.0) -> Tensor:
    """Planted feet stay put: the squared horizontal speed (m/s)^2 of the ankles and feet, each weighted by
    its contact label (clipped to [0, 1], no gradient), masked per-sequence mean: (B,).

    MDM's foot contact loss (Tevet et al. 2023, arXiv:2209.14916, eq. 4) weights the foot velocities of the
    predicted motion by the ground-truth contacts (`contacts`: the teacher's x̂0 against its training clip).
    A distilled sample has no ground truth: without `contacts` the labels are the sample's own, detached so
    that they cannot be lowered to escape the loss.

    Args:
        features: (B, T, 263) un-normalised features, differentiable (positions through `features_to_joints`).
        mask: (B, T) bool, valid frames.
        contacts: (B, T, 4) labels in the feature order (left ankle, left foot, right ankle, right foot);
            default the features' own (columns 259:263).
    """
    joints = features_to_joints(features)
    feet = joints[:, :, list(CONTACT_JOINTS)][..., [0, 2]]
    speed2 = (frame_differences(feet) * fps).square().sum(-1)  # (B, T-1, 4)
    labels = features[..., FOOT_CONTACT] if contacts is None else contacts
    contact = labels[:, :-1].detach().clamp(0.0, 1.0)
    return masked_sequence_mean(speed2 * contact, mask[:, 1:] & mask[:, :-1])


def root_motion_loss(features: Tensor, reference: Tensor, mask: Tensor, fps: float = 20.0) -> Tensor:
    """Squared difference of the root's motion, its turning rate (rad/s) and horizontal velocity (m/s)
    (feature columns 0:3, per frame, times fps), from a reference motion's (no gradient): masked
    per-sequence mean, (B,). Beside `foot_contact_loss` it keeps the body travelling as the reference does
    (the teacher's sample, or the training clip): a model that stops its body has no sliding feet either."""
    diff = (features[..., 0:3] - reference[..., 0:3].detach()) * fps
    return masked_sequence_mean(diff.square(), mask)


def check_geometry_weights(contact_weight: float, root_weight: float, mean: Tensor | None, std: Tensor | None) -> None:
    """The weights of `foot_contact_loss` and `root_motion_loss` in a training system: numbers >= 0, and the
    feature statistics to decode with when either is on; one line naming the setting otherwise."""
    for name, value in (("contact_weight", contact_weight), ("root_weight", root_weight)):
        if not value >= 0:
            raise ValueError(f"{name}: expected a number >= 0, got {value}")
    if (contact_weight > 0 or root_weight > 0) and (mean is None or std is None):
        raise ValueError("contact_weight, root_weight: the geometric terms need the feature mean and std")
