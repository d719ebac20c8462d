"""Timelines on the tiny models: a take of several segments keeps its start clip exactly, has one body and no
jump at its seams, splits long segments into pieces the model can make, streams the same frames lazily, and
`motionlcm generate --timeline` writes one take or refuses bad input with one line and nothing written."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest

from motionlcm.data.continuation import rotate_y
from motionlcm.data.features import features_to_joints
from motionlcm.data.skeleton import bone_lengths
from motionlcm.generate import Request, parse_timeline_line
from motionlcm.pipeline import MAX_FRAMES
from motionlcm.timeline import CONTEXT_FRAMES, PREFIX_SHARE, Segment, check_timeline, context_frames, piece_lengths
from tests.conftest import REPO

SEGMENTS = [("a person walks forward", 2.0), ("a person turns left", 1.5), ("a person waves", 2.5)]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "motionlcm.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def pipe(continuation_model_dir):
    from motionlcm.pipeline import MotionLCM

    return MotionLCM.from_pretrained(continuation_model_dir, text_encoder_path=None)


@pytest.fixture(scope="module")
def walk(bn_dataset_dir):
    """A real walk's joints somewhere else on the floor, turned: the clip a scene starts from."""
    features = np.load(bn_dataset_dir / "new_joint_vecs" / "dataset-2_walk_normal_001.npy")
    return (rotate_y(features_to_joints(features).astype(np.float64), 2.0) + [3.0, 0.0, -1.0]).astype(np.float32)


def max_step(joints):
    return np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=1)


