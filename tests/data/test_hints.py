"""Control hints: validation of user input (one clear line each), trajectory CSVs, keyframes, masks, and the
hint normalisation round trip on real joints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionlcm.data.features import features_to_joints
from motionlcm.data.hints import (
    CONTROL_JOINTS,
    HintNormalizer,
    evaluation_mask,
    hints_from_array,
    joint_set,
    keyframe_hints,
    read_hints_file,
    training_masks,
    trajectory_hints,
)


def free(frames=10):
    return np.full((frames, 22, 3), np.nan, dtype=np.float32)


def test_nan_marks_free_joints_and_axes():
    array = free()
    array[2, 0] = [0.1, 0.9, 0.5]
    array[4, 21, [0, 2]] = [0.3, 0.4]  # height free
    hints = hints_from_array(array)
    assert hints.joints == (0, 21)
    assert hints.mask[2, 0].all() and hints.mask[4, 21].tolist() == [True, False, True]
    assert hints.mask.sum() == 5
    np.testing.assert_array_equal(hints.to_array(), array)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((10, 21, 3), np.float32), r"shape \(T, 22, 3\)"),
        (np.zeros((10, 22, 3), np.int64), "floating-point"),
        (free(), "every value is NaN"),
    ],
)
def test_bad_arrays_are_one_line_errors(array, message):
    with pytest.raises(ValueError, match=message):
        hints_from_array(array, "hints.npy")


def test_infinite_value_names_frame_and_joint():
    array = free()
    array[3, 20] = [0.0, np.inf, 0.0]
    with pytest.raises(ValueError, match="frame 3, joint left_wrist: infinite"):
        hints_from_array(array, "h.npy")


def test_hints_file_refuses_pickles(tmp_path):
    path = tmp_path / "h.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=str(path)):
        read_hints_file(path)


def test_trajectory_csv_interpolates_the_pelvis_on_the_floor(tmp_path):
    path = tmp_path / "path.csv"
    path.write_text("time_s,x,z\n0,0,0\n1,1,0\n2,1,2\n")
    hints = trajectory_hints(path, 60, 20.0)
    assert hints.joints == (0,)
    assert hints.mask[:41, 0].tolist() == [[True, False, True]] * 41 and not hints.mask[41:].any()
    np.testing.assert_allclose(hints.values[10, 0, [0, 2]], [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(hints.values[30, 0, [0, 2]], [1.0, 1.0], atol=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,0,0\n1,1,0\n0.5,2,2\n", "row 3: times must increase"),
        ("-1,0,0\n", "row 1: negative time"),
        ("0,0,0\n1,x,0\n", "row 2: expected numbers"),
        ("0,0\n", "row 1: expected three"),
        ("0,0,0\n9,0,0\n", "beyond the motion's end"),
    ],
)
def test_bad_trajectory_rows_are_named(tmp_path, text, message):
    path = tmp_path / "path.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        trajectory_hints(path, 60, 20.0)


def test_keyframes_parse_and_combine_with_a_path(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("0,0,0\n1,0,1\n")
    hints = keyframe_hints(["2.0:right_wrist:0.3,1.5,0.4"], 60, 20.0, trajectory_hints(path, 60, 20.0))
    assert hints.joints == (0, 21)
    np.testing.assert_allclose(hints.values[40, 21], [0.3, 1.5, 0.4])
    for spec, message in [
        ("9.0:right_wrist:0,1,0", "outside the motion"),
        ("1.0:right_hand:0,1,0", "unknown SMPL joint 'right_hand'"),
        ("1.0:pelvis:0,1", "three finite"),
        ("1.0-pelvis", "TIME_S:JOINT:X,Y,Z"),
    ]:
        with pytest.raises(ValueError, match=message):
            keyframe_hints([spec], 60, 20.0)


def test_implausible_hints_warn_with_frames():
    array = free(20)
    array[:, 0] = 0.0
    array[10:, 0, 0] = 5.0  # a 5 m jump in one frame: 100 m/s
    array[15, 20] = [4.0, 1.0, 0.0]  # 4 m from the pelvis... which is at x = 5: 1 m, fine
    array[5, 21] = [0.0, 1.0, 3.5]  # 3.5 m from the pelvis
    warnings = hints_from_array(array).warnings(20.0)
    assert any("faster than 12 m/s at frames 10" in w for w in warnings)
    assert any("more than 3 m from the pelvis at frames 5" in w for w in warnings)


def test_test_masks_follow_the_official_densities():
    rng = np.random.default_rng(0)
    joints = CONTROL_JOINTS["all"]
    assert evaluation_mask(100, joints, 100, rng)[:, 0, 0].sum() == 100
    assert evaluation_mask(100, joints, 25, rng)[:, 0, 0].sum() == 25
    for count in (1, 2, 5):
        mask = evaluation_mask(100, joints, count, rng)
        assert mask[:, 0, 0].sum() == count and mask.any((0, 2)).sum() == 6
    temporal = evaluation_mask(100, joints, 25, rng, temporal=True)
    assert temporal[:25].all(-1)[:, list(joints)].all() and not temporal[25:].any()


def test_training_masks_one_joint_some_frames_within_length():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([40, 24, 60])
    masks = training_masks(lengths, 60, joint_set("all"), False, generator, free_height=0.0)
    assert masks.shape == (3, 60, 22, 3)
    for mask, n in zip(masks, lengths.tolist(), strict=True):
        assert mask.any((0, 2)).sum() == 1  # one joint
        assert 1 <= mask[..., 0].any(-1).sum() <= n - 1 and not mask[n:].any()
    temporal = training_masks(lengths, 60, joint_set("all"), True)
    assert temporal[0, :10].any() and not temporal[0, 10:].any()


def test_training_masks_mixed_prefixes_and_joint_subsets():
    generator = torch.Generator().manual_seed(1)
    lengths = torch.full((200,), 80)
    six, body = joint_set("all"), joint_set("body")
    masks = training_masks(lengths, 80, six, False, generator, temporal_share=0.4, prefix_joints=(body, six),
                           random_prefix=True, joint_subsets=True)  # fmt: skip
    prefixes = subsets = 0
    for mask in masks:
        frames = np.flatnonzero(mask.any((1, 2)).numpy())
        joints = set(np.flatnonzero(mask.any((0, 2)).numpy()).tolist())
        if len(frames) and frames[-1] == len(frames) - 1 and joints in (set(body), set(six)) and len(frames) <= 20:
            prefixes += 1  # the first 1..20 frames (25 % of 80), all 22 joints or the six
            continue
        assert joints <= set(six) and joints
        assert (mask.any(-1)[frames][:, sorted(joints)]).all()  # every chosen joint at every chosen frame
        subsets += len(joints) > 1
    assert 50 < prefixes < 110 and subsets > 30


def test_hint_normalizer_round_trip_on_real_joints(humanml3d_sample_dir):
    features = np.load(humanml3d_sample_dir / "new_joint_vecs" / "000000.npy")
    joints = features_to_joints(features)
    normalizer = HintNormalizer.fit([joints])
    x = torch.as_tensor(joints, dtype=torch.float32)
    normed = normalizer.normalize(x)
    assert abs(float(normed[:, 0].mean())) < 1e-4  # the pelvis of this clip, standardised
    torch.testing.assert_close(normalizer.denormalize(normed), x, atol=1e-5, rtol=1e-5)
    again = HintNormalizer.from_dict(normalizer.to_dict())
    np.testing.assert_allclose(again.mean, normalizer.mean)
