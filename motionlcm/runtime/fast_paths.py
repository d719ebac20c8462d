"""Inference fast paths of the text-to-motion pipeline, as one settings object applied to a `MotionLCM`.

Each switch changes how the same weights are run, never what they are; `motionlcm bench` times every
switch against the plain eager path in the same process and the tests check each against eager on CPU.

* ``attention``: "sdpa" (fused `scaled_dot_product_attention`, models/attention.py) or "torch"
  (`nn.MultiheadAttention` as the official code calls it).
* ``lean_text``: BERT text encoders (MiniLM) through `models/lean_bert.py` instead of `BertModel.forward`.
* ``text_cache``: LRU capacity of the prompt-embedding cache (0 = off); repeated prompts skip the encoder.
* ``compile``: `torch.compile` of the denoiser and of the VAE decoder (static shapes; pair with
  ``frame_bucket`` so that a handful of shapes cover every length).
* ``cuda_graphs``: on CUDA, compile with mode "reduce-overhead", which records CUDA graphs per shape and
  replays them (batch-1 latency is otherwise kernel-launch bound).
* ``autocast``: "bf16" / "fp16" runs the denoiser and decoder under `torch.autocast`; outputs are float32.
* ``frame_bucket``: decode at max(lengths) rounded up to a multiple of this many frames and crop; the
  decoder's padding mask makes the kept frames independent of the padding (tested).
* ``threads``: `torch.set_num_threads` on CPU (a process-wide setting).
* ``backend``: "torch", or "onnxruntime": the text encoder, the student's sampler and the decoder run as the
  ONNX graphs of `export_onnx` (runtime/onnx_backend.py), from ``onnx_dir`` or the cache, at ``precision``
  ("fp32" or "int8"); what the graphs do not cover (control, other step counts) stays in torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from motionlcm.models.attention import BACKENDS, set_attention_backend

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class FastPaths:
    """Which fast paths a pipeline uses; `FastPaths()` is the default of `MotionLCM`, `eager()` the reference."""

    attention: str = "sdpa"
    lean_text: bool = True
    text_cache: int = 4096
    compile: bool = False
    cuda_graphs: bool = False
    autocast: str | None = None
    frame_bucket: int = 0
    threads: int | None = None
    backend: str = "torch"
    onnx_dir: str | None = None
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.attention not in BACKENDS:
            raise ValueError(f"attention: {self.attention!r} is not one of {BACKENDS}")
        if self.autocast not in (None, *AUTOCAST_DTYPES):
            raise ValueError(f"autocast: {self.autocast!r} is not None, 'bf16' or 'fp16'")
        if self.backend not in ("torch", "onnxruntime"):
            raise ValueError(f"--backend: {self.backend!r} is not 'torch' or 'onnxruntime'")
        if self.precision not in ("fp32", "int8"):
            raise ValueError(f"--precision: {self.precision!r} is not 'fp32' or 'int8'")
        if self.backend == "torch" and (self.onnx_dir is not None or self.precision != "fp32"):
            raise ValueError("--onnx-dir / --precision: only with --backend onnxruntime")
        if self.text_cache < 0 or self.frame_bucket < 0 or (self.threads is not None and self.threads < 1):
            raise ValueError(
                f"bad sizes: text_cache={self.text_cache}, frame_bucket={self.frame_bucket}, threads={self.threads}"
            )

    @classmethod
    def eager(cls) -> FastPaths:
        """The plain eager path: nn.MultiheadAttention, transformers' BertModel, no prompt cache."""
        return cls(attention="torch", lean_text=False, text_cache=0)

    def replace(self, **changes: Any) -> FastPaths:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """Short label listing the switches that differ from `eager()`."""
        eager, parts = FastPaths.eager(), []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != getattr(eager, f.name):
                parts.append(f.name if value is True else f"{f.name}={value}")
        return ", ".join(parts) or "eager"


