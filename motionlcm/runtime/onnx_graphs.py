"""ONNX export of a model folder's graphs, for engines (Unity Sentis, Unreal NNE) and onnxruntime.

Issue 18 in progress: so far the text encoder, the decoder and the student's sampler graphs (docs/speed.md,
"ONNX export"). `motionlcm export onnx`, a manifest and the onnxruntime backend follow.

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


class TextEncoderGraph(nn.Module):
    """The text encoder (sentence-transformers kind): token ids and attention mask (B, T) in, the pooled vector
    and the first `tokens` token rows (B, 1 + tokens, D) out, as `TextEncoder` gives them. Ids come from the
    encoder's tokenizer with right padding (its default), so the first real tokens are the first positions;
    the Hugging Face backbone runs (the lean BERT forward branches on the mask's values, which export refuses)."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        if encoder.kind != "sentence-transformers":
            raise ValueError(f"ONNX export of the text encoder: {encoder.kind!r} encoders are not supported yet")
        self.backbone = encoder.model["backbone"]
        self.head = encoder.model["head"]
        self.pooling = encoder.pooling
        self.tokens = encoder.tokens

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        from motionlcm.models.text_encoder import pool_tokens

        hidden = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = self.head(pool_tokens(hidden, mask, self.pooling)).float().unsqueeze(1)
        if not self.tokens:
            return pooled
        count = self.tokens  # prompts shorter than `count` tokens get zero rows (concatenate, then cut)
        states = torch.cat([hidden.float(), hidden.new_zeros(hidden.shape[0], count, hidden.shape[2]).float()], 1)
        valid = torch.cat([mask, mask.new_zeros(mask.shape[0], count)], 1)[:, :count, None] != 0
        rows = states[:, :count] / states[:, :count].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return torch.cat([pooled, rows * valid], dim=1)


def _to_opset(path: Path, opset: int) -> None:
    """Bring an exported graph (torch writes opset 18) down to `opset`, in place: constants become
    initializers (the converter reads reduce axes only from those), then onnx's version converter, then the
    attribute it leaves on non-sum reductions that opset 17 does not know (`noop_with_empty_axes`)."""
    import onnx
    from onnx import numpy_helper, version_converter

    model = onnx.load(str(path))
    if [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]:
        return
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            model.graph.initializer.append(
                numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), node.output[0])
            )
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model = version_converter.convert_version(model, opset)
    for node in model.graph.node:
        if node.op_type.startswith("Reduce") and node.op_type != "ReduceSum":
            for attribute in [a for a in node.attribute if a.name == "noop_with_empty_axes"]:
                node.attribute.remove(attribute)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_text_encoder(pipe: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Write the text-encoder graph of `pipe` to `path` (.onnx): input_ids and attention_mask (int64, right
    padded, dynamic batch and length) in, text (B, 1 + tokens, D) out."""
    _require_onnx()
    from torch.export import Dim

    encoder = pipe.text_encoder
    if encoder is None:
        raise ValueError(f"{pipe.folder.path}: no text encoder to export")
    graph = TextEncoderGraph(encoder).eval()
    batch = encoder.tokenizer(["a person walks forward", "someone waves with the right hand"], padding=True,
                              return_tensors="pt")  # fmt: skip
    inputs = (batch["input_ids"], batch["attention_mask"])
    size, length = Dim("batch", min=1, max=MAX_BATCH), Dim("length", min=2, max=512)
    out = Path(path)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staged = Path(tmp) / out.name
        torch.onnx.export(graph, inputs, str(staged), input_names=["input_ids", "attention_mask"],
                          output_names=["text"], opset_version=opset, dynamo=True,
                          dynamic_shapes={"ids": {0: size, 1: length}, "mask": {0: size, 1: length}},
                          external_data=False)  # fmt: skip
        _to_opset(staged, opset)
        staged.replace(out)
    return out
