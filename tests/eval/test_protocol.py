"""The evaluation protocol end to end: tiny models, a tiny evaluator, the CLI and metrics.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.data.features import features_to_joints
from motionlcm.data.normalizer import Normalizer
from motionlcm.eval.contrastive import (
    ContrastiveEvaluator,
    EvaluatorConfig,
    Vocabulary,
    caption_tokens,
    save_evaluator,
)
from motionlcm.eval.kinematics import freeze_motion, relative_joint_speed
from motionlcm.eval.protocol import (
    COLUMNS,
    ROWS,
    EvalSettings,
    Subject,
    evaluate,
    format_report,
    format_table,
    frozen_features,
    load_evaluator,
    load_subject,
)
from tests.eval.test_t2m import deps_dir, eval_stats, reference, state_dicts  # noqa: F401  (fixtures)

SMALL = dict(replications=2, batch_size=16, mm_samples=4, mm_repeats=3, mm_times=2, min_length=20)
KINEMATIC_KEYS = (
    "relative_speed", "relative_speed_ratio", "skating", "jitter", "root_speed", "root_speed_ratio",
    "fast_root_speed_ratio",
)  # fmt: skip
KINEMATIC_HEADERS = ("Rel. speed (m/s)", "Speed / real", "Root speed / real", "Fast clips' root speed / real",
                     "Skating", "Jitter (m/s³)")  # fmt: skip


@pytest.fixture(scope="module")
def eval_dataset_dir(bn_dataset_dir, tmp_path_factory) -> Path:
    """The 12 fixture clips, each three times under a new name: 36 test items (R-precision needs 32)."""
    out = tmp_path_factory.mktemp("eval-data") / "bn"
    shutil.copytree(bn_dataset_dir, out)
    names = []
    for motion in sorted((bn_dataset_dir / "new_joint_vecs").glob("*.npy")):
        for copy in range(3):
            name = f"{motion.stem}_c{copy}"
            shutil.copy(motion, out / "new_joint_vecs" / f"{name}.npy")
            shutil.copy(bn_dataset_dir / "texts" / f"{motion.stem}.txt", out / "texts" / f"{name}.txt")
            names.append(name)
    (out / "test.txt").write_text("\n".join(names) + "\n")
    return out


@pytest.fixture(scope="module")
def evaluator_dir(eval_dataset_dir, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    texts = [
        line.split("#")[0] for f in (eval_dataset_dir / "texts").glob("*.txt") for line in f.read_text().splitlines()
    ]
    vocab = Vocabulary.build(caption_tokens(t) for t in texts)
    stats = Normalizer.from_dir(eval_dataset_dir)
    evaluator = ContrastiveEvaluator(EvaluatorConfig.tiny(), vocab, stats.mean, stats.std)
    return save_evaluator(evaluator, tmp_path_factory.mktemp("ev") / "evaluator")


def test_cli_eval_prints_the_table_and_writes_every_replication(student_dir, eval_dataset_dir, evaluator_dir, tmp_path):
    out = tmp_path / "metrics.json"
    cmd = [
        sys.executable,
        "-m",
        "motionlcm.cli",
        "eval",
        "--model",
        str(student_dir),
        "--dataset",
        str(eval_dataset_dir),
        "--evaluator",
        str(evaluator_dir),
        "--replications",
        "2",
        "--batch-size",
        "16",
        "--mm-samples",
        "4",
        "--mm-repeats",
        "3",
        "--mm-times",
        "2",
        "--min-length",
        "20",
        "--aits",
        "2",
        "--steps",
        "2",
        "-q",
        "-o",
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| Real motion |" in result.stdout and "student (lcm-v2, 2 steps, guidance 12.5)" in result.stdout
    assert "AITS" in result.stdout and "| Frozen real (sanity) |" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["summary"]) == set(ROWS) and all(set(run) == set(ROWS) for run in report["replications"])
    assert report["samples"] == 36 and report["r_precision_samples"] == 32 and len(report["replications"]) == 2
    for key in ("top1", "top2", "top3", "fid", "matching_score", "diversity", "multimodality"):
        stats = report["summary"]["model"][key]
        values = [run["model"][key] for run in report["replications"]]
        assert stats["values"] == values and stats["mean"] == pytest.approx(np.mean(values))
        assert stats["conf_interval"] == pytest.approx(1.96 * np.std(values) / np.sqrt(2))
    assert report["aits"]["sentences"] == 2 and set(report["aits"]["stages"]) == {"text", "denoise", "decode", "joints"}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr


def test_a_seed_makes_the_evaluation_repeatable(teacher_dir, eval_dataset_dir, evaluator_dir):
    evaluator = load_evaluator(evaluator_dir)
    settings = EvalSettings(steps=3, **SMALL)
    subject = load_subject(teacher_dir, settings)
    first = evaluate(subject, eval_dataset_dir, evaluator, settings, progress=False)
    second = evaluate(subject, eval_dataset_dir, evaluator, settings, progress=False)
    assert first["replications"] == second["replications"]
    other = evaluate(subject, eval_dataset_dir, evaluator, EvalSettings(steps=3, seed=7, **SMALL), progress=False)
    assert other["replications"][0]["model"]["fid"] != first["replications"][0]["model"]["fid"]
    assert "teacher (ddim, 3 steps, guidance 7.5)" in format_table(first)


@pytest.fixture(scope="module")
def oracle_report(eval_dataset_dir, evaluator_dir) -> dict:
    """The evaluation of a "model" that returns the real motion (no multimodality)."""
    evaluator = load_evaluator(evaluator_dir)
    normalizer = Normalizer.from_dir(eval_dataset_dir)
    oracle = Subject(
        "oracle",
        "teacher",
        lambda batch, gen: normalizer.denormalize(batch["features"]),
        normalizer,
        torch.device("cpu"),
        {},
    )
    return evaluate(
        oracle,
        eval_dataset_dir,
        evaluator,
        EvalSettings(multimodality=False, **{**SMALL, "mm_times": 2}),
        progress=False,
    )


def test_a_model_that_returns_the_real_motion_scores_like_real_motion(oracle_report):
    for run in oracle_report["replications"]:
        for key in ("top1", "top2", "top3", "matching_score"):
            assert run["model"][key] == run["real"][key]  # same pairs, same groups
        assert abs(run["model"]["fid"]) < 1e-6
        # the joints users get of real clips, re-derived: the same features, so the same groups and scores
        assert run["model"]["top3_joints"] == run["real"]["top3_joints"]
        assert run["model"]["fid_joints"] < 1e-3 and run["frozen"]["fid_joints"] > 100 * run["model"]["fid_joints"]
        for key in KINEMATIC_KEYS:  # the same clips: the same joints
            assert run["model"][key] == pytest.approx(run["real"][key], rel=1e-9)


def test_every_row_has_the_kinematic_metrics_and_the_frozen_row_stands_still(oracle_report):
    summary = oracle_report["summary"]
    assert set(summary) == set(ROWS) == {"real", "frozen", "model"}
    for row in ROWS:
        for key in KINEMATIC_KEYS:
            assert np.all(np.isfinite(summary[row][key]["values"])), (row, key)
            assert len(summary[row][key]["values"]) == SMALL["replications"]
        assert {"top1", "top3", "fid", "matching_score", "diversity"} <= set(summary[row])
    real, frozen = summary["real"], summary["frozen"]
    assert real["relative_speed_ratio"]["values"] == pytest.approx([1.0] * SMALL["replications"], abs=1e-12)
    assert real["relative_speed"]["mean"] > 0.2  # walks and a run among the 12 clips
    # The first pose along the real root path: only turning moves the joints relative to the pelvis.
    assert frozen["relative_speed_ratio"]["mean"] < 0.2
    for run in oracle_report["replications"]:
        assert run["frozen"]["relative_speed_ratio"] == pytest.approx(
            run["frozen"]["relative_speed"] / run["real"]["relative_speed"]
        )
        assert run["frozen"]["skating"] > run["real"]["skating"]  # walks whose feet now glide
        # the first pose is carried along the real root path: the body travels at the real pace
        assert run["frozen"]["root_speed_ratio"] == pytest.approx(1.0, abs=0.05)
        assert run["frozen"]["fast_root_speed_ratio"] == pytest.approx(1.0, abs=0.05)
        assert run["frozen"]["jitter"] < run["real"]["jitter"]  # a rigid pose has no limb jerk
    assert "multimodality" not in frozen


def test_the_table_prints_the_frozen_row_and_the_kinematic_columns(oracle_report):
    table = format_table(oracle_report)
    lines = table.splitlines()
    assert all(header in lines[0] for header in KINEMATIC_HEADERS)
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["Real motion", "Frozen real (sanity)", "teacher"]
    frozen = lines[3].split("|")[2:-1]
    assert len(frozen) == len(COLUMNS) and frozen[COLUMNS.index(("multimodality", "MModality"))].strip() == "-"
    ratio = frozen[[key for key, _ in COLUMNS].index("relative_speed_ratio")].strip()
    assert (
        ratio == f"{oracle_report['summary']['frozen']['relative_speed_ratio']['mean']:.3f} ± "
        f"{oracle_report['summary']['frozen']['relative_speed_ratio']['conf_interval']:.3f}"
    )


def test_frozen_features_are_the_frozen_motion(eval_dataset_dir):
    names = ["dataset-2_walk-turn-left_normal_001", "dataset-2_run_active_001", "Mdataset-2_walk_normal_001"]
    crops = [
        np.load(eval_dataset_dir / "new_joint_vecs" / f"{n}.npy").astype(np.float32)[start:]
        for n, start in zip(names, (0, 7, 4), strict=True)
    ]  # windows that start mid-clip, as random crops
    lengths = torch.tensor([len(c) - 3 for c in crops])  # padded past each length
    real = torch.zeros(len(crops), max(len(c) for c in crops), 263)
    for i, crop in enumerate(crops):
        real[i, : len(crop)] = torch.from_numpy(crop)
    frozen = frozen_features(real, lengths)
    assert frozen.shape == real.shape and frozen.dtype == real.dtype
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(frozen[i, n:] == 0)
        expected = freeze_motion(features_to_joints(real[i, :n].double().numpy()))
        joints = features_to_joints(frozen[i, :n].double().numpy())
        assert joints.shape == expected.shape
        # The same motion up to where the features put it (origin, facing, floor): rigid pose, same path.
        pairwise = [np.linalg.norm(j[:, :, None] - j[:, None], axis=-1) for j in (joints, expected)]
        np.testing.assert_allclose(pairwise[0], pairwise[1], atol=1e-5)
        step = [np.linalg.norm(np.diff(j[:, 0], axis=0), axis=-1) for j in (joints, expected)]
        np.testing.assert_allclose(step[0], step[1], atol=1e-5)  # the pelvis moves as the real one
        np.testing.assert_allclose(np.diff(joints[:, 0, 1]), np.diff(expected[:, 0, 1]), atol=1e-5)
        assert relative_joint_speed(joints) == pytest.approx(relative_joint_speed(expected), rel=1e-4)
        assert joints[..., 1].min() == pytest.approx(0.0, abs=1e-6)  # put back on the floor by the features


def test_a_vae_folder_is_evaluated_by_reconstruction(teacher_dir, eval_dataset_dir, evaluator_dir):
    vae_dir = Path(teacher_dir).parents[1] / "vae" / "model"
    settings = EvalSettings(**SMALL)
    report = evaluate(
        load_subject(vae_dir, settings), eval_dataset_dir, load_evaluator(evaluator_dir), settings, progress=False
    )
    assert report["kind"] == "vae" and "multimodality" not in report["summary"]["model"]
    rec = report["reconstruction"]
    assert rec["frames"] > 0 and 0 < rec["mpjpe_mm"] < rec["mpjpe_unaligned_mm"] + 1e-6
    assert "VAE reconstruction" in format_table(report) and "Frozen real (sanity)" in format_table(report)
    assert set(report["summary"]) == set(ROWS) and report["summary"]["real"]["relative_speed_ratio"][
        "mean"
    ] == pytest.approx(1)


def test_bad_inputs_fail_with_one_line(student_dir, eval_dataset_dir, evaluator_dir, tmp_path):
    base = [
        sys.executable,
        "-m",
        "motionlcm.cli",
        "eval",
        "--model",
        str(student_dir),
        "--dataset",
        str(eval_dataset_dir),
        "--min-length",
        "20",
        "-o",
        str(tmp_path / "m.json"),
        "-q",
    ]
    missing = subprocess.run(base + ["--evaluator", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nowhere" in missing.stderr and missing.stderr.count("\n") == 1
    small = subprocess.run(base + ["--evaluator", str(evaluator_dir), "--split", "val"], capture_output=True, text=True)
    assert small.returncode == 2 and "at least 32" in small.stderr
    assert not (tmp_path / "m.json").exists()


def test_cli_eval_accepts_an_official_t2m_deps_folder(student_dir, eval_dataset_dir, deps_dir, tmp_path):  # noqa: F811
    out = tmp_path / "t2m.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "motionlcm.cli",
            "eval",
            "--model",
            str(student_dir),
            "--dataset",
            str(eval_dataset_dir),
            "--evaluator",
            str(deps_dir),
            "--replications",
            "1",
            "--no-mm",
            "--aits",
            "0",
            "--min-length",
            "20",
            "-q",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["samples"] == 36 and np.isfinite(report["summary"]["model"]["fid"]["mean"])


def test_control_evaluation_spatial_and_temporal(control_dir, student_dir, eval_dataset_dir, evaluator_dir):
    """`eval --control`: the control columns next to FID; warping meets dense pelvis hints; temporal control
    splices the real prefix and adds the seam columns."""
    evaluator = load_evaluator(evaluator_dir)
    small = {**SMALL, "replications": 1, "multimodality": False}
    spatial = EvalSettings(control="pelvis", density=100, **small)
    report = evaluate(load_subject(student_dir, spatial), eval_dataset_dir, evaluator, spatial, progress=False)
    model = report["summary"]["model"]
    assert model["avg_err_m"]["mean"] < 0.087 and model["traj_fail_50cm"]["mean"] == 0  # warped onto the path
    assert "control (pelvis, density 100" in format_report(report)
    temporal = EvalSettings(control="body", temporal=True, control_method="clt", clt_steps=2, **small)
    report = evaluate(load_subject(student_dir, temporal), eval_dataset_dir, evaluator, temporal, progress=False)
    model = report["summary"]["model"]
    assert model["avg_err_m"]["mean"] > 0  # the model's own attempt at the prefix, before the splice
    assert 0 <= model["seam_fail"]["mean"] <= 1 and model["real_jump_p95_m"]["mean"] > 0
    assert "temporal: the errors are the model's own attempt" in format_report(report)
