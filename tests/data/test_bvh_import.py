"""`motionlcm data import-bvh` on real Bandai-Namco clips: outputs, meaning, splits, failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from motionlcm.cli import main
from motionlcm.data.bvh_import import assign_splits, import_bvh_library
from motionlcm.data.features import FEATURE_BLOCKS, features_to_joints
from motionlcm.data.skeleton import PARENTS, TARGET_BONE_LENGTHS

BN = Path(__file__).resolve().parents[2] / "datasets" / "bandai-namco"
RIG, CAPTIONS = BN / "rig.yaml", BN / "captions.yaml"


@pytest.fixture(scope="module")
def imported(bn_fixture_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("import") / "bn"
    summary = import_bvh_library(bn_fixture_dir, out, RIG, CAPTIONS, mirror=True, seed=3, workers=2, progress=False)
    return out, summary


def load(out: Path, name: str):
    return np.load(out / "new_joint_vecs" / f"{name}.npy"), np.load(out / "new_joints" / f"{name}.npy")


def turn_degrees(feats):
    return np.degrees(-2.0 * feats[1:, 0].sum())


def test_layout_and_manifest(imported):
    out, summary = imported
    names = sorted(p.stem for p in (out / "new_joint_vecs").glob("*.npy"))
    assert len(names) == 12 and all(("M" + n) in names for n in names if not n.startswith("M"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["clips"] == 12 and manifest["licence"].startswith("CC BY-NC 4.0")
    walk = next(c for c in manifest["clips"] if c["name"] == "dataset-2_walk_normal_001")
    assert (walk["source_fps"], walk["source_frames"], walk["frames"], walk["rows"]) == (30.0, 96, 64, 63)
    assert (out / "import" / "rig.yaml").is_file() and (out / "import" / "captions.yaml").is_file()
    assert not list(out.parent.glob(".bn.*"))  # no temporary folder left


def test_features_and_joints_agree_on_every_clip(imported):
    out, _ = imported
    for path in (out / "new_joint_vecs").glob("*.npy"):
        feats, joints = load(out, path.stem)
        assert feats.dtype == np.float32 and feats.shape[1] == 263 and np.isfinite(feats).all()
        assert np.abs(features_to_joints(feats) - joints).max() < 1e-5
        bones = np.linalg.norm(joints[:, 1:] - joints[:, list(PARENTS[1:])], axis=-1)
        assert np.abs(bones - TARGET_BONE_LENGTHS[1:]).max() < 1e-5, path.stem
        assert abs(joints[..., 1].min()) < 0.05  # floor (the dropped last frame may hold the minimum)
        assert np.abs(joints[0, 0, [0, 2]]).max() < 1e-6


def test_motions_keep_their_meaning(imported):
    out, _ = imported
    walk, _ = load(out, "dataset-2_walk_normal_001")
    run, _ = load(out, "dataset-2_run_active_001")
    assert 0.8 < walk[:, 2].mean() * 20 < 1.5 and run[:, 2].mean() * 20 > 2.5  # forward m/s
    assert turn_degrees(load(out, "dataset-2_walk-turn-left_normal_001")[0]) > 60  # left turn: + degrees
    assert turn_degrees(load(out, "Mdataset-2_walk-turn-left_normal_001")[0]) < -60
    _, wave = load(out, "dataset-2_wave-left-hand_elderly_001")
    _, mwave = load(out, "Mdataset-2_wave-left-hand_elderly_001")
    assert (wave[:, 20, 1] > wave[:, 15, 1]).mean() > 0.2 and (wave[:, 21, 1] > wave[:, 15, 1]).mean() == 0
    assert (mwave[:, 21, 1] > mwave[:, 15, 1]).mean() > 0.2 and (mwave[:, 20, 1] > mwave[:, 15, 1]).mean() == 0


def test_captions_follow_labels_mirrors_and_measured_turns(imported):
    out, _ = imported

    def captions(name):
        lines = (out / "texts" / f"{name}.txt").read_text().splitlines()
        assert 3 <= len(lines) <= 4 and all(len(line.split("#")) == 4 for line in lines)
        return [line.split("#")[0] for line in lines]

    assert all("left" in c for c in captions("dataset-2_wave-left-hand_elderly_001"))
    assert all("right" in c and "left" not in c for c in captions("Mdataset-2_wave-left-hand_elderly_001"))
    # Labelled turn-right, but the clip turns left (a known label error): captioned by what it does.
    fixed = captions("dataset-2_walk-turn-right_normal_004")
    assert all("left" in c and "right" not in c for c in fixed)
    manifest = json.loads((out / "manifest.json").read_text())
    record = next(c for c in manifest["clips"] if c["name"] == "dataset-2_walk-turn-right_normal_004")
    assert record["content"] == "walk-turn-left" and "turns left" in record["label_fix"]


def test_splits_keep_mirrors_together_and_stats_come_from_train(imported):
    out, _ = imported
    splits = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sum(len(v) for v in splits.values()) == 12
    for names in splits.values():
        assert all(("M" + n in names) for n in names if not n.startswith("M"))
    train = np.concatenate([load(out, n)[0] for n in splits["train"]])
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and np.allclose(mean, train.mean(0), atol=1e-5)
    for cols in FEATURE_BLOCKS.values():
        assert np.ptp(std[cols]) < 1e-6


def test_assign_splits_is_seeded_and_stratified():
    strata = {f"clip{i:03d}": ("walk" if i % 2 else "run") for i in range(200)}
    first = assign_splits(strata, (0.8, 0.05, 0.15), seed=1)
    assert first == assign_splits(strata, (0.8, 0.05, 0.15), seed=1)
    assert first != assign_splits(strata, (0.8, 0.05, 0.15), seed=2)
    for label in ("walk", "run"):
        counts = [
            sum(1 for n, s in first.items() if s == split and strata[n] == label) for split in ("train", "val", "test")
        ]
        assert counts == [80, 5, 15]


def test_import_is_deterministic(bn_fixture_dir, tmp_path, imported):
    out, _ = imported
    again = tmp_path / "again"
    import_bvh_library(bn_fixture_dir, again, RIG, CAPTIONS, mirror=True, seed=3, workers=1, progress=False)
    for name in ("train.txt", "test.txt", "texts/dataset-2_run_active_001.txt", "Std.npy"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


@pytest.fixture
def library_with_truncated_clip(bn_fixture_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(bn_fixture_dir, src)
    lines = (src / "dataset-2_run_active_001.bvh").read_text().splitlines()
    (src / "dataset-2_run_active_001.bvh").write_text("\n".join(lines[:-10]) + "\n")  # 10 frames missing
    return src, len(lines) - 10


def test_bad_clip_stops_the_import_and_leaves_nothing(library_with_truncated_clip, tmp_path, capsys):
    src, last_line = library_with_truncated_clip
    out = tmp_path / "out"
    code = main(["data", "import-bvh", str(src), "--rig", str(RIG), "--captions", str(CAPTIONS), "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "dataset-2_run_active_001.bvh" in err[0] and f":{last_line + 1}:" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_skip_bad_lists_the_clip(library_with_truncated_clip, tmp_path, capsys):
    src, _ = library_with_truncated_clip
    out = tmp_path / "out"
    args = [
        "data",
        "import-bvh",
        str(src),
        "--rig",
        str(RIG),
        "--captions",
        str(CAPTIONS),
        "-o",
        str(out),
        "-q",
        "--skip-bad",
    ]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(s["file"]).name for s in manifest["skipped"]] == ["dataset-2_run_active_001.bvh"]
    assert manifest["counts"]["clips"] == 5
    assert "skipped: " in capsys.readouterr().out
    assert main(args) != 0  # the output exists now: refuses without --force
    assert main(args + ["--force"]) == 0


def test_sidecar_captions_for_unlabelled_files(bn_fixture_dir, tmp_path):
    src = tmp_path / "studio"
    src.mkdir()
    shutil.copy(bn_fixture_dir / "dataset-2_wave-left-hand_elderly_001.bvh", src / "take_017.bvh")
    (src / "take_017.txt").write_text("an old man waves his left hand slowly.\n")
    out = tmp_path / "ds"
    import_bvh_library(src, out, RIG, None, mirror=True, workers=1, progress=False, split_ratios=(1.0, 0.0, 0.0))
    assert (out / "texts" / "take_017.txt").read_text().startswith("an old man waves his left hand slowly.#")
    assert "right hand" in (out / "texts" / "Mtake_017.txt").read_text()
    (src / "take_017.txt").unlink()
    with pytest.raises(ValueError, match="take_017.bvh: no captions"):
        import_bvh_library(src, tmp_path / "ds2", RIG, None, workers=1, progress=False)


def test_walking_backwards_moves_backwards(bn_fixture_dir, tmp_path):
    # A real walk played backwards: the body faces forward and travels backward (dataset-1's walk-back).
    text = (bn_fixture_dir / "dataset-2_walk_normal_001.bvh").read_text()
    header, motion = text.split("Frame Time:")
    time_line, *frames = motion.strip("\n").split("\n")
    src = tmp_path / "src"
    src.mkdir()
    reversed_text = header + "Frame Time:" + time_line + "\n" + "\n".join(frames[::-1]) + "\n"
    (src / "dataset-1_walk-back_normal_001.bvh").write_text(reversed_text)
    out = tmp_path / "ds"
    import_bvh_library(src, out, RIG, CAPTIONS, workers=1, progress=False, split_ratios=(1.0, 0.0, 0.0))
    feats, _ = load(out, "dataset-1_walk-back_normal_001")
    assert feats[:, 2].mean() * 20 < -0.8  # backward, about as fast as the forward walk
    assert all(
        "back" in line for line in (out / "texts" / "dataset-1_walk-back_normal_001.txt").read_text().splitlines()
    )


def test_assign_splits_of_a_label_do_not_depend_on_other_labels():
    walk = {f"walk{i:03d}": "walk/normal" for i in range(40)}
    alone = assign_splits(walk, (0.8, 0.05, 0.15), seed=0)
    both = assign_splits(walk | {f"bow{i:03d}": "bow" for i in range(15)}, (0.8, 0.05, 0.15), seed=0)
    assert {n: both[n] for n in walk} == alone
    assert sorted(s for n, s in both.items() if n.startswith("bow")).count("test") == 2
