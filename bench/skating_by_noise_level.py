"""Where does the teacher's foot skating come from? Encode real test clips, noise their latents to timestep t,
let the teacher (DDIM, 50-step grid, its captions, scale 3) denoise them back from t, decode, and measure the
skating of the cleaned joints users get. t = 0 is the VAE's reconstruction; t near 1000 is generation from
scratch. Also decodes the clean latents plus Gaussian noise (the decoder's robustness alone).

Usage:
    python bench/skating_by_noise_level.py [--model checkpoints/bandai-namco-teacher] [--clips 160]
Prints one row per setting (skating before and after `clean_joints`) and writes
bench/results/skating_by_noise_level.json.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.cleanup import clean_joints
from motionlcm.data.features import FOOT_CONTACT, features_to_joints
from motionlcm.diffusion.sampling import _cfg_text, _guided_prediction
from motionlcm.eval.kinematics import foot_skating_ratio

REPO = Path(__file__).resolve().parents[1]
TIMESTEPS = (100, 300, 500, 700, 980)
LATENT_NOISE = (0.25, 0.5)


def skating(pipe, normalised: torch.Tensor, lengths: list[int]) -> list[tuple[float, float]]:
    """(raw, cleaned) skating ratio of each clip of normalised features."""
    features = normalised * pipe.std + pipe.mean
    joints, contacts = features_to_joints(features).numpy(), features[..., FOOT_CONTACT].numpy()
    return [
        (foot_skating_ratio(j[:n]), foot_skating_ratio(clean_joints(j[:n], c[:n])))
        for j, c, n in zip(joints, contacts, lengths, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "checkpoints" / "bandai-namco-teacher"), help="teacher folder")
    parser.add_argument("--dataset", default=str(REPO / "data" / "bandai-namco"), help="HumanML3D-layout dataset")
    parser.add_argument("--clips", type=int, default=160, help="test clips (a fixed random draw)")
    parser.add_argument("--guidance", type=float, default=3.0, help="CFG scale of the denoising")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "skating_by_noise_level.json")
    args = parser.parse_args()
    from motionlcm import MotionLCM

    root = Path(args.dataset)
    names = sorted(np.random.default_rng(0).choice((root / "test.txt").read_text().split(), args.clips, replace=False))
    captions = [(root / "texts" / f"{n}.txt").read_text().split("\n")[0].split("#")[0] for n in names]
    clips = [np.load(root / "new_joint_vecs" / f"{n}.npy")[:196] for n in names]
    pipe = MotionLCM.from_pretrained(args.model, device="cpu")
    if pipe.kind != "teacher":
        raise SystemExit(f"--model: {args.model} is a {pipe.kind}, not a teacher")
    torch.manual_seed(0)
    scheduler = pipe.scheduler
    scheduler.set_timesteps(50)
    rows: dict[str, list] = {}
    with torch.no_grad():
        for i in range(0, len(clips), 32):
            lengths = [len(c) for c in clips[i : i + 32]]
            x = torch.zeros(len(lengths), max(lengths), 263)
            for k, clip in enumerate(clips[i : i + 32]):
                x[k, : len(clip)] = (torch.from_numpy(clip).float() - pipe.mean) / pipe.std
            z0, _ = pipe.vae.encode(x, torch.tensor(lengths), use_mean=True)
            text = _cfg_text(pipe.encode_text(captions[i : i + 32]), pipe.encode_text([""]))
            denoiser = pipe._masked_denoiser(lengths, pipe.denoiser_fn)
            rows.setdefault("real", []).extend(skating(pipe, x, lengths))
            rows.setdefault("VAE reconstruction (t = 0)", []).extend(skating(pipe, pipe.decode(z0, lengths), lengths))
            for sigma in LATENT_NOISE:
                noisy = z0 + sigma * torch.randn_like(z0)
                rows.setdefault(f"decoded latents + {sigma} noise", []).extend(
                    skating(pipe, pipe.decode(noisy, lengths), lengths)
                )
            for start in TIMESTEPS:
                grid = [t for t in scheduler.timesteps if int(t) <= start]
                z = scheduler.add_noise(z0, torch.randn_like(z0), torch.tensor(int(grid[0])))
                for t in grid:
                    prediction = _guided_prediction(denoiser, scheduler.scale_model_input(z, t), t, text, args.guidance)
                    z = scheduler.step(prediction, t, z).prev_sample
                rows.setdefault(f"teacher from t = {start}", []).extend(skating(pipe, pipe.decode(z, lengths), lengths))
    table = {
        name: {"raw": float(np.mean([r for r, _ in v])), "cleaned": float(np.mean([c for _, c in v]))}
        for name, v in rows.items()
    }
    print(f"{'':<34} {'raw':>6} {'cleaned':>8}")
    for name, value in table.items():
        print(f"{name:<34} {value['raw']:>6.3f} {value['cleaned']:>8.3f}")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": platform.processor() or platform.machine(),
              "clips": len(clips), "skating": table}  # fmt: skip
    args.json.write_text(json.dumps(record, indent=1))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
