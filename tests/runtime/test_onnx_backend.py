"""`motionlcm export onnx` and the onnxruntime backend (issue 18) on the shipped model: the exported folder
(manifest, checksums, tokenizer, README), the backend giving the torch pipeline's motions for a seed, its
fallbacks and refusals, the CLI, and the graphs in onnxruntime-web under Node (tests/js)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxscript", reason="pip install 'motionlcm[onnx]'")
pytest.importorskip("onnxruntime", reason="pip install 'motionlcm[onnx]'")
onnx = pytest.importorskip("onnx", reason="pip install 'motionlcm[onnx]'")

JS = Path(__file__).resolve().parents[1] / "js"
PROMPTS = ["a person walks forward", "someone waves with the right hand", "a man runs in a circle"]


@pytest.fixture(scope="module")
def pipe():
    from motionlcm.pipeline import MotionLCM

    return MotionLCM.from_pretrained()


@pytest.fixture(scope="module")
def exported(pipe, tmp_path_factory):
    from motionlcm.runtime.onnx_graphs import export_onnx

    return export_onnx(pipe, tmp_path_factory.mktemp("onnx") / "shipped")


@pytest.fixture(scope="module")
def ort_pipe(exported):
    from motionlcm.pipeline import MotionLCM
    from motionlcm.runtime.fast_paths import FastPaths

    threads = torch.get_num_threads()
    pipe = MotionLCM.from_pretrained(backend="onnxruntime", onnx_dir=exported)
    assert torch.get_num_threads() == 1  # torch steps aside while the backend is on
    yield pipe
    pipe.set_fast_paths(FastPaths())  # gives torch its threads back
    assert torch.get_num_threads() == threads


def test_the_exported_folder_describes_itself(pipe, exported):
    from transformers import AutoTokenizer

    from motionlcm.runtime.onnx_graphs import model_fingerprint, sha256_file

    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["opset"] == 17 and manifest["precision"] == "fp32"
    assert manifest["model"]["fingerprint"] == model_fingerprint(pipe)
    assert set(manifest["graphs"]) == {"text_encoder", "sampler_1", "sampler_2", "sampler_4", "decoder"}
    for graph in manifest["graphs"].values():
        path = exported / graph["file"]
        assert graph["sha256"] == sha256_file(path)
        assert [o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")] == [17]
    decoder = manifest["graphs"]["decoder"]
    assert [i["name"] for i in decoder["inputs"]] == ["latents", "mask"]
    assert decoder["inputs"][1]["dtype"] == "bool" and isinstance(decoder["inputs"][1]["shape"][1], str)  # dynamic
    assert decoder["outputs"][1]["shape"][2:] == [22, 3]
    sampler = manifest["graphs"]["sampler_2"]
    assert [i["name"] for i in sampler["inputs"]] == ["text", "noise", "guidance", "token_mask", "step_noise"]
    assert manifest["sampler"]["guidance"]["default"]["1"] == pipe.default_guidance(1)
    assert np.allclose(manifest["mean"], pipe.mean.numpy()) and np.allclose(manifest["std"], pipe.std.numpy())
    # engines must read prompts as the model does: the shipped folder's rewrites, in order
    rewrites = manifest["text_encoder"]["prompt_rewrites"]
    assert rewrites and rewrites == pipe.prompt_rewrites.to_list()
    # the token-mask rule, as the manifest states it, is the VAE's
    rule = manifest["latents"]["token_mask"]
    for frames in (2, 8, 9, 100, 196):
        stated = np.arange(rule["tokens"]) < -(-frames // rule["segment_frames"])
        assert (stated == pipe.vae.latent_mask([frames])[0].numpy()).all()
    # the tokenizer files give the ids the model's encoder uses
    tokenizer = AutoTokenizer.from_pretrained(str(exported / "tokenizer"))
    for text in PROMPTS + ["", "A Person JUMPS!"]:
        assert tokenizer(text)["input_ids"] == pipe.text_encoder.tokenizer(text)["input_ids"]
    readme = (exported / "README.md").read_text()
    assert all(name in readme for name in ("text_encoder.onnx", "sampler_N.onnx", "decoder.onnx", "token_mask"))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_the_backend_gives_the_torch_pipelines_motions(pipe, ort_pipe, steps):
    """Same seed, same motions (features within 1e-4, joints after conforming and foot locking within 1e-4),
    a batch of different lengths; the settings record the backend."""
    seconds = [4.0, 2.5, 6.0]
    ours = ort_pipe(PROMPTS, seconds=seconds, steps=steps, seed=11)
    theirs = pipe(PROMPTS, seconds=seconds, steps=steps, seed=11)
    for a, b in zip(ours, theirs, strict=True):
        assert a.features.shape == b.features.shape
        assert np.abs(a.features - b.features).max() < 1e-4
        assert np.abs(a.joints - b.joints).max() < 1e-4
    assert ours[0].settings["backend"]["name"] == "onnxruntime" and "backend" not in theirs[0].settings
    assert ours[2].settings["prompt_read_as"] == theirs[2].settings["prompt_read_as"] == "a person runs in a circle"
    other = ort_pipe(PROMPTS[:1], seconds=4.0, steps=steps, seed=12)[0]
    assert np.abs(other.joints - ours[0].joints).max() > 0.01  # a seed is its noise


def test_the_backend_really_runs_the_graphs(ort_pipe, monkeypatch):
    """Break the torch modules: the backend's text-only generation must not notice (it runs the graphs)."""
    calls = []
    monkeypatch.setattr(ort_pipe.vae, "decode_masked", lambda *a, **k: calls.append("decode"))
    monkeypatch.setattr(ort_pipe, "denoiser_fn", lambda *a, **k: calls.append("denoise"))
    ort_pipe.text_encoder.clear_cache()
    motion = ort_pipe("a person jumps up and down", seconds=3.0, seed=0)[0]
    assert not calls and np.isfinite(motion.joints).all() and motion.joints.shape == (60, 22, 3)


