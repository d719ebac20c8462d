"""AITS (eval/timing.py): the timed path generates what the pipeline generates, the stages are bounded by the
clock marks the paper's definition names, the prompt cache is emptied per sentence, and bad calls fail."""

from __future__ import annotations

import itertools

import pytest
import torch

from motionlcm.eval import timing
from motionlcm.pipeline import MotionLCM


@pytest.fixture(scope="module")
def pipe(student_dir):
    return MotionLCM.from_pretrained(student_dir, device="cpu")


def test_the_timed_path_generates_the_pipelines_motion(pipe):
    texts, lengths = ["a person walks forward."], [24]
    _, timed = timing.time_stages(pipe, texts, lengths, 1, 8.0, torch.Generator().manual_seed(3))
    plain = pipe.generate_features(texts, lengths, 1, 8.0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(timed, plain, rtol=0, atol=1e-6)


def test_the_prompt_cache_is_emptied_before_each_timed_sentence(pipe):
    generator = torch.Generator().manual_seed(0)
    pipe.text_encoder.clear_cache()
    calls = pipe.text_encoder.cache_info().model_calls
    for _ in range(2):
        timing.time_stages(pipe, ["a person waves."], [20], 1, 8.0, generator)
    assert pipe.text_encoder.cache_info().model_calls - calls == 2  # encoded again: the cache was cleared
    calls = pipe.text_encoder.cache_info().model_calls
    timing.time_stages(pipe, ["a person waves."], [20], 1, 8.0, generator, clear_cache=False)
    assert pipe.text_encoder.cache_info().model_calls == calls  # a warm cache would hide text encoding


def test_aits_sums_text_denoise_and_decode_and_skips_the_warm_up(pipe, monkeypatch):
    ticks = itertools.count()
    # every clock read advances 1 s: each stage then lasts exactly 1 s, whatever the machine does
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(ticks)))
    stages_seen = []
    real = timing.time_stages

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        stages_seen.append(result[0])
        return result

    monkeypatch.setattr(timing, "time_stages", spy)
    report = timing.measure_aits(pipe, ["walk.", "run."], [20, 30], warmup=3)
    assert len(stages_seen) == 5 and report["sentences"] == 2  # 3 warm-up runs are not averaged
    assert report["stages"] == {"text": 1.0, "denoise": 1.0, "decode": 1.0, "joints": 1.0}
    assert report["aits_s"] == 3.0  # joints are timed but, as in the paper, not part of AITS
    assert (report["steps"], report["guidance"]) == pipe.resolve_sampling(None, None)


def test_inputs_are_spread_over_the_split_and_bad_calls_fail(pipe, bn_dataset_dir):
    prompts, lengths = timing.aits_inputs(bn_dataset_dir, "train", 3, min_length=20)
    assert len(prompts) == len(lengths) == 3 and all(isinstance(p, str) and p for p in prompts)
    assert all(n >= 20 for n in lengths) and len(set(prompts)) > 1
    with pytest.raises(ValueError, match="one length per prompt"):
        timing.measure_aits(pipe, ["walk."], [20, 30])
    assert timing.device_name(torch.device("cpu")).startswith("cpu, ")
