"""ONNX export, graph by graph: the decoder, the student's sampler and the text encoder at opset 17, with dynamic
batch (and frames), run in onnxruntime as in eager torch on the shipped model (the exported folder and the
backend: test_onnx_backend.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxscript", reason="pip install 'motionlcm[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="pip install 'motionlcm[onnx]'")
onnx = pytest.importorskip("onnx", reason="pip install 'motionlcm[onnx]'")


@pytest.fixture(scope="module")
def pipe():
    from motionlcm.pipeline import MotionLCM

    return MotionLCM.from_pretrained()


def opsets(path) -> list[int]:
    return [o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx")]


def test_the_decoder_graph_runs_in_onnxruntime_as_in_torch(pipe, tmp_path):
    from motionlcm.runtime.onnx_graphs import OPSET, decoder_graph, export_decoder

    path = export_decoder(pipe, tmp_path / "decoder.onnx")
    assert opsets(path) == [OPSET] == [17]
    assert [i.name for i in onnx.load(path).graph.input] == ["latents", "mask"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = decoder_graph(pipe)
    generator = torch.Generator().manual_seed(0)
    cfg = pipe.vae.config
    for batch, frames in ((1, 196), (3, 80), (2, 7)):
        latents = torch.randn(batch, cfg.latent_size, cfg.latent_dim, generator=generator)
        mask = torch.ones(batch, frames, dtype=torch.bool)
        mask[-1, frames // 2 :] = False  # a shorter motion in the batch
        with torch.no_grad():
            features, joints = graph(latents, mask)
        got = session.run(None, {"latents": latents.numpy(), "mask": mask.numpy()})
        assert got[0].shape == (batch, frames, 263) and got[1].shape == (batch, frames, 22, 3)
        assert np.abs(got[0] - features.numpy()).max() < 1e-4, (batch, frames)
        assert np.abs(got[1] - joints.numpy()).max() < 1e-4, (batch, frames)
        assert np.abs(got[0][-1, frames // 2 :]).max() == 0.0  # nothing past a motion's end


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_the_sampler_graph_is_the_pipelines_sampler_in_onnxruntime(pipe, tmp_path, steps):
    """The student's sampler unrolled for 1, 2 and 4 steps, guidance folded in, the noise between steps an
    input: eager it equals `pipe.sample_latents` fed the same noise; in onnxruntime (opset 17) it equals eager
    within 1e-4, with a different guidance scale per motion."""
    from motionlcm.runtime.onnx_graphs import SamplerGraph, export_sampler

    path = export_sampler(pipe, tmp_path / f"sampler_{steps}.onnx", steps)
    assert opsets(path) == [17]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    cfg = pipe.vae.config
    text = pipe.encode_text(["a person runs forward", "a person waves", "someone jumps"]).float()
    noise = torch.randn(3, cfg.latent_size, cfg.latent_dim, generator=torch.Generator().manual_seed(1))
    lengths = [196, 80, 40]
    mask = pipe.vae.latent_mask(lengths)
    drawn = torch.Generator().manual_seed(7)  # the noise lcm_sample draws between steps, in its order
    step_noise = torch.stack([torch.randn(noise.shape, generator=drawn) for _ in range(max(steps - 1, 1))])
    guidance = torch.tensor([3.0, 5.5, 4.0])
    with torch.no_grad():
        graph = SamplerGraph(pipe, steps)
        reference = pipe.sample_latents(text, noise, steps, 5.5, torch.Generator().manual_seed(7), lengths)
        assert (graph(text, noise, torch.full((3,), 5.5), mask, step_noise) - reference).abs().max() < 1e-4
        eager = graph(text, noise, guidance, mask, step_noise)  # a scale per motion
    feed = {"text": text.numpy(), "noise": noise.numpy(), "guidance": guidance.numpy(), "token_mask": mask.numpy(),
            "step_noise": step_noise.numpy()}  # fmt: skip
    assert np.abs(session.run(None, feed)[0] - eager.numpy()).max() < 1e-4


def test_the_text_encoder_graph_gives_the_encoders_embeddings_at_opset_17(pipe, tmp_path):
    """Token ids and mask (right-padded, any batch and length) in, the pooled row and the token rows out, as
    `TextEncoder` gives them (the unconditional "" and a prompt shorter than the token rows included)."""
    from motionlcm.runtime.onnx_graphs import export_text_encoder

    path = export_text_encoder(pipe, tmp_path / "text_encoder.onnx")
    assert opsets(path) == [17]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    encoder = pipe.text_encoder
    for texts in (["a man jumps", "a person walks in a circle and then sits down on the floor", ""], ["kick"]):
        batch = encoder.tokenizer(texts, padding=True, return_tensors="np")
        got = session.run(None, {"input_ids": batch["input_ids"].astype(np.int64),
                                 "attention_mask": batch["attention_mask"].astype(np.int64)})[0]  # fmt: skip
        assert got.shape == (len(texts), 1 + encoder.tokens, encoder.dim)
        assert np.abs(got - encoder(texts).numpy()).max() < 1e-4


def official_layout(version: str, encoder):
    """A student of the official V1 or V2 layout (transformer VAE, one token set per motion; V1: one token, no
    projections, ReLU on the text; V2: projections), made small, random weights, over the MiniLM encoder."""
    from pathlib import Path

    from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
    from motionlcm.models.folder import ModelFolder
    from motionlcm.models.vae import MotionVAE, VAEConfig
    from motionlcm.pipeline import MotionLCM

    torch.manual_seed(0)
    layout = {"v1": {"latent_size": 1, "latent_dim": 32, "force_pre_post_proj": False},
              "v2": {"latent_size": 4, "latent_dim": 8}}[version]  # fmt: skip
    shape = {"hidden_dim": 32, "ff_size": 64, "num_layers": 3, "num_heads": 2}
    vae = MotionVAE(VAEConfig(**{**layout, **shape})).eval()
    extra = {"text_act": "relu"} if version == "v1" else {}
    denoiser = LatentDenoiser(DenoiserConfig(**{**layout, **shape, **extra}, text_dim=encoder.dim, time_dim=32,
                                             time_cond_proj_dim=256)).eval()  # fmt: skip
    rng = np.random.default_rng(0)
    mean, std = rng.normal(0, 0.1, 263).astype(np.float32), rng.uniform(0.5, 1.5, 263).astype(np.float32)
    folder = ModelFolder(Path(f"<tiny {version}>"), "student", vae, denoiser, mean, std, encoder.reference(),
                         {"sampling": {"scheduler": version}})  # fmt: skip
    return MotionLCM(folder, encoder)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_official_layouts_export_and_run_in_onnxruntime_as_in_torch(pipe, tmp_path, version):
    """The transformer VAE's decoder and the V1 / V2 students' samplers (their own schedules: V1 50-step grid,
    V2 step map) at opset 17, onnxruntime equal to the pipeline within 1e-4."""
    from motionlcm.runtime.onnx_graphs import SamplerGraph, decoder_graph, export_decoder, export_sampler

    student = official_layout(version, pipe.text_encoder)
    cfg = student.vae.config
    decoder = ort.InferenceSession(str(export_decoder(student, tmp_path / "decoder.onnx")))
    text = student.encode_text(["a person walks", "someone waves both hands"]).float()
    noise = torch.randn(2, cfg.latent_size, cfg.latent_dim, generator=torch.Generator().manual_seed(2))
    for steps in (1, 2):
        path = export_sampler(student, tmp_path / f"sampler_{steps}.onnx", steps)
        assert opsets(path) == [17]
        step_noise = torch.randn(max(steps - 1, 1), *noise.shape, generator=torch.Generator().manual_seed(9))
        mask = torch.ones(2, cfg.latent_size, dtype=torch.bool)
        with torch.no_grad():
            reference = student.sample_latents(text, noise, steps, 7.5, torch.Generator().manual_seed(9))
            eager = SamplerGraph(student, steps)(text, noise, torch.full((2,), 7.5), mask, step_noise)
        assert (eager - reference).abs().max() < 1e-5
        feed = {"text": text.numpy(), "noise": noise.numpy(), "guidance": np.full(2, 7.5, np.float32),
                "token_mask": mask.numpy(), "step_noise": step_noise.numpy()}  # fmt: skip
        latents = ort.InferenceSession(str(path)).run(None, feed)[0]
        assert np.abs(latents - eager.numpy()).max() < 1e-4
    frames = torch.arange(150)[None, :] < torch.tensor([150, 61])[:, None]
    with torch.no_grad():
        features, joints = decoder_graph(student)(eager, frames)
    got = decoder.run(None, {"latents": eager.numpy(), "mask": frames.numpy()})
    assert opsets(tmp_path / "decoder.onnx") == [17]
    assert np.abs(got[0] - features.numpy()).max() < 1e-4
    assert np.abs(got[1] - joints.numpy()).max() < 1e-3  # untrained root velocities, integrated over 150 frames
    assert np.abs(got[0][1, 61:]).max() == 0.0
