"""Tests for motionlcm.render.stick: MP4/GIF animations, frame strips, input files, errors, atomic writes.

Clips are cut to a few dozen frames and rendered small (100-140 px) so the whole file runs in seconds.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionlcm.render import movie, stick
from motionlcm.render.stick import (
    SMPL_CHAIN_COLORS,
    body_root,
    chains_from_parents,
    find_ffmpeg,
    render_animation,
    render_frames,
)

SMALL = dict(figsize=(2.0, 2.0), dpi=50)  # 100 x 100 px
BN_CLIP = "dataset-2_raise-up-right-hand_normal_001.bvh"  # 59 frames at 30 fps
TITLE = "a man kicks something or someone with his left leg."


@pytest.fixture(scope="module")
def kick(humanml3d_sample_dir) -> np.ndarray:
    """HumanML3D 000000 (a left-leg kick), 116 frames of (22, 3)."""
    return np.load(humanml3d_sample_dir / "new_joints" / "000000.npy")


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    exe = find_ffmpeg()
    if exe is None:
        pytest.skip("no ffmpeg binary (pip install imageio-ffmpeg)")
    return exe


def probe_video(ffmpeg: str, path: Path) -> tuple[int, float]:
    """(decoded frame count, container duration in s), read back with ffmpeg itself (ffprobe-equivalent)."""
    run = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    frames = int(re.findall(r"frame=\s*(\d+)", run.stderr)[-1])
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", run.stderr).groups()
    return frames, int(h) * 3600 + int(m) * 60 + float(s)


def gif_frames(path: Path) -> list[int]:
    """Per-frame durations (ms) of a GIF, read back with Pillow."""
    with Image.open(path) as im:
        assert im.format == "GIF"
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    return durations


# ----------------------------------------------------------------------------- animations


def test_mp4_real_sample(kick, ffmpeg, tmp_path):
    joints = kick[:30]
    out = render_animation(joints, tmp_path / "kick.mp4", title=TITLE, fps=20, **SMALL)
    assert out == tmp_path / "kick.mp4"
    assert out.read_bytes()[4:8] == b"ftyp"
    frames, secs = probe_video(ffmpeg, out)
    assert frames == 30
    assert abs(secs - 30 / 20) <= 1 / 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kick.mp4"]  # no temporary file left


def test_gif_real_sample_frame_count_and_durations(kick, tmp_path):
    out = render_animation(kick[:25], tmp_path / "kick.gif", title=TITLE, fps=20, **SMALL)
    assert out == tmp_path / "kick.gif"
    assert out.read_bytes()[:6] == b"GIF89a"
    assert gif_frames(out) == [50] * 25  # 20 fps = 50 ms, exact in GIF's 10 ms units
    with Image.open(out) as im:
        assert im.size == (100, 100)
        assert im.info.get("loop") == 0


def test_gif_rates_off_the_10ms_grid_keep_the_duration(kick, tmp_path):
    durations = gif_frames(render_animation(kick[:30], tmp_path / "a.gif", fps=30, **SMALL))
    assert len(durations) == 30
    assert set(durations) <= {30, 40}
    assert sum(durations) == 1000  # 30 frames at 30 fps = 1 s


def test_high_fps_is_decimated_keeping_real_time(kick, tmp_path):
    durations = gif_frames(render_animation(kick[:24], tmp_path / "a.gif", fps=60, **SMALL))
    assert len(durations) == 12  # every 2nd frame, at 30 fps
    assert abs(sum(durations) - 400) <= 10


def test_mp4_without_ffmpeg_falls_back_to_gif(kick, tmp_path, monkeypatch):
    monkeypatch.setattr(stick, "find_ffmpeg", lambda: None)  # the name stick.py calls
    with pytest.warns(RuntimeWarning, match="no ffmpeg"):
        out = render_animation(kick[:10], tmp_path / "clip.mp4", fps=20, **SMALL)
    assert out == tmp_path / "clip.gif"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif"]
    assert gif_frames(out) == [50] * 10


def test_single_frame_motion(kick, tmp_path):
    assert gif_frames(render_animation(kick[:1], tmp_path / "one.gif", **SMALL)) == [50]


# ----------------------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_failure_leaves_nothing_on_disk(kick, tmp_path, monkeypatch, suffix):
    if suffix == ".mp4" and find_ffmpeg() is None:
        pytest.skip("no ffmpeg binary")
    writer = movie.GifWriter if suffix == ".gif" else movie.Mp4Writer
    original = writer.grab_frame
    calls = []

    def failing_grab(self, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("simulated failure")
        original(self, **kwargs)

    monkeypatch.setattr(writer, "grab_frame", failing_grab)
    with pytest.raises(RuntimeError, match="simulated failure"):
        render_animation(kick[:20], tmp_path / f"clip{suffix}", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_output(kick, tmp_path, monkeypatch):
    out = tmp_path / "clip.gif"
    out.write_bytes(b"old")
    monkeypatch.setattr(movie.GifWriter, "finish", lambda self: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        render_animation(kick[:5], out, **SMALL)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]


def test_bad_outputs_and_arguments(kick, tmp_path):
    np.save(tmp_path / "k.npy", kick[:5])
    with pytest.raises(ValueError, match="unknown output format"):
        render_animation(kick[:5], tmp_path / "x.webm")
    with pytest.raises(ValueError, match="shape"):
        render_animation(kick[0], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="NaN"):
        render_animation(np.full((3, 22, 3), np.nan), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="needs parents"):
        render_animation(np.zeros((3, 5, 3)), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="fps"):
        render_animation(kick[:5], tmp_path / "x.gif", fps=0)
    with pytest.raises(ValueError, match="out of range"):
        render_frames(kick[:5], tmp_path / "x.png", frames=[5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy"]


# ----------------------------------------------------------------------------- drawing


def _colour_pixels(rgb: np.ndarray, hex_colour: str, tol: int = 30) -> np.ndarray:
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    ys, xs = np.nonzero(np.abs(rgb.astype(int) - target).max(-1) <= tol)
    return np.stack([xs, ys], axis=-1)


def test_frame_is_upright_with_left_and_right_in_place(kick, tmp_path):
    """Frame 0 of the kick stands facing +z; the default camera is in front (front-left), so the subject's
    left side (SMPL left joints, blue leg / cyan arm) is on the image's right, the head above the feet."""
    out = render_frames(kick, tmp_path / "f.png", frames=[0], panel_size=3.0, dpi=60, linewidth=4)
    rgb = np.asarray(Image.open(out).convert("RGB"))
    right_leg, left_leg, spine, right_arm, left_arm = (_colour_pixels(rgb, c) for c in SMPL_CHAIN_COLORS)
    for pix in (right_leg, left_leg, spine, right_arm, left_arm):
        assert len(pix) > 20
    assert left_leg[:, 0].mean() > right_leg[:, 0].mean()
    assert left_arm[:, 0].mean() > right_arm[:, 0].mean()
    assert spine[:, 1].min() < min(left_arm[:, 1].min(), right_arm[:, 1].min())  # head on top (y down)
    assert spine[:, 1].mean() < min(left_leg[:, 1].mean(), right_leg[:, 1].mean())
    floor = _colour_pixels(rgb, stick._FLOOR_COLOR, tol=3)
    feet = max(left_leg[:, 1].max(), right_leg[:, 1].max())
    assert floor[:, 1].min() < feet < floor[:, 1].max()  # the feet stand on the floor


