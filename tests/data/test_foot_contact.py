"""lock_feet on real Bandai-Namco walks: real planted feet stay as they are, sliding ones are held still."""

import numpy as np
import pytest

from motionlcm.data.cleanup import clean_joints
from motionlcm.data.features import FOOT_CONTACT
from motionlcm.data.foot_contact import LEGS, contact_runs, lock_feet
from motionlcm.data.skeleton import PARENTS, TARGET_BONE_LENGTHS
from motionlcm.eval.kinematics import foot_skating_ratio


@pytest.fixture(scope="module")
def walk(bn_dataset_dir):
    name = "dataset-2_walk_normal_001"
    features = np.load(bn_dataset_dir / "new_joint_vecs" / f"{name}.npy").astype(np.float64)
    joints = np.load(bn_dataset_dir / "new_joints" / f"{name}.npy").astype(np.float64)[: len(features)]
    return joints, features[:, FOOT_CONTACT]


def test_contact_runs():
    assert contact_runs(np.array([0, 1, 1, 0, 0, 1, 0, 1], bool)) == [(1, 3), (5, 6), (7, 8)]
    assert contact_runs(np.zeros(4, bool)) == [] and contact_runs(np.ones(3, bool)) == [(0, 3)]


def test_real_clips_keep_their_steps(bn_dataset_dir):
    before, after, moved = [], [], []
    for path in sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy")):
        features = np.load(path).astype(np.float64)
        joints = np.load(bn_dataset_dir / "new_joints" / path.name).astype(np.float64)[: len(features)]
        locked = lock_feet(joints, features[:, FOOT_CONTACT])
        before.append(foot_skating_ratio(joints))
        after.append(foot_skating_ratio(locked))
        moved.append(np.linalg.norm(locked - joints, axis=-1).mean())
    # real planted feet hardly move: locking them changes a clip by millimetres and adds no skating
    assert np.mean(moved) < 0.005 and np.mean(after) <= np.mean(before) + 0.01, (moved, before, after)


def test_sliding_planted_feet_are_held_and_the_legs_follow(walk):
    joints, contacts = walk
    skating = joints.copy()
    for _, _, ankle, foot, columns in LEGS:  # planted feet glide forward at 0.5 m/s, as generated ones do
        planted = (contacts[:, list(columns)] > 0.5).any(axis=1)
        for start, stop in contact_runs(planted):
            slide = np.linspace(0.0, 0.025 * (stop - start), stop - start)
            for j in (ankle, foot):
                skating[start:stop, j, 2] += slide
    assert foot_skating_ratio(skating) > foot_skating_ratio(joints) + 0.05
    locked = lock_feet(skating, contacts)
    assert foot_skating_ratio(locked) < 0.5 * foot_skating_ratio(skating)
    creep, slid = [], []
    for hip, knee, ankle, foot, columns in LEGS:
        planted = (contacts[:, list(columns)] > 0.5).any(axis=1)
        runs = [(a, b) for a, b in contact_runs(planted) if b - a > 1]
        creep += [np.ptp(locked[a:b, foot][:, [0, 2]], axis=0).max() for a, b in runs]
        slid += [np.ptp(skating[a:b, foot][:, [0, 2]], axis=0).max() for a, b in runs]
        for child, parent in ((knee, hip), (ankle, knee)):
            length = np.linalg.norm(locked[:, child] - locked[:, parent], axis=-1)
            assert np.abs(length - TARGET_BONE_LENGTHS[child]).max() < 1e-6
    # one horizontal position per run, except where the near-straight stance leg cannot reach it (the hip
    # does not move): then the foot follows the leg, still far less than it slid
    assert sum(creep) < 0.35 * sum(slid), (creep, slid)
    untouched = [k for k in range(22) if k not in {j for leg in LEGS for j in leg[1:4]}]
    assert np.array_equal(locked[:, untouched], skating[:, untouched])


def test_clean_joints_leaves_a_real_clip_as_it_is_and_checks_shapes(walk):
    joints, contacts = walk
    assert np.linalg.norm(clean_joints(joints, contacts) - joints, axis=-1).mean() < 0.005
    assert np.array_equal(clean_joints(joints, None, conform=False), joints)
    with pytest.raises(ValueError, match="contacts"):
        lock_feet(joints, contacts[:-1])
    with pytest.raises(ValueError, match="joints"):
        lock_feet(joints[:, :21], contacts)
    assert PARENTS[4] == 1 and PARENTS[7] == 4  # LEGS follows the SMPL tree