def bucket_frames(num_frames: int, bucket: int, limit: int) -> int:
    """`num_frames` rounded up to a multiple of `bucket` (0: unchanged), at most `limit`."""
    if bucket <= 0:
        return num_frames
    return min(limit, max(num_frames, math.ceil(num_frames / bucket) * bucket))


def apply_fast_paths(pipe: Any, paths: FastPaths) -> Any:
    """Configure `pipe` (a `MotionLCM`) to run with `paths`; returns `pipe`.

    Compilation wraps the denoiser and the decoder (`pipe.denoiser_fn`, `pipe.decode_fn`); the modules in
    `pipe.denoiser` / `pipe.vae` stay the plain ones, so switching back to eager is another call.
    """
    if paths.threads is not None and pipe.device.type == "cpu" and paths.backend == "torch":
        torch.set_num_threads(paths.threads)
    set_attention_backend(pipe.denoiser, paths.attention)
    set_attention_backend(pipe.vae, paths.attention)
    if pipe.text_encoder is not None:
        pipe.text_encoder.lean = paths.lean_text
        pipe.text_encoder.cache_size = paths.text_cache
        pipe.text_encoder.clear_cache()
    pipe.denoiser_fn, pipe.decode_fn = pipe.denoiser, pipe.vae.decode_masked
    if paths.compile or paths.cuda_graphs:
        if paths.cuda_graphs and pipe.device.type != "cuda":
            raise ValueError(f"cuda_graphs: needs a CUDA device, the pipeline runs on {pipe.device}")
        mode = "reduce-overhead" if paths.cuda_graphs else None
        compiled = pipe.__dict__.setdefault("_compiled", {})  # one wrapper per mode: switching back is free
        if mode not in compiled:
            compiled[mode] = (
                torch.compile(pipe.denoiser, mode=mode, dynamic=False),
                torch.compile(pipe.vae.decode_masked, mode=mode, dynamic=False),
            )
        pipe.denoiser_fn, pipe.decode_fn = compiled[mode]
    _apply_backend(pipe, paths)
    pipe.fast_paths = paths
    return pipe


def _apply_backend(pipe: Any, paths: FastPaths) -> None:
    """Open (once per folder and precision) the exported graphs for the onnxruntime backend, or drop them.

    The onnxruntime backend takes the CPU threads: torch runs on one thread meanwhile, because OpenMP threads
    left spinning by a parallel torch op stall the next onnxruntime call (a 263 x 196 subtraction before the
    decoder graph: 15.7 ms instead of 1.7 ms, docs/speed.md); switching back restores torch's count."""
    pipe.onnx = None
    if paths.backend != "onnxruntime" and "_torch_threads" in pipe.__dict__:
        torch.set_num_threads(pipe.__dict__.pop("_torch_threads"))
    if paths.backend == "onnxruntime":
        from motionlcm.runtime.onnx_backend import open_graphs

        if pipe.device.type != "cpu":
            raise ValueError(f"--backend onnxruntime: runs on the CPU (the pipeline is on {pipe.device})")
        opened = pipe.__dict__.setdefault("_onnx_graphs", {})
        key = (paths.onnx_dir, paths.precision)
        if key not in opened:  # the sessions' threads: torch's own count (it is 1 while a backend is on)
            threads = paths.threads or pipe.__dict__.get("_torch_threads") or torch.get_num_threads()
            opened[key] = open_graphs(pipe, paths.onnx_dir, paths.precision, threads)
        pipe.onnx = opened[key]
        pipe.__dict__.setdefault("_torch_threads", torch.get_num_threads())
        torch.set_num_threads(1)
    if pipe.text_encoder is not None:
        pipe.text_encoder.runner = _text_runner(pipe.onnx) if pipe.onnx is not None else None


def _text_runner(graphs: Any) -> Any:
    def run(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(graphs.encode_text(ids.cpu().numpy(), mask.cpu().numpy()))

    return run


def autocast_context(device: torch.device, autocast: str | None) -> Any:
    """`torch.autocast` for the chosen dtype, or a no-op context."""
    if autocast is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[autocast])
