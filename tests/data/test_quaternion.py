"""data/quaternion.py against scipy's Rotation (an independent implementation), on random rotations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from motionlcm.data.quaternion import (
    matrix_to_rotation_6d,
    qbetween,
    qinv,
    qmul,
    qrot,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    y_rotation_quaternion,
)

N = 64


@pytest.fixture
def rotations() -> tuple[Rotation, torch.Tensor]:
    r = Rotation.random(N, random_state=0)
    xyzw = r.as_quat()
    return r, torch.tensor(np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1), dtype=torch.float64)  # (w, x, y, z)


def test_rotation_and_matrix_match_scipy(rotations):
    r, q = rotations
    v = torch.tensor(np.random.default_rng(1).normal(size=(N, 3)))
    np.testing.assert_allclose(qrot(q, v).numpy(), r.apply(v.numpy()), atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(q).numpy(), r.as_matrix(), atol=1e-12)


def test_product_composes_and_the_conjugate_inverts(rotations):
    r, q = rotations
    p = q.roll(1, dims=0)
    composed = quaternion_to_matrix(qmul(q, p)).numpy()
    np.testing.assert_allclose(
        composed, (r * Rotation.from_matrix(quaternion_to_matrix(p).numpy())).as_matrix(), atol=1e-12
    )
    v = torch.randn(N, 3, dtype=torch.float64)
    torch.testing.assert_close(qrot(qinv(q), qrot(q, v)), v)


def test_between_takes_one_direction_onto_the_other():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(N, 3, generator=g, dtype=torch.float64), torch.randn(N, 3, generator=g, dtype=torch.float64)
    turned = qrot(qbetween(a, b), a / a.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(turned, b / b.norm(dim=-1, keepdim=True))


def test_y_rotation_is_about_the_up_axis_by_twice_the_half_angle():
    half = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)
    expected = Rotation.from_euler("y", (2 * half).numpy()[:, None]).as_matrix()
    np.testing.assert_allclose(quaternion_to_matrix(y_rotation_quaternion(half)).numpy(), expected, atol=1e-12)


def test_6d_round_trip_and_gram_schmidt_of_a_perturbed_6d(rotations):
    r, _ = rotations
    m = torch.tensor(r.as_matrix())
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(m)), m)
    noisy = rotation_6d_to_matrix(matrix_to_rotation_6d(m) + 0.05 * torch.randn(N, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(N, 3, 3)
    torch.testing.assert_close(noisy.transpose(-1, -2) @ noisy, eye)  # always a rotation
    torch.testing.assert_close(torch.linalg.det(noisy), torch.ones(N, dtype=torch.float64))
