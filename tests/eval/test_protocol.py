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

from motionlcm.data.normalizer import Normalizer
from motionlcm.eval.contrastive import (
    ContrastiveEvaluator,
    EvaluatorConfig,
    Vocabulary,
    caption_tokens,
    save_evaluator,
)
from motionlcm.eval.protocol import (
    EvalSettings,
    Subject,
    evaluate,
    format_table,
    load_evaluator,
    load_subject,
)
from tests.eval.test_t2m import deps_dir, eval_stats, reference, state_dicts  # noqa: F401  (fixtures)

SMALL = dict(replications=2, batch_size=16, mm_samples=4, mm_repeats=3, mm_times=2, min_length=20)


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
    texts = [line.split("#")[0] for f in (eval_dataset_dir / "texts").glob("*.txt") for line in f.read_text().splitlines()]
    vocab = Vocabulary.build(caption_tokens(t) for t in texts)
    stats = Normalizer.from_dir(eval_dataset_dir)
    evaluator = ContrastiveEvaluator(EvaluatorConfig.tiny(), vocab, stats.mean, stats.std)
    return save_evaluator(evaluator, tmp_path_factory.mktemp("ev") / "evaluator")


def test_cli_eval_prints_the_table_and_writes_every_replication(student_dir, eval_dataset_dir, evaluator_dir, tmp_path):
    out = tmp_path / "metrics.json"
    cmd = [sys.executable, "-m", "motionlcm.cli", "eval", "--model", str(student_dir), "--dataset", str(eval_dataset_dir),
           "--evaluator", str(evaluator_dir), "--replications", "2", "--batch-size", "16", "--mm-samples", "4",
           "--mm-repeats", "3", "--mm-times", "2", "--min-length", "20", "--aits", "2", "--steps", "2", "-q",
           "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| Real motion |" in result.stdout and "student (lcm-v2, 2 steps, guidance 12.5)" in result.stdout
    assert "AITS" in result.stdout
    report = json.loads(out.read_text())
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


def test_a_model_that_returns_the_real_motion_scores_like_real_motion(eval_dataset_dir, evaluator_dir):
    evaluator = load_evaluator(evaluator_dir)
    normalizer = Normalizer.from_dir(eval_dataset_dir)
    oracle = Subject("oracle", "mld", lambda batch, gen: normalizer.denormalize(batch["features"]), normalizer,
                     torch.device("cpu"), {})
    report = evaluate(oracle, eval_dataset_dir, evaluator, EvalSettings(multimodality=False, **{**SMALL, "mm_times": 2}),
                      progress=False)
    for run in report["replications"]:
        for key in ("top1", "top2", "top3", "matching_score"):
            assert run["model"][key] == run["real"][key]  # same pairs, same groups
        assert abs(run["model"]["fid"]) < 1e-6


def test_a_vae_folder_is_evaluated_by_reconstruction(teacher_dir, eval_dataset_dir, evaluator_dir):
    vae_dir = Path(teacher_dir).parents[1] / "vae" / "model"
    settings = EvalSettings(**SMALL)
    report = evaluate(load_subject(vae_dir, settings), eval_dataset_dir, load_evaluator(evaluator_dir), settings,
                      progress=False)
    assert report["kind"] == "vae" and "multimodality" not in report["summary"]["model"]
    rec = report["reconstruction"]
    assert rec["frames"] > 0 and 0 < rec["mpjpe_mm"] < rec["mpjpe_unaligned_mm"] + 1e-6
    assert "VAE reconstruction" in format_table(report)


def test_bad_inputs_fail_with_one_line(student_dir, eval_dataset_dir, evaluator_dir, tmp_path):
    base = [sys.executable, "-m", "motionlcm.cli", "eval", "--model", str(student_dir), "--dataset",
            str(eval_dataset_dir), "--min-length", "20", "-o", str(tmp_path / "m.json"), "-q"]
    missing = subprocess.run(base + ["--evaluator", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nowhere" in missing.stderr and missing.stderr.count("\n") == 1
    small = subprocess.run(base + ["--evaluator", str(evaluator_dir), "--split", "val"], capture_output=True, text=True)
    assert small.returncode == 2 and "at least 32" in small.stderr
    assert not (tmp_path / "m.json").exists()


def test_cli_eval_accepts_an_official_t2m_deps_folder(student_dir, eval_dataset_dir, deps_dir, tmp_path):  # noqa: F811
    out = tmp_path / "t2m.json"
    result = subprocess.run(
        [sys.executable, "-m", "motionlcm.cli", "eval", "--model", str(student_dir), "--dataset", str(eval_dataset_dir),
         "--evaluator", str(deps_dir), "--replications", "1", "--no-mm", "--aits", "0", "--min-length", "20", "-q",
         "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["samples"] == 36 and np.isfinite(report["summary"]["model"]["fid"]["mean"])