def test_what_the_graphs_do_not_cover_runs_in_torch(pipe, ort_pipe, monkeypatch):
    """A step count without a graph and control (ControlNet) fall back to torch, fed the graphs' text embedding."""
    monkeypatch.delitem(ort_pipe.onnx.samplers, 4)  # as if exported with --steps 1,2
    a = ort_pipe(PROMPTS[0], seconds=3.0, steps=4, seed=5)[0]
    b = pipe(PROMPTS[0], seconds=3.0, steps=4, seed=5)[0]
    assert np.abs(a.features - b.features).max() < 1e-4
    hints = np.full((60, 22, 3), np.nan, np.float32)
    hints[:, 0, 0] = 0.0
    hints[:, 0, 2] = np.linspace(0.0, 2.0, 60)  # the pelvis along +z, height free
    hints[:, 0, 1] = np.nan
    a = ort_pipe(PROMPTS[0], control=hints, seed=5)[0]
    b = pipe(PROMPTS[0], control=hints, seed=5)[0]
    assert np.abs(a.joints - b.joints).max() < 1e-4
    assert a.settings["control"]["avg_err_m"] < 0.05


def test_a_foreign_or_changed_folder_is_refused(pipe, exported, tmp_path):
    from motionlcm.pipeline import MotionLCM

    copy = tmp_path / "copy"
    copy.mkdir()
    for path in exported.iterdir():
        (copy / path.name).symlink_to(path)
    (copy / "manifest.json").unlink()
    manifest = json.loads((exported / "manifest.json").read_text())
    manifest["model"]["fingerprint"] = "0" * 16
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="exported from other weights"):
        MotionLCM.from_pretrained(backend="onnxruntime", onnx_dir=copy)
    (copy / "decoder.onnx").unlink()
    data = (exported / "decoder.onnx").read_bytes()
    (copy / "decoder.onnx").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ValueError, match="decoder.onnx: checksum differs"):
        MotionLCM.from_pretrained(backend="onnxruntime", onnx_dir=copy)
    with pytest.raises(ValueError, match="no manifest.json"):
        MotionLCM.from_pretrained(backend="onnxruntime", onnx_dir=tmp_path)
    with pytest.raises(ValueError, match="runs students"):
        MotionLCM.from_pretrained("bandai-namco-teacher", backend="onnxruntime", onnx_dir=exported)


def test_the_cache_is_keyed_by_the_weights(pipe, exported, tmp_path, monkeypatch):
    """Graphs in the cache under the model's fingerprint are used without exporting; other weights miss."""
    from motionlcm.runtime import onnx_backend
    from motionlcm.runtime.onnx_graphs import model_fingerprint

    monkeypatch.setenv("MOTIONLCM_CACHE", str(tmp_path))
    shutil.copytree(exported, tmp_path / "onnx" / f"{model_fingerprint(pipe)}-fp32", symlinks=True)
    exports = []
    monkeypatch.setattr(onnx_backend, "export_onnx", lambda *a, **k: exports.append(a) or 1 / 0)
    assert onnx_backend.open_graphs(pipe).folder.parent == tmp_path / "onnx" and not exports
    weight = next(pipe.denoiser.parameters())
    kept = weight.detach().clone()
    with torch.no_grad():
        weight.add_(1.0)  # other weights: another fingerprint
    try:
        with pytest.raises(ZeroDivisionError):
            onnx_backend.open_graphs(pipe)
    finally:
        with torch.no_grad():
            weight.copy_(kept)
    assert len(exports) == 1


def test_without_onnxruntime_the_option_says_how_to_install(pipe, monkeypatch):
    from motionlcm.runtime.fast_paths import FastPaths

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match=r"pip install 'motionlcm\[onnx\]'"):
        pipe.set_fast_paths(FastPaths(backend="onnxruntime"))
    pipe.set_fast_paths(FastPaths())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "motionlcm.cli", *args], capture_output=True, text=True, timeout=600)


