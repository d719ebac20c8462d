"""The speed benchmark (`motionlcm bench`, motionlcm/bench/speed.py) on the tiny trained models."""

from __future__ import annotations

import json
import re

import pytest
import torch

from motionlcm.bench.speed import SpeedSettings, format_speed_tables, run_speed_benchmark
from motionlcm.cli import main
from motionlcm.pipeline import MotionLCM


@pytest.fixture(scope="module")
def report(student_dir, teacher_dir):
    student = MotionLCM.from_pretrained(student_dir, device="cpu")
    teacher = MotionLCM.from_pretrained(teacher_dir, device="cpu")
    settings = SpeedSettings(
        steps=(1, 2), batches=(1, 3), frames=24, repeats=2, warmup=1, teacher_steps=5, threads=(1,), training_batch=4
    )
    return run_speed_benchmark(student, teacher, settings)


def test_inference_rows_cover_models_steps_and_paths(report):
    rows = report["inference"]
    keys = {(r["model"], r["steps"], r["batch"], r["path"]) for r in rows}
    for model, steps in (("student", 1), ("student", 2), ("teacher", 5)):
        assert (model, steps, 1, "official loop, eager") in keys
        assert (model, steps, 1, "+ lean text encoder (default)") in keys
        assert (model, steps, 1, "+ prompt cache hit") in keys
    assert ("student", 1, 3, "official loop, eager") in keys and (
        "teacher",
        5,
        3,
        "+ lean text encoder (default)",
    ) in keys
    assert ("student", 1, 1, "default, 1 thread(s)") in keys and ("teacher", 5, 3, "+ bf16 autocast") not in keys
    official = {(r["model"], r["steps"], r["batch"]): r for r in rows if r["path"] == "official loop, eager"}
    for r in rows:
        assert r["median_ms"] > 0
        assert abs(sum(r["stages_ms"].values()) - r["median_ms"]) < 0.5 * r["median_ms"] + 1
        base = official[(r["model"], r["steps"], r["batch"])]  # every row is compared with its own baseline
        assert r["speedup"] == pytest.approx(base["median_ms"] / r["median_ms"], rel=1e-9)
        # throughput is batch over the median end-to-end time: a row timing one motion of a batch would fail
        assert r["motions_per_s"] * r["median_ms"] / 1000 == pytest.approx(r["batch"], rel=1e-6)
        if "autocast" not in r["path"]:  # exact paths reproduce the eager features
            assert r["max_abs_diff"] < 1e-4, r
    cached = [r for r in rows if r["path"] == "+ prompt cache hit"]
    assert all(r["stages_ms"]["text"] < 1.0 for r in cached)  # a cache hit skips the encoder
    assert report["summary"]["student_vs_teacher"] > 0
    floor = report["floor"]
    assert floor["memory_gbps"] > 0 and min(floor["matmul_gflops"].values()) > 0
    gflop = floor["student_gflop"]
    assert gflop["decode"] > gflop["denoise"] > 0 and floor["teacher_gflop"]["denoise"] > 4 * gflop["denoise"]
    assert floor["student_weight_mb"]["text"] > 40  # MiniLM's six layers in float32


def test_training_rows_and_table(report):
    training = {(r["model"], r["path"]): r for r in report["training"]}
    for name in ("vae", "teacher", "distillation"):
        assert training[(f"train {name}", "official loop, eager")]["speedup"] == 1.0
        assert training[(f"train {name}", "motionlcm (default)")]["samples_per_s"] > 0
    table = format_speed_tables(report)
    assert "official loop, eager" in table and "train distillation" in table and "torch" in table


def test_bench_command_writes_json(student_dir, teacher_dir, tmp_path, capsys):
    out = tmp_path / "speed.json"
    args = [
        "bench",
        "--model",
        str(student_dir),
        "--teacher",
        str(teacher_dir),
        "--steps",
        "1",
        "--batch",
        "1",
        "--frames",
        "16",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--no-training",
        "--no-autocast",
        "-q",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["environment"]["torch"] == torch.__version__ and data["inference"]
    assert "official loop, eager" in capsys.readouterr().out
    assert main(args) == 2  # the JSON exists: no overwrite without --force
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--batch", "0"])
    assert main(["bench", "--model", str(teacher_dir), "--teacher", "none", "--no-training", "-q"]) == 2
    assert "must be a student" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeats": 0}, "--repeats: must be >= 1, got 0"),
        ({"batches": (1, 0)}, "--batch: values must be >= 1, got 0"),
        ({"warmup": -1}, "--warmup: must be >= 0"),
    ],
)
def test_speed_settings_refuse_empty_runs(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SpeedSettings(**kwargs)


def test_control_rows_time_each_installed_controller(control_dir, student_dir):
    from motionlcm.bench.speed import bench_control, control_hints

    pipe = MotionLCM.from_pretrained(student_dir, device="cpu")
    rows = bench_control(pipe, SpeedSettings(steps=(1,), frames=24, repeats=2, warmup=1))
    assert [r["controller"] for r in rows] == [c.name for c in pipe.controllers()] and rows[0]["controller"] == "pelvis"
    for r in rows:
        assert r["text_only_ms"] > 0 and r["controlled_ms"] > 0 and r["steps"] == 1
        assert r["ratio"] == pytest.approx(r["controlled_ms"] / r["text_only_ms"])
    hints = control_hints(pipe.controllers()[0], 24)
    assert hints.mask[:, 0].all() and hints.mask.sum() == 24 * 3  # the pelvis, every frame
    assert hints.values[-1, 0, 2] == pytest.approx(1.2 * 23 / 20)  # walking ahead at 1.2 m/s
    table = format_speed_tables({"environment": {"cpu": "x", "device": "cpu", "threads": 1, "torch": "t"},
                                 "inference": [], "training": [], "control": rows, "summary": {}})  # fmt: skip
    assert "control (AITS, batch 1)" in table and "pelvis" in table
