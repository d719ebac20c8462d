"""ONNX export of a model folder's graphs, for engines (Unity Sentis, Unreal NNE) and onnxruntime.

`export_onnx` writes a model folder's graphs as one folder (`motionlcm export onnx`): the text encoder with its
tokenizer files, the student's sampler for 1, 2 and 4 steps, the decoder, a `manifest.json` (opset, inputs and
outputs with their shapes and dynamic axes, input ranges, Mean/Std, fps, the token-mask rule, sha256 checksums)
and a README for engine users (docs/onnx.md). `runtime/onnx_backend.py` runs such a folder in onnxruntime.

The decoder graph: latents (B, L, D) and a frame mask (B, T) bool in; de-normalised 263-d features
(B, T, 263) and joints (B, T, 22, 3) in metres (`features_to_joints`) out; batch and frames dynamic.
Exported with torch's `torch.export`-based exporter at opset 17, the highest that Unity Sentis and Unreal
NNE load (the exporter itself writes 18 and converts; `data.quaternion.cross` keeps the graph convertible).
Needs `pip install motionlcm[onnx]`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from motionlcm.data.features import features_to_joints

OPSET = 17  # Unity Sentis and Unreal NNE load opset <= 17 (issue 18)
MAX_BATCH = 1024
FORMAT = "motionlcm-onnx"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "int8")
SAMPLER_STEPS = (1, 2, 4)


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


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the exporter's progress prints, warnings and the tracebacks its opset-17 fallback logs (the
    result is checked instead: opset, onnx.checker, and onnxruntime equal to eager in the tests)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL + 1)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


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
        with quiet_export():
            torch.onnx.export(graph, (latents, mask), str(staged), input_names=["latents", "mask"],
                              output_names=["features", "joints"], opset_version=opset, dynamo=True,
                              dynamic_shapes={"latents": {0: batch}, "mask": {0: batch, 1: frames}},
                              external_data=False, verbose=False)  # fmt: skip
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

    graph = SamplerGraph(pipe, steps).eval()
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
        with quiet_export():
            torch.onnx.export(graph, inputs, str(staged), input_names=list(shapes), output_names=["latents"],
                              opset_version=opset, dynamo=True, dynamic_shapes=shapes, external_data=False,
                              verbose=False)  # fmt: skip
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
        with quiet_export():
            torch.onnx.export(graph, inputs, str(staged), input_names=["input_ids", "attention_mask"],
                              output_names=["text"], opset_version=opset, dynamo=True,
                              dynamic_shapes={"ids": {0: size, 1: length}, "mask": {0: size, 1: length}},
                              external_data=False, verbose=False)  # fmt: skip
        _to_opset(staged, opset)
        staged.replace(out)
    return out


# ----------------------------------------------------------------------------------------------------
# the exported folder


def quantize_int8(path: Path) -> None:
    """Dynamic int8 quantisation of a graph's matrix products, in place (onnxruntime.quantization: int8
    weights, activations quantised per call; `MatMulInteger`/`DynamicQuantizeLinear`, both opset <= 17)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staged = path.with_name(f".{path.stem}.int8.onnx")
    quantize_dynamic(str(path), str(staged), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    staged.replace(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(pipe: Any) -> str:
    """sha256 over what the exported graphs compute from: the VAE's and denoiser's weights, Mean/Std and the text
    encoder's reference (16 hex digits); a folder exported from other weights has another fingerprint."""
    digest = hashlib.sha256()
    for module in (pipe.vae, pipe.denoiser):
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    for stat in (pipe.mean, pipe.std):
        digest.update(b"-" if stat is None else stat.float().cpu().numpy().tobytes())
    reference = pipe.text_encoder.reference() if pipe.text_encoder is not None else None
    digest.update(json.dumps(reference, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _io(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs of a graph as written: name, element type and shape (named axes are dynamic)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def one(value: Any) -> dict[str, Any]:
        kind = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in kind.shape.dim]
        return {"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type).name, "shape": dims}

    return {"inputs": [one(v) for v in graph.input], "outputs": [one(v) for v in graph.output]}


def token_mask_rule(pipe: Any) -> dict[str, Any]:
    """How a caller builds the sampler's token mask for a motion of n frames: segment latents ("segments",
    token i is real when i < ceil(n / k)) or one set of tokens for the whole motion ("all")."""
    frames = getattr(pipe.vae.config, "latent_frames", None)
    if pipe.vae.latent_mask([1]) is None:
        return {"rule": "all", "tokens": pipe.vae.config.latent_size}
    return {"rule": "segments", "segment_frames": int(frames), "tokens": pipe.vae.config.latent_size}


def _manifest(pipe: Any, out: Path, steps: Sequence[int], precision: str, files: dict[str, str]) -> dict[str, Any]:
    from motionlcm.data.humanml3d import FPS

    cfg, encoder = pipe.vae.config, pipe.text_encoder
    guidance = {str(n): float(pipe.default_guidance(n)) for n in steps}
    graphs = {
        name: {"file": file, "sha256": sha256_file(out / file), **_io(out / file)} for name, file in files.items()
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "opset": OPSET,
        "precision": precision,
        "model": {"path": str(pipe.folder.path), "kind": pipe.kind, "fingerprint": model_fingerprint(pipe)},
        "fps": FPS,
        "frames": {"min": 2, "max": int(cfg.max_len)},
        "batch": {"min": 1, "max": MAX_BATCH},
        "latents": {"tokens": int(cfg.latent_size), "dim": int(cfg.latent_dim), "token_mask": token_mask_rule(pipe)},
        "text_encoder": {
            "graph": "text_encoder",
            "tokenizer": "tokenizer",
            "lowercase": bool(encoder.lowercase),
            "max_length": int(encoder.max_length),
            "padding": "right",
            "rows": 1 + int(encoder.tokens),
            "dim": int(encoder.dim),
            # applied to the prompt before tokenising (`MotionLCM.read_prompt`), in order; [] for most models
            "prompt_rewrites": pipe.prompt_rewrites.to_list(),
        },
        "sampler": {
            "graphs": {str(n): f"sampler_{n}" for n in steps},
            "guidance": {"default": guidance, "range": list(pipe.distilled_scales or (1.0, 20.0))},
            "step_noise": "standard normal, (steps - 1, batch, tokens, dim); ignored (shape (1, ...)) for 1 step",
            "initial_noise": "standard normal, (batch, tokens, dim)",
        },
        "decoder": {"graph": "decoder", "units": "features de-normalised; joints in metres, y up, 22 SMPL joints"},
        "mean": [float(v) for v in pipe.mean.cpu()],
        "std": [float(v) for v in pipe.std.cpu()],
        "graphs": graphs,
    }


def check_onnx_output(out_dir: str | Path, force: bool) -> Path:
    """The output folder of `export_onnx`: new, empty, or (with `force`) a folder to replace; never a file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"{out}: exists and is not empty; pass --force to replace it")
    return out


def export_onnx(
    pipe: Any,
    out_dir: str | Path,
    steps: Sequence[int] = SAMPLER_STEPS,
    precision: str = "fp32",
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write `pipe`'s graphs (text encoder, sampler for each of `steps`, decoder), the tokenizer, `manifest.json`
    and README.md into `out_dir`, built in a temporary sibling and renamed into place (an existing folder only
    with `force`, replaced as a whole once the new one is complete)."""
    _require_onnx()
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    steps = sorted({int(n) for n in steps})
    if not steps or any(n < 1 or n > 16 for n in steps):
        raise ValueError(f"--steps: step counts must lie in 1..16, got {steps}")
    if pipe.text_encoder is None or pipe.text_encoder.kind != "sentence-transformers":
        raise ValueError(f"{pipe.folder.path}: ONNX export needs a sentence-transformers text encoder (MiniLM kind)")
    out = check_onnx_output(out_dir, force)
    say = progress or (lambda _msg: None)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        files = {"text_encoder": "text_encoder.onnx"}
        say("text encoder")
        export_text_encoder(pipe, staged / files["text_encoder"])
        pipe.text_encoder.tokenizer.save_pretrained(str(staged / "tokenizer"))
        for n in steps:
            say(f"sampler, {n} step(s)")
            files[f"sampler_{n}"] = f"sampler_{n}.onnx"
            export_sampler(pipe, staged / files[f"sampler_{n}"], n)
        say("decoder")
        files["decoder"] = "decoder.onnx"
        export_decoder(pipe, staged / files["decoder"])
        if precision == "int8":
            for name, file in files.items():
                if name != "text_encoder":
                    say(f"int8: {name}")
                    quantize_int8(staged / file)
        manifest = _manifest(pipe, staged, steps, precision, files)
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        (staged / "README.md").write_text(engine_readme(manifest), encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.replace(old)
            staged.replace(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staged.replace(out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return out


def engine_readme(manifest: dict[str, Any]) -> str:
    """The README written beside the graphs: how an engine runs them, in order."""
    from motionlcm.data.skeleton import JOINT_NAMES

    steps = ", ".join(manifest["sampler"]["graphs"])
    rule = manifest["latents"]["token_mask"]
    mask = (
        f"token i is true when i < ceil(frames / {rule['segment_frames']})"
        if rule["rule"] == "segments"
        else "all true"
    )
    return f"""# motionlcm ONNX graphs

Exported by `motionlcm export onnx` from `{manifest["model"]["path"]}` (fingerprint {manifest["model"]["fingerprint"]}),
ONNX opset {manifest["opset"]} (Unity Sentis, Unreal NNE, onnxruntime, onnxruntime-web), {manifest["precision"]}.
`manifest.json` lists every input and output with its shape (named axes are dynamic), the input ranges, the
Mean/Std and a sha256 per file. Text to motion is three graphs run in order:

1. **Text** (`text_encoder.onnx`): apply `text_encoder.prompt_rewrites` of the manifest to the prompt, in
   order (each a regular expression matched case-insensitively and its literal replacement, which takes the
   case of the matched text's first letter; the model's captions never used the words they replace), then
   tokenise it with the files in `tokenizer/` (a Hugging Face
   WordPiece tokenizer, right padding, {"lower-case first, " if manifest["text_encoder"]["lowercase"] else ""}at most {manifest["text_encoder"]["max_length"]} tokens) into
   `input_ids` and `attention_mask` (int64, batch x length); the output `text` is
   (batch, {manifest["text_encoder"]["rows"]}, {manifest["text_encoder"]["dim"]}).
2. **Sample** (`sampler_N.onnx`, N = {steps} consistency steps): `text`; `noise`, standard normal
   (batch, {manifest["latents"]["tokens"]}, {manifest["latents"]["dim"]}); `guidance`, the guidance scale per motion (default per step count in
   the manifest, within `sampler.guidance.range`); `token_mask` (batch, {manifest["latents"]["tokens"]}) bool, {mask};
   `step_noise`, standard normal (N - 1, batch, {manifest["latents"]["tokens"]}, {manifest["latents"]["dim"]}) (shape (1, ...) and unused for N = 1).
   Output: `latents`.
3. **Decode** (`decoder.onnx`): `latents` and `mask` (batch, frames) bool, true for each motion's frames
   ({manifest["frames"]["min"]}..{manifest["frames"]["max"]} frames at {manifest["fps"]} fps). Outputs: `features` (batch, frames, 263), the HumanML3D
   representation already de-normalised, and `joints` (batch, frames, 22, 3), metres, y up, in this order:
   {", ".join(JOINT_NAMES)}. Frames past a motion's mask are zero.

Different seeds are different noise. The motion starts at the origin facing +z. Licence: the weights'
(see the model folder's card).
"""