def test_the_cli_generates_with_the_backend_and_refuses_to_overwrite(exported, tmp_path):
    args = ["generate", "a person walks forward", "--seconds", "3", "--seed", "4", "--format", "npy,json"]
    ort_run = run_cli(*args, "--backend", "onnxruntime", "--onnx-dir", str(exported), "-o", str(tmp_path / "ort"))
    assert ort_run.returncode == 0, ort_run.stderr
    torch_run = run_cli(*args, "-o", str(tmp_path / "torch"))
    assert torch_run.returncode == 0, torch_run.stderr
    for name in ("000_a_person_walks_forward.npy", "000_a_person_walks_forward_features.npy"):
        assert np.abs(np.load(tmp_path / "ort" / name) - np.load(tmp_path / "torch" / name)).max() < 1e-4
    record = json.loads(next((tmp_path / "ort").glob("*.json")).read_text())
    assert record["model"]["backend"]["name"] == "onnxruntime" and "--backend onnxruntime" in record["command"]
    bad = run_cli(*args, "--onnx-dir", str(exported), "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--onnx-dir: only with --backend onnxruntime" in bad.stderr
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    refused = run_cli("export", "onnx", "-o", str(tmp_path / "busy"))
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me"
    assert run_cli("export", "onnx", "--steps", "0", "-o", str(tmp_path / "n")).returncode == 2
    assert not (tmp_path / "n").exists()


def test_the_graphs_run_in_onnxruntime_web_under_node(pipe, exported, tmp_path):
    """Text to joints in onnxruntime-web (WebAssembly) equals the torch pipeline's decoded joints within 1e-3."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH")
    if not (JS / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `(cd tests/js && npm ci)`")
    texts, frames, steps = ["a person walks forward", "a person waves"], 120, 2
    batch = pipe.text_encoder.tokenizer(texts, padding=True, return_tensors="np")
    generator = torch.Generator().manual_seed(3)
    cfg = pipe.vae.config
    noise = torch.randn(2, cfg.latent_size, cfg.latent_dim, generator=generator)
    step_noise = torch.randn(1, *noise.shape, generator=generator)
    token_mask = pipe.vae.latent_mask([frames, frames])
    job = {
        "dir": str(exported), "steps": steps, "ids": batch["input_ids"].tolist(),
        "attention_mask": batch["attention_mask"].tolist(), "noise": noise.flatten().tolist(),
        "guidance": [5.5, 4.0], "token_mask": token_mask.tolist(), "step_noise": step_noise.flatten().tolist(),
        "frames": frames,
    }  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = subprocess.run(["node", str(JS / "onnx_generate.mjs"), str(tmp_path / "job.json"), str(tmp_path / "out.json")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    from motionlcm.data.features import features_to_joints
    from motionlcm.runtime.onnx_graphs import SamplerGraph

    with torch.no_grad():
        text = pipe.encode_text(texts)
        latents = SamplerGraph(pipe, steps)(text, noise, torch.tensor([5.5, 4.0]), token_mask, step_noise)
        features = pipe.decode(latents, [frames, frames]) * pipe.std + pipe.mean
        joints = features_to_joints(features)
    assert out["shapes"]["joints"] == [2, frames, 22, 3]
    assert np.abs(np.array(out["text"]) - text.numpy().ravel()).max() < 1e-4
    assert np.abs(np.array(out["joints"]) - joints.numpy().ravel()).max() < 1e-3


def test_the_speed_benchmark_times_the_backend_beside_torch(pipe, exported, tmp_path, monkeypatch):
    """`motionlcm bench --backend onnxruntime`: its rows are the student's, timed per stage, with the feature
    difference from the first row; torch's thread count is back afterwards."""
    from motionlcm.bench.speed import SpeedSettings, inference_variants, time_variants
    from motionlcm.runtime.fast_paths import FastPaths
    from motionlcm.runtime.onnx_graphs import model_fingerprint

    monkeypatch.setenv("MOTIONLCM_CACHE", str(tmp_path))
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / f"{model_fingerprint(pipe)}-fp32").symlink_to(exported)
    rows = inference_variants(torch.device("cpu"), SpeedSettings(backends=("onnxruntime",), int8=False))
    assert [r[0] for r in rows if r[2].backend == "onnxruntime"] == ["onnxruntime"]
    chosen = [r for r in rows if r[0] in ("+ lean text encoder (default)", "onnxruntime")]
    threads = torch.get_num_threads()
    default, ours = time_variants(pipe, chosen, batch=2, frames=40, steps=1, guidance=3.0, repeats=1, warmup=0)
    assert torch.get_num_threads() == threads
    assert set(ours["stages_ms"]) == {"text", "denoise", "decode", "joints"} and ours["aits_ms"] > 0
    assert (ours["features"] - default["features"]).abs().max() < 1e-4
    # other graphs opened while the backend is on (torch then runs on one thread) still get torch's count
    pipe.set_fast_paths(FastPaths(backend="onnxruntime"))
    pipe.set_fast_paths(FastPaths(backend="onnxruntime", onnx_dir=str(exported)))
    assert torch.get_num_threads() == 1
    for session in (pipe.onnx.text, pipe.onnx.decoder, *pipe.onnx.samplers.values()):
        assert session.get_session_options().intra_op_num_threads == threads
    pipe.set_fast_paths(FastPaths())
    assert torch.get_num_threads() == threads
