"""Training systems: losses that must fall, and the Lightning wiring (resume, DDP, export)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from motionlcm.config import load_config
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.train.datamodule import HumanML3DDataModule
from motionlcm.train.distill_system import DistillSystem
from motionlcm.train.losses import masked_smooth_l1
from motionlcm.train.run import train
from motionlcm.train.teacher_system import TeacherSystem
from motionlcm.train.vae_system import VAESystem

REPO = Path(__file__).resolve().parents[2]
TINY_VAE = REPO / "configs" / "tiny" / "vae.yaml"


def one_batch(root, size=2, frames=24):
    """The first training batch, cut to `frames` frames (short sequences keep the test fast)."""
    dm = HumanML3DDataModule(root, batch_size=size, min_length=20, seed=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    lengths = batch["lengths"].clamp(max=frames)
    batch.update(features=batch["features"][:, :frames], lengths=lengths, mask=batch["mask"][:, :frames])
    return dm, batch


def test_vae_overfits_one_batch(bn_dataset_dir):
    torch.manual_seed(0)
    dm, batch = one_batch(bn_dataset_dir)
    config = VAEConfig.tiny(dropout=0.0, latent_size=4, latent_dim=16, hidden_dim=64, ff_size=128)
    system = VAESystem(MotionVAE(config), dm.normalizer)

    def reconstruction_error():  # through the posterior mean, so the number is deterministic
        with torch.no_grad():
            z, _ = system.vae.encode(batch["features"], batch["lengths"], use_mean=True)
            recon = system.vae.decode(z, batch["lengths"])
        return masked_smooth_l1(recon, batch["features"], batch["mask"]).mean().item()

    before = reconstruction_error()
    optimizer = torch.optim.Adam(system.parameters(), lr=1e-3)
    for _ in range(400):
        terms = system.compute_loss(batch)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
    assert reconstruction_error() < before / 10
    assert set(terms) == {"loss", "rec_feats", "rec_joints", "kl"}


def test_denoiser_overfits_fixed_noise():
    torch.manual_seed(0)
    denoiser = LatentDenoiser(DenoiserConfig.tiny(text_dim=12, dropout=0.0))
    cfg = denoiser.config
    z0 = torch.randn(8, cfg.latent_size, cfg.latent_dim)
    text = torch.randn(8, 1, 12)
    noise = torch.randn_like(z0)
    t = torch.randint(0, 1000, (8,))
    alphas = DDIMScheduler().alphas_cumprod[t].view(-1, 1, 1)
    z_t = alphas.sqrt() * z0 + (1 - alphas).sqrt() * noise
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        loss = torch.nn.functional.mse_loss(denoiser(z_t, t, text), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:3]) / 10


def tiny_vae_config(root, out, **extra):
    return tiny_config("vae", root, out, **extra)


class _Crash(RuntimeError):
    pass


def tiny_config(kind, root, out, **extra):
    overrides = [f"data.root={root}", f"output_dir={out}", "checkpoint.every_n_steps=5"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(REPO / "configs" / "tiny" / f"{kind}.yaml", overrides)


def crash_at_step(monkeypatch, system_class, step):
    """Make `system_class` raise _Crash once training reaches `step`."""
    original = system_class.on_train_batch_end

    def crash(self, outputs, batch, batch_idx):
        original(self, outputs, batch, batch_idx)
        if self.global_step == step:
            raise _Crash()

    monkeypatch.setattr(system_class, "on_train_batch_end", crash)


RESUMABLE = {"vae": (VAESystem, None), "teacher": (TeacherSystem, "vae_dir"), "student": (DistillSystem, "teacher_dir")}


@pytest.mark.parametrize("kind", list(RESUMABLE))
def test_resume_equals_uninterrupted(kind, bn_dataset_dir, tmp_path, monkeypatch, request):
    system_class, needs = RESUMABLE[kind]
    extra = {"trainer.max_steps": 10}
    if needs:
        extra[needs] = request.getfixturevalue(needs)
    full = train(kind, tiny_config(kind, bn_dataset_dir, tmp_path / "full", **extra), progress=False)

    # Crash at step 7: the last periodic checkpoint is from step 5, in the middle of epoch 1.
    config = tiny_config(kind, bn_dataset_dir, tmp_path / "resumed", **extra)
    with monkeypatch.context() as patch:
        crash_at_step(patch, system_class, 7)
        with pytest.raises(_Crash):
            train(kind, config, progress=False)
    ckpt = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 5
    with pytest.raises(ValueError, match="--resume"):
        train(kind, config, progress=False)
    resumed = train(kind, config, resume=True, progress=False)

    weights = sorted(p.name for p in full.glob("*.safetensors"))
    assert weights and weights == sorted(p.name for p in resumed.glob("*.safetensors"))
    for name in weights:
        a, b = load_file(full / name), load_file(resumed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key}"
    assert (tmp_path / "resumed" / "config.yaml").is_file()
    assert len(list((tmp_path / "resumed" / "logs").glob("version_*/metrics.csv"))) == 2  # crashed run + resumed run


def test_ddp_two_cpu_processes(bn_dataset_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "motionlcm.cli",
        "train",
        "vae",
        "--config",
        str(TINY_VAE),
        "-o",
        str(out),
        "-q",
        f"data.root={bn_dataset_dir}",
        "trainer.max_steps=4",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.accelerator=cpu",
        "checkpoint.every_n_steps=2",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world_size: 2" in result.stderr or "GLOBAL_RANK: 1" in result.stderr, result.stderr[-2000:]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4
    assert (out / "model" / "vae.safetensors").is_file()


def test_resume_with_a_new_max_steps_warns_about_the_schedule(tmp_path):
    from motionlcm.train.run import _warn_if_schedule_changes

    (tmp_path / "config.yaml").write_text("trainer:\n  max_steps: 4000\n")
    with pytest.warns(UserWarning, match="max_steps=8000 .* had 4000"):
        _warn_if_schedule_changes(tmp_path / "config.yaml", {"trainer": {"max_steps": 8000}})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_schedule_changes(tmp_path / "config.yaml", {"trainer": {"max_steps": 4000}})


def test_a_copied_run_resumes_and_keeps_last_ckpt_current(bn_dataset_dir, tmp_path, monkeypatch):
    import shutil

    from motionlcm.train import vae_system

    train("vae", tiny_vae_config(bn_dataset_dir, tmp_path / "a", **{"trainer.max_steps": 5}), progress=False)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # continue a finished run in a new folder
    original = vae_system.VAESystem.on_train_batch_end

    def crash(self, outputs, batch, batch_idx):
        original(self, outputs, batch, batch_idx)
        if self.global_step == 12:
            raise _Crash()

    monkeypatch.setattr(vae_system.VAESystem, "on_train_batch_end", crash)
    with pytest.raises(_Crash), pytest.warns(UserWarning, match="re-stretched"):
        train(
            "vae",
            tiny_vae_config(bn_dataset_dir, tmp_path / "b", **{"trainer.max_steps": 15}),
            resume=True,
            progress=False,
        )
    names = sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("last*.ckpt"))
    assert names == ["last.ckpt"]
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 10


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_steps=abc", "trainer.max_steps: expected an integer >= 1, got 'abc'"),
        ("trainer.max_steps=-5", "trainer.max_steps: expected an integer >= 1, got -5"),
        ("system.lr=nan", "system.lr: expected a number > 0, got 'nan'"),
        ("system.lr=.nan", "system.lr: must be finite"),
        ("system.lr=0", "system.lr: expected a number > 0"),
        ("trainer.devices=99", "trainer.devices: 99 is not available"),
        pytest.param(
            "trainer.accelerator=gpu",
            "trainer.accelerator=gpu: no CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_bad_training_settings_fail_at_once_with_one_line(bn_dataset_dir, tmp_path, override, message):
    from motionlcm.config import load_config
    from motionlcm.train.run import train

    config = load_config(TINY_VAE, [f"data.root={bn_dataset_dir}", f"output_dir={tmp_path / 'run'}", override])
    with pytest.raises(ValueError, match=re.escape(message)):
        train("vae", config, progress=False)
    assert not (tmp_path / "run").exists()  # nothing written


def test_resuming_from_a_broken_or_foreign_checkpoint_is_one_line_and_runs_nothing(bn_dataset_dir, tmp_path):
    import pickle

    from motionlcm.config import load_config
    from motionlcm.train.run import train

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    config = load_config(TINY_VAE, [f"data.root={bn_dataset_dir}", f"output_dir={tmp_path / 'run'}"])
    payloads = {"empty": b"", "garbage": os.urandom(4096), "pickled": pickle.dumps({"state_dict": Payload()})}
    buffer = tmp_path / "zip.ckpt"
    torch.save({"state_dict": {}, "global_step": 3, "evil": Payload()}, buffer)
    payloads["zip with a payload"] = buffer.read_bytes()
    payloads["truncated"] = payloads["zip with a payload"][:200]
    for name, data in payloads.items():
        last.write_bytes(data)
        with pytest.raises(ValueError, match=r"last\.ckpt: not a readable training checkpoint"):
            train("vae", config, resume=True, progress=False)
        assert not marker.exists(), name