def test_chains_from_parents_cover_every_bone_once():
    parents = [-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 3, 10, 11, 12, 1, 14, 15, 16, 1, 18, 19, 20]  # Bandai-Namco
    chains = chains_from_parents(parents)
    bones = [(c[k], c[k + 1]) for c in chains for k in range(len(c) - 1)]
    assert sorted(bones) == sorted((p, j) for j, p in enumerate(parents) if p >= 0)
    assert body_root(parents) == 1  # Hips, below the ground-level joint_Root
    assert chains_from_parents([-1, 0, 1]) == [(0, 1, 2)]
    assert body_root([-1, 0, 1]) == 0


def test_rig_limbs_coloured_by_side():
    names = ["joint_Root", "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L",
             "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L",
             "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"]  # fmt: skip
    parents = [-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 3, 10, 11, 12, 1, 14, 15, 16, 1, 18, 19, 20]
    rest = np.zeros((1, 22, 3))
    rest[0, :, 1] = [0, 1, 1.1, 1.3, 1.5, 1.6, 1.4, 1.4, 1.2, 1, 1.4, 1.4, 1.2, 1, 0.9, 0.5, 0.1, 0, 0.9, 0.5, 0.1, 0]  # fmt: skip
    skel = stick._resolve_skeleton(rest, parents, None, None, names)
    by_end = {names[c[-1]]: col for c, col in zip(skel.chains, skel.colors, strict=True)}
    r_leg, l_leg, trunk, r_arm, l_arm = SMPL_CHAIN_COLORS
    assert by_end == {
        "Chest": trunk,
        "Head": trunk,
        "Hand_L": l_arm,
        "Hand_R": r_arm,
        "Toes_L": l_leg,
        "Toes_R": r_leg,
    }
    assert skel.root == 1 and 0 not in skel.joints  # the helper root is not drawn
    assert [stick._side(n) for n in ("LeftUpLeg", "l_hip", "LHipJoint", "mixamorig:RightHand", "Hips")] == [
        1, 1, 1, -1, 0]  # fmt: skip