def test_a_striding_foot_labelled_planted_for_seconds_steps_without_jumping(walk):
    """Generated walks label a striding foot planted for seconds, in runs split by a frame of label noise:
    holding each run at its mean made the foot jump by their distance (0.8 m in one frame) where they met.
    Held in pieces, the foot steps from hold to hold, and no frame moves much more than the walk itself."""
    joints, contacts = walk
    noisy = np.ones_like(contacts)
    noisy[len(noisy) // 2, :] = 0.0  # one frame of label noise between two long "contact" runs
    locked = lock_feet(joints, noisy)
    step = np.linalg.norm(np.diff(locked, axis=0), axis=-1).max()
    assert step <= np.linalg.norm(np.diff(joints, axis=0), axis=-1).max() + 0.15
    assert foot_skating_ratio(locked) < foot_skating_ratio(joints) + 0.05


def test_a_continuation_keeps_a_planted_foot_where_the_prefix_left_it(walk):
    """The hand-over at a seam moves every joint by its own decaying offset: a foot planted across the seam
    would slide from where the prefix left it to where the model put it. `clean_continuation` locks after the
    hand-over, pinned where the prefix left it (or, if the prefix's foot is still landing, where the hand-over
    lands it), so the foot stays where the real clip has it."""
    from motionlcm.data.cleanup import clean_continuation
    from motionlcm.data.continuation import splice_prefix

    joints, contacts = walk
    left_foot = 10
    planted = np.flatnonzero((contacts[:, 0] > 0.5) & (contacts[:, 1] > 0.5))
    seam = int(next(t for t in planted if t > 20 and {t + 1, t + 2, t + 3, t + 4} <= set(planted)))
    generated = joints.copy()
    generated[:, [7, 10]] += np.array([0.12, 0.0, -0.06])  # the model put the left foot 13 cm off
    prefix = joints[:seam]
    spliced = splice_prefix(prefix, generated)
    cleaned = clean_continuation(prefix, generated, contacts)
    assert np.array_equal(cleaned[:seam], prefix)
    run = next(
        stop for start, stop in contact_runs((contacts[:, 0] > 0.5) & (contacts[:, 1] > 0.5)) if start <= seam < stop
    )
    held = slice(seam, run)  # the planted frames after the seam
    truth = joints[held, left_foot][:, [0, 2]]  # where the foot lands and stays in the real clip
    drag = np.linalg.norm(spliced[held, left_foot][:, [0, 2]] - truth, axis=-1).max()
    kept = np.linalg.norm(cleaned[held, left_foot][:, [0, 2]] - truth, axis=-1).max()
    assert drag > 0.01 and kept < 0.2 * drag, (drag, kept)
    assert foot_skating_ratio(cleaned[seam - 1 :]) <= foot_skating_ratio(spliced[seam - 1 :])
    assert np.abs(lock_feet(joints, contacts, pin_first=True)[0] - joints[0]).max() < 1e-6  # frame 0 stays


def test_a_foot_still_swinging_at_the_seam_is_not_stopped_dead(walk):
    """The generated labels call a foot planted at the last prefix frame while the prefix still swings it:
    pinning it there stopped it within a frame (4 m/s to 0 was seen at timeline seams). The prefix's own
    last step decides; the foot then eases into a hold, decelerating no harder than the real walk's feet."""
    from motionlcm.data.cleanup import clean_continuation

    joints, contacts = walk
    left_foot = 10
    speed = np.linalg.norm(np.diff(joints[:, left_foot, [0, 2]], axis=0), axis=-1)  # m per frame
    # landing: the foot swings into the last prefix frame and comes to rest within three frames after it
    seam = int(next(t for t in range(20, len(joints) - 10) if speed[t - 2] > 0.06 and speed[t + 2] < 0.02))
    labels = contacts.copy()
    labels[seam - 1 : seam + 8, :2] = 1.0  # the model says: planted from the last prefix frame on
    cleaned = clean_continuation(joints[:seam], joints.copy(), labels)
    feet = cleaned[seam - 3 : seam + 8, left_foot][:, [0, 2]]
    decel = np.linalg.norm(np.diff(feet, 2, axis=0), axis=-1).max()
    real = np.linalg.norm(np.diff(joints[:, left_foot, [0, 2]], 2, axis=0), axis=-1).max()
    assert decel <= real + 1e-9, (decel, real)
    # and the hold is kept once it is reached (no slide), near where the real foot comes to rest
    held = cleaned[seam + 4 : seam + 8, left_foot][:, [0, 2]]
    assert np.linalg.norm(np.diff(held, axis=0), axis=-1).max() < 1e-3  # soft IK: a stretched leg is mm short
    assert np.linalg.norm(held[0] - joints[seam + 4, left_foot, [0, 2]]) < 0.1
