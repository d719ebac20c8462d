"""Quaternion and rotation helpers in torch, in HumanML3D's conventions.

Quaternions are (w, x, y, z), Hamilton product, unit length; a vector v is rotated by q as q v q*.
The 6D rotation form is the first two columns of the rotation matrix (Zhou et al., CVPR 2019).
"""

from __future__ import annotations

import torch
from torch import Tensor


def qmul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of quaternions (..., 4)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def cross(a: Tensor, b: Tensor) -> Tensor:
    """a x b over the last axis (3), broadcasting. Written out rather than `torch.cross`, which ONNX export
    turns into a `Split` whose opset-18 form cannot be brought to opset 17 (Unity Sentis, Unreal NNE)."""
    a, b = torch.broadcast_tensors(a, b)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return torch.stack((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0), dim=-1)


def qinv(q: Tensor) -> Tensor:
    """Conjugate of a unit quaternion (its inverse)."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def qrot(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4), broadcasting leading dims."""
    w, u = q[..., :1], q[..., 1:]
    uv = cross(u, v)
    uuv = cross(u, uv)
    return v + 2.0 * (w * uv + uuv)


def qbetween(a: Tensor, b: Tensor) -> Tensor:
    """Minimal-arc rotation taking direction a onto direction b, (..., 3) -> (..., 4).

    Built as normalize(|a||b| + a.b, a x b) as HumanML3D does; undefined (NaN) for opposite vectors.
    """
    a, b = torch.broadcast_tensors(a, b)
    w = torch.sqrt((a * a).sum(-1, keepdim=True) * (b * b).sum(-1, keepdim=True)) + (a * b).sum(-1, keepdim=True)
    q = torch.cat((w, cross(a, b)), dim=-1)
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternions (..., 4) to rotation matrices (..., 3, 3) acting on column vectors."""
    w, x, y, z = q.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def y_rotation_quaternion(half_angle: Tensor) -> Tensor:
    """Quaternion (cos h, 0, sin h, 0): a rotation about +y by 2h, (...) -> (..., 4)."""
    zeros = torch.zeros_like(half_angle)
    return torch.stack((torch.cos(half_angle), zeros, torch.sin(half_angle), zeros), dim=-1)


def matrix_to_rotation_6d(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, (R00, R10, R20, R01, R11, R21)."""
    return torch.cat((m[..., :, 0], m[..., :, 1]), dim=-1)


def rotation_6d_to_matrix(d6: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt: x = norm(a1), z = norm(x cross a2), y = z cross x."""
    x = torch.nn.functional.normalize(d6[..., :3], dim=-1)
    z = torch.nn.functional.normalize(cross(x, d6[..., 3:]), dim=-1)
    y = cross(z, x)
    return torch.stack((x, y, z), dim=-1)