def test_no_warnings_on_the_normal_path(kick, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render_animation(kick[:3], tmp_path / "a.gif", **SMALL)


def test_a_timeline_shows_the_current_segments_prompt(kick, tmp_path):
    """Captions (a timeline's (start frame, prompt) per segment) replace the title: the text over the figure
    changes where a segment starts and nowhere else; bad start frames are refused."""
    captions = [(0, "a person kicks"), (10, "then waves with the right hand")]
    out = render_animation(kick[:20], tmp_path / "t.gif", fps=20, figsize=(3.0, 3.0), dpi=60, captions=captions)
    tops = []
    with Image.open(out) as im:
        for i in (2, 8, 12, 18):
            im.seek(i)
            tops.append(np.asarray(im.convert("L"))[:18].astype(int))  # the caption's rows
    assert np.abs(tops[0] - tops[1]).sum() == 0 and np.abs(tops[2] - tops[3]).sum() == 0
    assert np.abs(tops[1] - tops[2]).sum() > 1000
    strip = render_frames(kick[:20], tmp_path / "t.png", frames=[0, 15], captions=captions, panel_size=1.5, dpi=40)
    assert strip.stat().st_size > 0
    with pytest.raises(ValueError, match="captions: start frame 25 is outside the motion's 20 frames"):
        render_frames(kick[:20], tmp_path / "u.png", captions=[(25, "late")])
    assert stick._caption_at(captions, 9) == "a person kicks" and stick._caption_at(captions, 10) == captions[1][1]


def _boxes_at_joints(joints: np.ndarray, half: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """A crude body mesh: a cube of 12 triangles around every joint, vertices following the joints."""
    corners = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)])
    cube = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
            (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]  # fmt: skip
    vertices = (joints[:, :, None, :] + corners).reshape(len(joints), -1, 3)
    faces = np.array([[8 * k + a, 8 * k + b, 8 * k + c] for k in range(joints.shape[1]) for a, b, c in cube])
    return vertices, faces


def test_a_body_mesh_is_drawn_instead_of_the_sticks(kick, tmp_path):
    """`mesh=` (an SMPL body's vertices and faces) replaces the sticks with shaded triangles that move with the
    motion; a mesh of the wrong length or with faces out of range is refused."""
    mesh = _boxes_at_joints(kick)
    sticks = np.asarray(Image.open(render_frames(kick, tmp_path / "s.png", frames=[0, 60], dpi=50)).convert("L"))
    body = np.asarray(Image.open(render_frames(kick, tmp_path / "m.png", frames=[0, 60], dpi=50, mesh=mesh)))
    grey = np.asarray(Image.fromarray(body).convert("L"))
    assert np.abs(grey.astype(int) - sticks.astype(int)).mean() > 1.0  # a different picture
    rgb = body[..., :3].astype(int)
    stick_colours = np.isin(rgb[..., 0], [214, 31]) & (np.abs(rgb[..., 0] - rgb[..., 2]) > 100)
    assert stick_colours.mean() < 1e-3  # no coloured sticks left
    shaded = (np.abs(rgb[..., 0] - rgb[..., 2]) < 30) & (rgb[..., 0] < 225) & (rgb[..., 0] > 60)
    assert shaded.mean() > 0.01  # grey shaded boxes cover part of the picture
    with pytest.raises(ValueError, match=r"mesh: vertices must have shape \(116, V, 3\)"):
        render_frames(kick, tmp_path / "x.png", mesh=(mesh[0][:10], mesh[1]))
    with pytest.raises(ValueError, match="mesh: face indices must lie in"):
        render_frames(kick, tmp_path / "x.png", mesh=(mesh[0], mesh[1] + 10_000))