def test_timeline_lines_parse_and_bad_ones_name_the_line():
    assert parse_timeline_line("walk forward#3", "f:1") == Request("walk forward", 3.0)
    assert parse_timeline_line("2.5s turn left", "f:1") == Request("turn left", 2.5)
    assert parse_timeline_line("2 people dance#30", "f:1") == Request("2 people dance", 30.0)  # any length
    assert parse_timeline_line("  ", "f:1") is None
    for line, message in [("walk forward", "f:2: missing duration"), ("2 people dance", "f:2: missing duration"),
                          ("walk#0", "f:2: seconds must be positive"), ("walk#-1", "f:2: seconds must be positive"),
                          ("walk#0.01", "f:2: 0.01 s is shorter than one frame"), (" #2", "f:2: empty prompt"),
                          ("walk#soon", "f:2: expected 'text#seconds'")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_timeline_line(line, "f:2")
    with pytest.raises(ValueError, match="700 s in all is over the maximum of 600 s"):
        check_timeline([("walk", 400.0), ("run", 300.0)])
    with pytest.raises(ValueError, match="segment 1: empty prompt"):
        check_timeline([("walk", 4.0), ("  ", 3.0)])


def test_pieces_fit_the_model_and_their_prefixes_the_controllers():
    for frames in (1, 7, 60, MAX_FRAMES, 177, 500, 2401):
        for first in (True, False):
            lengths = piece_lengths(frames, MAX_FRAMES, first)
            assert sum(lengths) == frames and max(lengths) - min(lengths) <= 1
            room = MAX_FRAMES if first else MAX_FRAMES - CONTEXT_FRAMES
            assert max(lengths) <= room and len(lengths) == -(-frames // room)
    for new in (1, 3, 9, 40, 60, 176):
        k = context_frames(new, available=500)
        assert 1 <= k <= CONTEXT_FRAMES and k + new <= MAX_FRAMES
        assert k == 2 or k / (k + new) <= PREFIX_SHARE  # within the trained prefix share, or the minimum
    assert context_frames(60, available=1) == 1  # a start pose of one frame


def test_a_take_keeps_its_start_exactly_has_one_body_and_no_jump_at_its_seams(pipe, walk):
    start = walk[:30]
    motion = pipe.generate_timeline(SEGMENTS, seed=3, start=start)
    frames = [round(s * 20) for _, s in SEGMENTS]
    assert motion.frames == 30 + sum(frames) and motion.features.shape == (motion.frames, 263)
    assert np.array_equal(motion.joints[:30], start)
    starts = [row["start_frame"] for row in motion.settings["timeline"]]
    assert starts == [30, 70, 100] and motion.captions == [(30, SEGMENTS[0][0]), (70, SEGMENTS[1][0]),
                                                           (100, SEGMENTS[2][0])]  # fmt: skip
    assert [p["seed"] for row in motion.settings["timeline"] for p in row["pieces"]] == [3, 4, 5]
    # one body: the start clip's bones, kept through every generated frame
    assert np.abs(bone_lengths(motion.joints[30:]) - bone_lengths(start[-1])).max() < 1e-4
    # no jump: a seam moves no joint further than the take's own frames inside segments do
    steps = max_step(motion.joints)
    seams = np.array(starts)
    inside = np.ones(len(steps), bool)
    for s in seams:
        inside[max(0, s - 6) : s + 5] = False
    limit = 1.5 * np.percentile(steps[inside], 95)
    for s in seams:
        assert steps[s - 1 : s + 2].max() <= max(limit, np.percentile(max_step(start), 95) * 1.5), s


def test_a_long_segment_is_made_of_pieces_and_the_stream_gives_the_same_frames_lazily(pipe):
    segments = [("a person walks forward", 12.0), ("a person waves", 1.0)]
    motion = pipe.generate_timeline(segments, seed=0)
    rows = motion.settings["timeline"]
    assert motion.frames == 260 and [len(r["pieces"]) for r in rows] == [2, 1]
    assert all(p["frames"] + p["context"] <= MAX_FRAMES for r in rows for p in r["pieces"])
    assert rows[0]["pieces"][0]["context"] == 0 and rows[0]["pieces"][1]["context"] > 0

    pulled = []

    def prompts():
        for i, segment in enumerate(segments):
            pulled.append(i)
            yield segment

    frames = []
    for frame in pipe.stream(prompts(), seed=0):
        frames.append(frame)
        if frame.index == 239:  # the last frame of the first segment: the second is not read yet
            assert pulled == [0]
    assert pulled == [0, 1] and [f.index for f in frames] == list(range(260))
    assert frames[240].new_segment and frames[240].prompt == "a person waves" and not frames[239].new_segment
    np.testing.assert_array_equal(np.stack([f.joints for f in frames]), motion.joints)


def test_a_take_without_a_controller_for_prefixes_splices(student_dir, walk):
    from motionlcm.pipeline import MotionLCM

    pipe = MotionLCM.from_pretrained(student_dir, text_encoder_path=None)  # a pelvis controller only
    motion = pipe.generate_timeline(SEGMENTS[:2], seed=1, start=walk[:20])
    assert motion.settings["method"] == "splice" and np.array_equal(motion.joints[:20], walk[:20])
    assert max_step(motion.joints[19:22]).max() < 0.2


def test_cli_writes_one_take_and_refuses_bad_timelines(continuation_model_dir, walk, tmp_path):
    np.save(tmp_path / "start.npy", walk[:25])
    scene = tmp_path / "scene.txt"
    scene.write_text("a person walks forward#2\n\n1.5s a person turns left\n")
    out = tmp_path / "out"
    result = run_cli("generate", "--timeline", str(scene), "--model", str(continuation_model_dir), "--start-from",
                     str(tmp_path / "start.npy"), "--format", "npy,json,gif", "--seed", "7", "-o", str(out), "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["scene.gif", "scene.json", "scene.npy", "scene_features.npy"]
    joints = np.load(out / "scene.npy")
    assert joints.shape == (25 + 70, 22, 3) and np.array_equal(joints[:25], walk[:25])
    meta = json.loads((out / "scene.json").read_text())
    assert [s["start_frame"] for s in meta["segments"]] == [25, 65] and meta["start_from"]["frames"] == 25
    assert meta["command"].startswith("motionlcm generate 'a person walks forward#2' 'a person turns left#1.5' "
                                      "--timeline --seed 7")  # fmt: skip
    again = tmp_path / "again"
    result = run_cli(*shlex.split(meta["command"])[1:], "--model", str(continuation_model_dir), "--format", "npy",
                     "-o", str(again), "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(again / "timeline.npy"), joints)  # the recorded command reproduces it

    bad = tmp_path / "bad.txt"
    for text, message in [("walk#2\nturn left\n", "bad.txt:2: missing duration"),
                          ("walk#2\n#3\n", "bad.txt:2: empty prompt"), ("walk#-2\n", "bad.txt:1: seconds must be "),
                          ("walk#400\nrun#300\n", "700 s in all is over the maximum of 600 s")]:  # fmt: skip
        bad.write_text(text)
        result = run_cli("generate", "--timeline", str(bad), "--model", str(continuation_model_dir), "-o",
                         str(tmp_path / "nothing"))  # fmt: skip
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    (tmp_path / "notes.txt").write_text("not a motion")
    for args, message in [(["walk", "--start-from", str(tmp_path / "notes.txt")], "notes.txt: unknown motion file"),
                          (["walk#2", "--timeline", "--max-seconds", "1"], "2 s in all is over the maximum of 1 s"),
                          (["walk#2", "run#2"], "2 prompts: give one")]:  # fmt: skip
        result = run_cli("generate", *args, "--model", str(continuation_model_dir), "-o", str(tmp_path / "nothing"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "nothing").exists() or not any((tmp_path / "nothing").iterdir())


def test_a_start_clip_from_a_bvh_of_another_rig_needs_its_mapping(bn_fixture_dir, tmp_path):
    from motionlcm.timeline import read_start_clip

    bvh = bn_fixture_dir / "dataset-2_walk_normal_001.bvh"
    with pytest.raises(ValueError, match=r"dataset-2_walk_normal_001\.bvh: not a 22-joint SMPL motion .*--start-rig"):
        read_start_clip(str(bvh))
    joints, record = read_start_clip(str(bvh), str(REPO / "datasets" / "bandai-namco" / "rig.yaml"))
    assert joints.shape[1:] == (22, 3) and record["source_fps"] == 30.0 and record["frames"] == len(joints)
    assert 1.3 < joints[0, 15, 1] - joints[0, [10, 11], 1].min() < 2.0  # a standing person's head, metres


def test_segments_are_checked_before_anything_is_generated(pipe):
    with pytest.raises(ValueError, match="segment 1: seconds must be positive"):
        pipe.generate_timeline([("walk", 2.0), ("run", 0.0)])
    with pytest.raises(ValueError, match=r"segment 0: expected \(prompt, seconds\)"):
        pipe.generate_timeline(["walk"])
    assert Segment("walk", 2.0).frames == 40


def test_targets_anywhere_in_the_take_are_met_and_recorded(pipe, walk):
    """Take-level control: pelvis keyframes inside the first and the second segment are met (motion warping), in
    the start clip's world frame; targets on the start clip are refused."""
    start = walk[:20]
    total = 20 + 40 + 30
    hints = np.full((total, 22, 3), np.nan, np.float32)
    goal = start[-1, 0] + np.array([0.8, 0.0, -0.5], np.float32)
    hints[75, 0, [0, 2]] = goal[[0, 2]]
    hints[40, 0, [0, 2]] = start[-1, 0, [0, 2]] + np.array([0.3, -0.2], np.float32)
    motion = pipe.generate_timeline(SEGMENTS[:2], seed=2, start=start, control=hints)
    assert np.array_equal(motion.joints[:20], start)
    tolerance = 0.05 * np.sqrt(2) + 1e-4  # ROOT_TOLERANCE per axis of the prefix's turned frame
    assert np.linalg.norm(motion.joints[75, 0, [0, 2]] - goal[[0, 2]]) < tolerance
    assert np.linalg.norm(motion.joints[40, 0, [0, 2]] - hints[40, 0, [0, 2]]) < tolerance
    record = motion.settings["control"]
    assert record["controlled_points"] == 2 and record["max_err_m"] < 0.075
    assert np.isnan(motion.hints).sum() == total * 66 - 4  # the targets drawn in renders
    steps = max_step(motion.joints)
    assert steps[19:22].max() < 1.5 * np.percentile(steps[20:], 95)  # no jump at the start clip's seam
    hints[5, 0] = 0.0
    with pytest.raises(ValueError, match="targets on the start clip's first 20 frames"):
        pipe.generate_timeline(SEGMENTS[:2], start=start, control=hints)
    with pytest.raises(ValueError, match="control: hints have 90 frames, the take 140"):
        pipe.generate_timeline(SEGMENTS, start=start, control=hints)


def test_cli_steers_a_take_along_a_path_across_its_segments(continuation_model_dir, tmp_path):
    path = tmp_path / "path.csv"
    path.write_text("time_s,x,z\n0,0,0\n2,0,1.6\n3.45,1.0,2.4\n")
    out = tmp_path / "out"
    result = run_cli("generate", "a person walks forward#2", "a person turns left#1.5", "--timeline", "--trajectory",
                     str(path), "--model", str(continuation_model_dir), "--format", "npy,json", "--seed", "4",
                     "-o", str(out), "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    joints = np.load(out / "timeline.npy")
    for t, x, z in [(2.0, 0.0, 1.6), (3.45, 1.0, 2.4)]:  # on the path (3.45 s: the last frame)
        np.testing.assert_allclose(joints[round(t * 20), 0, [0, 2]], [x, z], atol=0.05 * np.sqrt(2) + 1e-3)
    meta = json.loads((out / "timeline.json").read_text())
    assert meta["control"]["controlled_points"] == 70 and f"--trajectory {path}" in meta["command"]


def test_a_two_minute_take_of_thirty_segments(pipe):
    """The issue's length: 30 segments, 120 s, one body throughout and no seam moving a joint further than the
    take's own frames do inside its segments."""
    prompts = ["a person walks forward", "a person turns left", "a person waves", "a person runs"]
    timeline = [(prompts[i % 4], 4.0) for i in range(30)]
    motion = pipe.generate_timeline(timeline, seed=5)
    assert motion.frames == 2400 and np.isfinite(motion.joints).all()
    assert [row["start_frame"] for row in motion.settings["timeline"]] == list(range(0, 2400, 80))
    lengths = bone_lengths(motion.joints)
    assert np.abs(lengths - lengths[0]).max() < 1e-4
    steps = max_step(motion.joints)
    inside = np.ones(len(steps), bool)
    for s in range(80, 2400, 80):
        inside[s - 6 : s + 5] = False
    seam_steps = [steps[s - 1 : s + 2].max() for s in range(80, 2400, 80)]
    assert max(seam_steps) <= 1.5 * np.percentile(steps[inside], 99)
