"""onnxruntime as a backend of the pipeline: the graphs of `export_onnx` (runtime/onnx_graphs.py) run on the CPU
in place of the torch text encoder, the student's sampler and the VAE decoder.

`MotionLCM.from_pretrained(..., backend="onnxruntime")` opens an exported folder (`onnx_dir=`) or exports the
model once into the cache (`$MOTIONLCM_CACHE/onnx/<fingerprint>-<precision>`, default `~/.cache/motionlcm`),
keyed by the weights' fingerprint so that a retrained model is exported again. Everything else stays the
pipeline's: tokenisation, the prompt cache, seeds (the noise is drawn by torch in the same order, so a seed
gives the same motion on both backends within float error), conforming and foot locking. What the graphs
do not cover runs in torch: control (ControlNet, CLT), teachers, and step counts that were not exported.

Each session's threads stop spinning when its run returns (`session.force_spinning_stop`): pools left
spinning starve the next graph's threads (the three graphs at the official V2 size on 2 cores: 69 ms instead
of 34 ms, docs/speed.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from motionlcm.runtime.onnx_graphs import (
    FORMAT,
    FORMAT_VERSION,
    PRECISIONS,
    export_onnx,
    model_fingerprint,
    sha256_file,
)

INSTALL = "pip install 'motionlcm[onnx]'"
BACKENDS = ("torch", "onnxruntime")


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ValueError(f"--backend onnxruntime: onnxruntime is not installed ({INSTALL})") from None
    return onnxruntime


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    return backend


def _session_options(ort: Any, threads: int | None) -> Any:
    """Per-session pools that spin while a graph runs and stop when it returns: pools left spinning starve the
    next graph's threads, pools that never spin pay a wake-up per operator (docs/speed.md). A process-wide pool
    would do as well, but once set, every other onnxruntime session in the process must use it too."""
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return options


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an exported folder, its format and every file's checksum checked."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{folder}: no manifest.json (write one with `motionlcm export onnx MODEL -o {folder}`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format is not {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {manifest.get('format_version')!r}, this motionlcm reads {FORMAT_VERSION}"
        )
    for name, graph in manifest.get("graphs", {}).items():
        file = folder / str(graph.get("file", ""))
        if not file.is_file() or file.parent != folder:
            raise ValueError(f"{path}: graphs.{name}: file {graph.get('file')!r} is missing")
        if sha256_file(file) != graph.get("sha256"):
            raise ValueError(f"{file}: checksum differs from the manifest's (a changed or partly written file)")
    return manifest


class OnnxGraphs:
    """The sessions of one exported folder: `encode_text`, `sample` and `decode` on numpy arrays."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        ort = require_onnxruntime()
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        options = _session_options(ort, threads)

        def session(name: str) -> Any:
            file = self.folder / self.manifest["graphs"][name]["file"]
            return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

        self.text = session(self.manifest["text_encoder"]["graph"])
        self.samplers = {int(n): session(g) for n, g in self.manifest["sampler"]["graphs"].items()}
        self.decoder = session(self.manifest["decoder"]["graph"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["model"]["fingerprint"])

    @property
    def precision(self) -> str:
        return str(self.manifest["precision"])

    def encode_text(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(B, 1 + tokens, dim) from right-padded token ids and attention mask (B, T)."""
        feed = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        return self.text.run(None, feed)[0]

    def sample(
        self, steps: int, text: np.ndarray, noise: np.ndarray, guidance: np.ndarray, token_mask: np.ndarray,
        step_noise: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Latents (B, L, D) after `steps` consistency steps (an exported step count)."""
        feed = {"text": text, "noise": noise, "guidance": guidance, "token_mask": token_mask, "step_noise": step_noise}
        return self.samplers[steps].run(None, {k: np.ascontiguousarray(v) for k, v in feed.items()})[0]

    def decode(self, latents: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """De-normalised features (B, T, 263) and joints (B, T, 22, 3) of the frames in `mask` (B, T)."""
        features, joints = self.decoder.run(None, {"latents": np.ascontiguousarray(latents), "mask": mask})
        return features, joints


def cache_root() -> Path:
    """Where exported graphs are kept: $MOTIONLCM_CACHE, else ~/.cache/motionlcm."""
    return Path(os.environ.get("MOTIONLCM_CACHE") or Path.home() / ".cache" / "motionlcm")


def open_graphs(
    pipe: Any, onnx_dir: str | Path | None = None, precision: str = "fp32", threads: int | None = None
) -> OnnxGraphs:
    """The exported graphs of `pipe`'s model: `onnx_dir` (which must hold this model's graphs), or the cache's,
    exported there first when missing (about 40 s for the shipped model); `threads` sizes the process-wide
    onnxruntime pool when it is created (default: torch's thread count)."""
    require_onnxruntime()
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if pipe.kind != "student":
        raise ValueError(f"{pipe.folder.path}: the onnxruntime backend runs students (this folder is a {pipe.kind})")
    fingerprint = model_fingerprint(pipe)
    if onnx_dir is not None:
        graphs = OnnxGraphs(onnx_dir, threads)
        if graphs.fingerprint != fingerprint:
            raise ValueError(f"{onnx_dir}: exported from other weights than {pipe.folder.path}'s (fingerprint differs)")
        return graphs
    folder = cache_root() / "onnx" / f"{fingerprint}-{precision}"
    try:
        return OnnxGraphs(folder, threads)
    except ValueError:
        pass
    print(f"exporting the ONNX graphs of {pipe.folder.path} to {folder} (once)", file=sys.stderr, flush=True)
    export_onnx(pipe, folder, precision=precision, force=True)
    return OnnxGraphs(folder, threads)
