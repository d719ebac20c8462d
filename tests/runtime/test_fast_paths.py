"""Every inference fast path against the plain eager path, on CPU, with the tiny trained models."""

from __future__ import annotations

import pytest
import torch

from motionlcm.bench.official_loop import official_generate
from motionlcm.pipeline import MotionLCM
from motionlcm.runtime import FastPaths, bucket_frames

PROMPTS = ["a person walks forward.", "someone waves with the right hand."]


def _features(pipe, paths, lengths=(40, 23), steps=None, seed=5):
    pipe.set_fast_paths(paths)
    steps, guidance = pipe.resolve_sampling(steps, None)
    generator = torch.Generator().manual_seed(seed)
    return pipe.generate_features(PROMPTS, list(lengths), steps, guidance, generator)


@pytest.fixture(scope="module")
def student(student_dir):
    return MotionLCM.from_pretrained(student_dir, device="cpu")


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    return MotionLCM.from_pretrained(teacher_dir, device="cpu")


@pytest.mark.parametrize("steps", [1, 4])
def test_default_fast_paths_match_eager(student, steps):
    eager = _features(student, FastPaths.eager(), steps=steps)
    fast = _features(student, FastPaths(), steps=steps)
    assert torch.allclose(fast, eager, atol=1e-5) and float(eager.abs().max()) > 0.1


def test_teacher_fast_paths_match_eager(teacher):
    eager = _features(teacher, FastPaths.eager(), steps=10)
    assert torch.allclose(_features(teacher, FastPaths(), steps=10), eager, atol=1e-5)


@pytest.mark.parametrize("which", ["student", "teacher"])
def test_official_loop_reproduces_the_pipeline(which, student, teacher):
    pipe = student if which == "student" else teacher
    steps = 2 if which == "student" else 10
    expected = _features(pipe, FastPaths.eager(), steps=steps)
    guidance = pipe.default_guidance(steps)
    features, joints = official_generate(pipe, PROMPTS, [40, 23], steps, guidance, torch.Generator().manual_seed(5))
    assert torch.allclose(features[0], expected[0], atol=1e-5)
    assert torch.allclose(
        features[1, :23], expected[1, :23], atol=1e-5
    )  # the official loop leaves the mean past a length
    assert joints.shape == (2, 40, 22, 3)


def test_frame_buckets_do_not_change_the_kept_frames(student):
    plain = _features(student, FastPaths(), lengths=(37, 11))
    bucketed = _features(student, FastPaths(frame_bucket=16), lengths=(37, 11))
    assert bucketed.shape == plain.shape == (2, 37, 263)
    assert torch.allclose(bucketed, plain, atol=1e-5)
    assert bucket_frames(37, 16, 196) == 48 and bucket_frames(190, 28, 196) == 196 and bucket_frames(37, 0, 196) == 37


def test_bf16_autocast_stays_close_to_fp32(student):
    fp32 = _features(student, FastPaths())
    bf16 = _features(student, FastPaths(autocast="bf16"))
    assert bf16.dtype == torch.float32
    error = float((bf16 - fp32).abs().max()) / float(fp32.abs().max())
    assert 0 < error < 0.05  # bf16 keeps 8 mantissa bits: a few parts in a thousand per op


def test_torch_compile_matches_eager(student):
    eager = _features(student, FastPaths.eager(), lengths=(40, 40))
    compiled = _features(student, FastPaths(compile=True, frame_bucket=20), lengths=(40, 40))
    assert torch.allclose(compiled, eager, atol=1e-4)
    student.set_fast_paths(FastPaths())


def test_prompt_cache_and_settings(student):
    student.set_fast_paths(FastPaths(text_cache=8))
    student.text_encoder(PROMPTS)
    student.text_encoder(PROMPTS)
    info = student.text_encoder.cache_info()
    assert info.maxsize == 8 and info.currsize == 2 and info.hits >= 2
    with pytest.raises(ValueError, match="cuda_graphs"):
        student.set_fast_paths(FastPaths(cuda_graphs=True))
    with pytest.raises(ValueError, match="autocast"):
        FastPaths(autocast="int8")
    assert FastPaths.eager().describe() == "eager"
    assert FastPaths().describe() == "attention=sdpa, lean_text, text_cache=4096"
    student.set_fast_paths(FastPaths())
