"""Continuation geometry on real motion capture: the planar frame of a pose, the prefix splice (exact prefix,
rigid hand-over, no jump at the seam) and prefix checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motionlcm.data.continuation import (
    PlanarFrame,
    check_prefix,
    decay,
    facing_yaw,
    prefix_hints,
    rotate_y,
    splice_prefix,
)
from motionlcm.data.features import features_to_joints
from motionlcm.data.skeleton import bone_lengths


@pytest.fixture(scope="module")
def clips(humanml3d_sample_dir):
    """Two real HumanML3D clips as (T, 22, 3) joints (canonical: frame 0 faces +z at the origin)."""
    return [features_to_joints(np.load(p)).astype(np.float64) for p in sorted(humanml3d_sample_dir.glob("*/*.npy"))
            if np.load(p).shape[-1] == 263]  # fmt: skip


def moved(joints, yaw, shift):
    return rotate_y(joints, yaw) + np.array([shift[0], 0.0, shift[1]])


def max_step(joints):
    """The largest frame-to-frame move of any joint (m)."""
    return np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=1)


def test_a_canonical_clip_faces_plus_z_and_its_frame_undoes_a_rigid_move(clips):
    for joints in clips:
        assert abs(facing_yaw(joints[0])) < 0.25  # canonical up to HumanML3D's heading smoothing
        world = moved(joints, 2.0, (3.0, -1.5))
        assert math.isclose(facing_yaw(world[0]), facing_yaw(joints[0]) + 2.0, abs_tol=1e-9)
        frame = PlanarFrame.of_pose(world[0])
        local = frame.to_local(world)
        assert abs(facing_yaw(local[0])) < 1e-9 and np.allclose(local[0, 0, [0, 2]], 0.0)
        assert np.allclose(frame.to_world(local), world)


def test_splicing_a_clip_onto_its_own_moved_copy_gives_the_clip_back(clips):
    """The generated motion is the same clip elsewhere on the floor: the rigid hand-over must undo the move
    exactly and leave nothing to blend."""
    for joints in clips:
        for k in (1, 12, 40):
            out = splice_prefix(joints[:k], moved(joints, -1.1, (0.7, 2.0)))
            assert np.allclose(out, joints, atol=1e-5)  # the rigid placement re-imposes float32 bone lengths
            assert np.allclose(splice_prefix(joints[:k], moved(joints, -1.1, (0.7, 2.0)), rigid=False), joints,
                               atol=1e-9)  # fmt: skip


def test_the_continuation_takes_the_prefixs_body(clips):
    """The blend moves every joint by its own offset and would stretch bones; after the splice every frame
    has the bones of the prefix, also when the prefix is a taller body than the generated one."""
    a = clips[0]
    k = 30
    tall = a * 1.12  # the prefix's body: 12 % taller than the generated motion's
    drift = 0.06 * np.sin(np.arange(len(a))[:, None, None] / 7.0 + np.arange(22)[None, :, None])
    out = splice_prefix(tall[:k], moved(a + drift, 0.4, (2.0, 0.0)))
    lengths = bone_lengths(out)
    assert np.abs(lengths - bone_lengths(tall[k - 1])).max() < 1e-6
    assert (
        np.abs(
            bone_lengths(splice_prefix(tall[:k], moved(a + drift, 0.4, (2.0, 0.0)), rigid=False)[k + 2])
            - bone_lengths(tall[k - 1])
        ).max()
        > 0.01
    )  # fmt: skip  (without it the bones stretch)
    assert max_step(out[k - 1 : k + 11]).max() <= 1.5 * np.percentile(max_step(tall), 95)


def test_the_seam_has_no_jump(clips):
    """The model's attempt at the prefix is off by centimetres that drift (a smooth per-joint offset) and stands
    elsewhere on the floor: the prefix stays exact, the frames after it move no more than the real clip does
    from frame to frame, and after the blend the motion is the generated one (moved rigidly)."""
    a = clips[0]
    total, k = len(a), 30
    t = np.arange(total)[:, None, None] / 20.0
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, (1, 22, 3))
    drift = 0.08 * np.sin(1.3 * t + phase)  # up to 8 cm, changing over the clip
    generated = moved(a + drift, 0.8, (1.0, 1.0))
    out = splice_prefix(a[:k], generated, blend_frames=10)
    assert np.array_equal(out[:k], a[:k])
    limit = np.percentile(max_step(a), 95)
    assert max_step(out[k - 1 : k + 11]).max() <= 1.5 * limit
    naive = np.concatenate([a[:k], generated[k:]])  # what splicing without hand-over gives
    assert max_step(naive[k - 1 : k + 1]).max() > 5 * limit
    after = slice(k + 40, total)  # past the blend (longer than 10 frames for offsets above 10 cm)
    out = splice_prefix(a[:k], generated, blend_frames=10, rigid=False)  # the drift stretches bones: not re-placed
    turn = facing_yaw(out[k + 40]) - facing_yaw(generated[k + 40])
    relative, expected = out - out[:, :1], generated - generated[:, :1]
    assert np.allclose(rotate_y(expected[after], turn), relative[after], atol=1e-6)


def test_decay_is_smooth_at_both_ends():
    s = np.linspace(0, 1, 1001)
    d = decay(s)
    assert d[0] == 1.0 and d[-1] == 0.0 and np.all(np.diff(d) <= 0)
    assert abs(d[1] - 1.0) < 1e-7 and abs(d[-2]) < 1e-7  # flat ends


def test_prefix_hints_and_checks(clips):
    values, mask = prefix_hints(clips[0][:5], 40, (0, 20))
    assert mask[:5, [0, 20]].all() and mask.sum() == 5 * 2 * 3
    assert np.allclose(values[:5, 20], clips[0][:5, 20])
    with pytest.raises(ValueError, match=r"prefix: expected joints of shape \(K, 22, 3\)"):
        check_prefix(np.zeros((5, 21, 3)))
    bad = clips[0][:5].copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="prefix: frame 3: NaN"):
        check_prefix(bad)
    with pytest.raises(ValueError, match="dtype int64"):
        check_prefix(np.zeros((5, 22, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="must be longer"):
        splice_prefix(clips[0][:10], clips[0][:10])


def test_a_run_continued_by_a_standing_motion_coasts_on_and_is_never_pulled_back(clips):
    """The prefix runs forward at 2.4 m/s, the model's continuation stands where the prefix ends. Handed over
    like any joint's offset, the pelvis stopped within three frames and was then pulled back; carried on, the
    extra distance only grows, by less each frame, and the pelvis's speed changes by at most `MAX_ROOT_DECEL`
    a frame beyond the clip's own changes."""
    from motionlcm.data.continuation import MAX_ROOT_DECEL

    a = clips[0]
    k, speed = 30, 0.12  # m per frame
    ramp = np.zeros_like(a)
    ramp[..., 2] = speed * np.arange(len(a))[:, None]
    prefix = (a + ramp)[:k]
    out = splice_prefix(prefix, a.copy(), rigid=False)
    extra = out[k - 1 :, 0, 2] - (a[k - 1 :, 0, 2] + ramp[k - 1, 0, 2])  # beyond where the generated pelvis is
    gained = np.diff(extra)
    assert gained.min() >= -1e-9  # never pulled back
    assert np.all(np.diff(gained) <= 1e-9)  # slowing down, never speeding up
    assert extra[-1] > 0.5  # it coasted on for a while: 2.4 m/s does not stop in a step
    own = np.abs(np.diff(np.diff(a[k - 2 :, 0, [0, 2]], axis=0), axis=0)).max()
    steps = np.diff(out[k - 2 :, 0, [0, 2]], axis=0)
    assert np.abs(np.diff(steps, axis=0)).max() <= MAX_ROOT_DECEL + own + 1e-9
