"""Training throughput (steps/s, samples/s) of the VAE and teacher systems, printed and saved as JSON.

Usage:
    python bench/bench_training.py [--device cpu|cuda] [--steps 5] [--json bench/results/training.json]

Synthetic batches (timing only): B clips of T frames, lengths uniform in [T/2, T] with one full-length clip.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.normalizer import Normalizer
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.train.teacher_system import TeacherSystem
from motionlcm.train.vae_system import VAESystem

REPO = Path(__file__).resolve().parents[1]
BN_VAE = dict(hidden_dim=128, ff_size=256, num_layers=3, num_heads=4, latent_size=4, latent_dim=32)
BN_DEN = dict(hidden_dim=128, ff_size=512, num_layers=5, num_heads=4, latent_size=4, latent_dim=32)


class _FixedText(torch.nn.Module):
    """Stands in for the text encoder: a cached encoder costs nothing per step after the first epoch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, texts):
        return torch.zeros(len(texts), 1, self.dim)


def batch(b: int, t: int, device: str) -> dict:
    lengths = torch.randint(t // 2, t + 1, (b,))
    lengths[0] = t
    return {
        "features": torch.randn(b, t, 263, device=device),
        "lengths": lengths.to(device),
        "mask": (torch.arange(t)[None] < lengths[:, None]).to(device),
        "texts": ["a person walks."] * b,
    }


def time_steps(system: torch.nn.Module, params, data: dict, steps: int, device: str) -> float:
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    timings = []
    for i in range(steps + 1):  # the first step is warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = system.compute_loss(data)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:
            timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (after 1 warm-up)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "training.json", help="output")
    args = parser.parse_args()
    norm = Normalizer(np.zeros(263, np.float32), np.ones(263, np.float32))
    rows = []
    cases = [
        ("vae", "official V2", VAEConfig.v2(), 64, 100),
        ("vae", "bandai-namco small", VAEConfig.v2(**BN_VAE), 64, 100),
        ("teacher", "official V2", DenoiserConfig.v2(text_dim=384), 64, 100),
        ("teacher", "bandai-namco small", DenoiserConfig.v2(text_dim=384, **BN_DEN), 64, 100),
    ]
    for kind, name, config, b, t in cases:
        torch.manual_seed(0)
        if kind == "vae":
            system = VAESystem(MotionVAE(config), norm).to(args.device)
            params = system.vae.parameters()
        else:
            vae_cfg = VAEConfig.v2() if name.startswith("official") else VAEConfig.v2(**BN_VAE)
            system = TeacherSystem(LatentDenoiser(config), MotionVAE(vae_cfg), _FixedText(384), DDIMScheduler()).to(
                args.device
            )
            params = system.denoiser.parameters()
        seconds = time_steps(system, params, batch(b, t, args.device), args.steps, args.device)
        params_m = sum(p.numel() for p in (system.vae if kind == "vae" else system.denoiser).parameters()) / 1e6
        rows.append(
            {
                "system": kind,
                "model": name,
                "params_m": round(params_m, 2),
                "batch": b,
                "frames": t,
                "s_per_step": round(seconds, 3),
                "steps_per_s": round(1 / seconds, 2),
                "samples_per_s": round(b / seconds, 1),
            }
        )
    device = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"cpu x{torch.get_num_threads()} ({platform.processor() or platform.machine()})"
    )
    print(f"device: {device}, torch {torch.__version__}")
    print(
        f"{'system':<6} {'model':<20} {'params':>7} {'batch':>5} {'T':>4} {'s/step':>7} {'steps/s':>8} {'samples/s':>10}"
    )
    for r in rows:
        print(
            f"{r['system']:<6} {r['model']:<20} {r['params_m']:>6}M {r['batch']:>5} {r['frames']:>4} "
            f"{r['s_per_step']:>7} {r['steps_per_s']:>8} {r['samples_per_s']:>10}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"device": device, "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
