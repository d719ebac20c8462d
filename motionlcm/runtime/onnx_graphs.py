"""ONNX export of a model folder's graphs, for engines (Unity Sentis, Unreal NNE) and onnxruntime.

Issue 18 in progress: so far the decoder graph and the student's sampler graphs (docs/speed.md, "ONNX
export"). The text encoder follows, then `motionlcm export onnx`, a manifest and the onnxruntime backend.

The decoder graph: latents (B, L, D) and a frame mask (B, T) bool in; de-normalised 263-d features
(B, T, 263) and joints (B, T, 22, 3) in metres (`features_to_joints`) out; batch and frames dynamic.
Exported with torch's `torch.export`-based exporter at opset 17, the highest that Unity Sentis and Unreal
NNE load (the exporter itself writes 18 and converts; `data.quaternion.cross` keeps the graph convertible).
Needs `pip install motionlcm[onnx]`.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from motionlcm.data.features import features_to_joints

OPSET = 17  # Unity Sentis and Unreal NNE load opset <= 17 (issue 18)
MAX_BATCH = 1024


class DecoderGraph(nn.Module):
    """The VAE decoder, de-normalisation and features -> joints, as one graph."""

    def __init__(self, vae: nn.Module, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.vae = vae
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, latents: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        features = self.vae.decode_masked(latents, mask) * self.std + self.mean
        features = features * mask[:, :, None]
        return features, features_to_joints(features)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ValueError("ONNX export needs the onnx extra: pip install 'motionlcm[onnx]'") from None


def decoder_graph(pipe: Any) -> DecoderGraph:
    """The decoder graph of a loaded `MotionLCM` (float32, eval mode, on the CPU)."""
    if pipe.mean is None:
        raise ValueError(f"{pipe.folder.path}: the model folder has no Mean.npy/Std.npy to de-normalise with")
    vae = pipe.vae.float().cpu().eval()
    return DecoderGraph(vae, pipe.mean.cpu(), pipe.std.cpu()).eval()


def export_decoder(pipe: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Write the decoder graph of `pipe` to `path` (.onnx), written beside it and renamed into place."""
    _require_onnx()
    from torch.export import Dim

    graph = decoder_graph(pipe)
    cfg = pipe.vae.config
    latents = torch.zeros(2, cfg.latent_size, cfg.latent_dim)
    mask = torch.ones(2, cfg.max_len - 4, dtype=torch.bool)
    batch, frames = Dim("batch", min=1, max=MAX_BATCH), Dim("frames", min=2, max=cfg.max_len)
    out = Path(path)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staged = Path(tmp) / out.name
        torch.onnx.export(
            graph,
            (latents, mask),
            str(staged),
            input_names=["latents", "mask"],
            output_names=["features", "joints"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={"latents": {0: batch}, "mask": {0: batch, 1: frames}},
            external_data=False,
            verbose=False,
        )
        staged.replace(out)
    return out


class SamplerGraph(nn.Module):
    """The student's `steps`-step consistency sampler (`diffusion.lcm_sampling.lcm_sample`) unrolled, guidance
    folded in through its embedding: text embedding (B, S, C), initial noise (B, L, D), guidance scale (B,),
    token mask (B, L) bool (the tokens holding frames, `vae.latent_mask`) and the noise re-injected between
    steps (steps - 1, B, L, D; ignored for one step) in, latents (B, L, D) out."""

    def __init__(self, pipe: Any, steps: int) -> None:
        super().__init__()
        if pipe.kind != "student":
            raise ValueError(f"{pipe.folder.path}: the sampler graph is the student's (this folder is a {pipe.kind})")
        self.denoiser = pipe.denoiser.float().cpu().eval()
        self.steps = int(steps)
        self.embedding_dim = pipe.denoiser.config.time_cond_proj_dim
        # the schedule is fixed outside the graph: its timesteps are constants, not traced values
        self.schedule = copy.deepcopy(pipe.scheduler)
        self.schedule.set_timesteps(self.steps, device="cpu")
        self.timesteps = [int(t) for t in self.schedule.timesteps]

    def forward(self, text: Tensor, noise: Tensor, guidance: Tensor, token_mask: Tensor, step_noise: Tensor) -> Tensor:
        from motionlcm.diffusion.guidance import guidance_scale_embedding

        scheduler = self.schedule
        scheduler.restart()
        guidance_emb = guidance_scale_embedding(guidance - 1.0, self.embedding_dim).to(noise.dtype)  # w = s - 1
        latents = noise * scheduler.init_noise_sigma
        for i, t in enumerate(self.timesteps):
            timestep = torch.full(noise.shape[:1], t, dtype=torch.long)
            eps = self.denoiser(latents, timestep, text, guidance_emb=guidance_emb, latent_mask=token_mask)
            fresh = step_noise[i] if i < self.steps - 1 else None
            latents = scheduler.step(eps, t, latents, noise=fresh).prev_sample
        return latents


def export_sampler(pipe: Any, path: str | Path, steps: int, opset: int = OPSET) -> Path:
    """Write the student's `steps`-step sampler graph of `pipe` to `path` (.onnx)."""
    _require_onnx()
    from torch.export import Dim

    graph = SamplerGraph(pipe, steps)
    cfg = pipe.vae.config
    text = pipe.encode_text(["a person walks", "a person waves"]).float().cpu()
    noise = torch.zeros(2, cfg.latent_size, cfg.latent_dim)
    inputs = (text, noise, torch.full((2,), 3.0), torch.ones(2, cfg.latent_size, dtype=torch.bool),
              torch.zeros(max(steps - 1, 1), 2, cfg.latent_size, cfg.latent_dim))  # fmt: skip
    batch = Dim("batch", min=1, max=MAX_BATCH)
    shapes = {"text": {0: batch}, "noise": {0: batch}, "guidance": {0: batch}, "token_mask": {0: batch},
              "step_noise": {1: batch}}  # fmt: skip
    out = Path(path)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staged = Path(tmp) / out.name
        torch.onnx.export(graph, inputs, str(staged), input_names=list(shapes), output_names=["latents"],
                          opset_version=opset, dynamo=True, dynamic_shapes=shapes, external_data=False)  # fmt: skip
        staged.replace(out)
    return out
