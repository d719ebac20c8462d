"""DistillSystem wiring: student initialised from the teacher, frozen modules, loss and EMA target."""

from __future__ import annotations

import pytest
import torch

from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.train.distill_system import DistillSystem, student_from_teacher


class FixedText(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, texts):
        return torch.stack([torch.full((1, self.dim), float(len(t))) for t in texts])


def make_system(**kwargs):
    torch.manual_seed(0)
    vae = MotionVAE(VAEConfig.tiny())
    teacher = LatentDenoiser(DenoiserConfig.tiny(text_dim=6, latent_size=2, latent_dim=8))
    return DistillSystem(teacher, vae, FixedText(6), DDIMScheduler(), **kwargs)


def batch(size=3, frames=24):
    lengths = torch.tensor([24, 20, 16][:size])
    return {
        "features": torch.randn(size, frames, 263),
        "lengths": lengths,
        "mask": torch.arange(frames)[None] < lengths[:, None],
        "texts": ["walk", "run fast", ""][:size],
    }


def loss_at_fixed_draws(system, data, term: str, seed: int) -> float:
    """`compute_loss(data)[term]` with the random draws of `seed`, leaving the global RNG as it was."""
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad():
        value = system.compute_loss(data)[term].item()
    torch.set_rng_state(state)
    return value


def test_student_starts_as_the_teacher():
    teacher = LatentDenoiser(DenoiserConfig.tiny(text_dim=6)).eval()
    student = student_from_teacher(teacher).eval()
    z, t, text = torch.randn(2, 2, 8), torch.tensor([10, 900]), torch.randn(2, 1, 6)
    w_emb = guidance_scale_embedding(torch.tensor([5.0, 14.0]))
    assert torch.equal(student(z, t, text, w_emb), teacher(z, t, text))


def test_a_wider_student_starts_as_the_teacher_and_learns_with_its_new_units():
    teacher = LatentDenoiser(DenoiserConfig.tiny(text_dim=6)).eval()
    student = student_from_teacher(teacher, ff_size=160).eval()
    assert student.config.ff_size == 160 and student.config.time_cond_proj_dim == 256
    z, t, text = torch.randn(2, 2, 8), torch.tensor([10, 900]), torch.randn(2, 1, 6)
    w_emb = guidance_scale_embedding(torch.tensor([5.0, 14.0]))
    assert torch.allclose(student(z, t, text, w_emb), teacher(z, t, text), atol=1e-6)
    student(z, t, text, w_emb).square().sum().backward()
    grads = [m.linear2.weight.grad[:, 64:] for m in student.modules() if hasattr(m, "linear2")]
    assert len(grads) == 3 and all(g.abs().sum() > 0 for g in grads)  # the new units receive gradient


def test_the_target_starts_as_an_exact_copy_of_a_wider_student():
    system = make_system(student_ff_size=128)
    assert system.student.config.ff_size == 128 and system.teacher.config.ff_size == 64
    for online, target in zip(system.student.parameters(), system.target.parameters(), strict=True):
        assert torch.equal(online, target) and not target.requires_grad


def test_frozen_modules_and_training_step():
    system = make_system(num_ddim_timesteps=10, huber_c=0.5)
    system.train()
    assert system.student.training and not system.teacher.training and not system.target.training
    assert not any(p.requires_grad for p in system.teacher.parameters())
    loss = system.compute_loss(batch())["loss"]
    loss.backward()
    assert torch.isfinite(loss) and system.student.time_embedding.cond_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in system.target.parameters())
    quirk = make_system(frozen_dropout=True).train()
    assert quirk.teacher.training and quirk.target.training and quirk.vae.training


def test_target_follows_the_student_by_ema():
    system = make_system(ema_decay=0.95)
    with torch.no_grad():
        for p in system.student.parameters():
            p.add_(1.0)
    before = [p.clone() for p in system.target.parameters()]
    system.on_train_batch_end(None, None, 0)
    for old, new, online in zip(before, system.target.parameters(), system.student.parameters(), strict=False):
        assert torch.allclose(new, 0.95 * old + 0.05 * online, atol=1e-6)


def test_bad_options():
    with pytest.raises(ValueError, match="loss"):
        make_system(loss="l1")
    with pytest.raises(ValueError, match="export"):
        make_system(export="best")


def test_distillation_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    system = make_system(num_ddim_timesteps=10, loss="l2", ema_decay=0.95)
    system.train()
    data = batch()
    optimizer = torch.optim.Adam(system.student.parameters(), lr=3e-3)

    def evaluate():  # the same draws of n, noise and w every time
        return loss_at_fixed_draws(system, data, "loss", seed=123)

    before = evaluate()
    for _ in range(120):
        loss = system.compute_loss(data)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        system.on_train_batch_end(None, None, 0)
    assert evaluate() < before / 2  # measured: 28.9 -> 13.8 after 100 steps, then a plateau


@pytest.mark.parametrize("frozen_dropout", [False, True])
def test_frozen_module_modes_hold_inside_a_lightning_fit(bn_dataset_dir, teacher_dir, tmp_path, frozen_dropout):
    """Lightning does not call .train() on the whole module: the modes must hold in real training steps."""
    from pathlib import Path

    from motionlcm.config import load_config
    from motionlcm.train.distill_system import DistillSystem
    from motionlcm.train.run import train

    seen = []
    original = DistillSystem.training_step

    def spy(self, batch, batch_idx):
        seen.append((self.student.training, self.teacher.training, self.target.training, self.vae.training))
        return original(self, batch, batch_idx)

    repo = Path(__file__).resolve().parents[2]
    overrides = [
        f"data.root={bn_dataset_dir}",
        "trainer.max_steps=4",
        "checkpoint.every_n_steps=2",
        f"output_dir={tmp_path / 'lcm'}",
        f"teacher_dir={teacher_dir}",
        f"system.frozen_dropout={str(frozen_dropout).lower()}",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DistillSystem, "training_step", spy)
        train("student", load_config(repo / "configs" / "tiny" / "student.yaml", overrides), progress=False)
    assert len(seen) == 4
    assert all(mode == (True, frozen_dropout, frozen_dropout, frozen_dropout) for mode in seen), seen


def test_batched_teacher_call_gives_the_same_distillation_loss(student_dir, teacher_dir):
    from motionlcm.diffusion.ddim import DDIMScheduler
    from motionlcm.pipeline import MotionLCM
    from motionlcm.train.distill_system import DistillSystem

    teacher = MotionLCM.from_pretrained(teacher_dir, device="cpu")
    system = DistillSystem(teacher.denoiser, teacher.vae, teacher.text_encoder, DDIMScheduler())
    batch = {
        "features": torch.randn(3, 20, 263),
        "lengths": torch.tensor([20, 12, 9]),
        "texts": ["a person walks.", "a person runs.", "a person waves."],
    }
    losses = []
    for batched in (True, False):
        system.batched_teacher = batched
        torch.manual_seed(0)
        losses.append(system.compute_loss(batch)["loss"])
    assert torch.allclose(losses[0], losses[1], atol=1e-6)


def test_trajectory_term_is_added_with_its_weight_and_pulls_the_one_step_map():
    plain = make_system(num_ddim_timesteps=10, one_step_timestep=799)
    weighted = make_system(num_ddim_timesteps=10, one_step_timestep=799, trajectory_weight=2.0)
    torch.manual_seed(5)
    base = plain.compute_loss(batch())
    torch.manual_seed(5)
    terms = weighted.compute_loss(batch())
    assert "trajectory" not in base and terms["trajectory"] > 0
    assert torch.allclose(terms["consistency"], base["consistency"])  # same draws for the consistency part
    assert torch.allclose(terms["loss"], terms["consistency"] + 2.0 * terms["trajectory"])
    with pytest.raises(ValueError, match="trajectory_weight"):
        make_system(trajectory_weight=-1.0)
    with pytest.raises(ValueError, match="one_step_timestep"):
        make_system(one_step_timestep=1000)
    trained = student_from_teacher(LatentDenoiser(DenoiserConfig.tiny(text_dim=6, latent_size=2, latent_dim=8)))
    with pytest.raises(ValueError, match="student_ff_size: 128 differs"):
        make_system(student=trained, student_ff_size=128)
    with pytest.raises(ValueError, match="no guidance embedding"):
        make_system(student=LatentDenoiser(DenoiserConfig.tiny(text_dim=6, latent_size=2, latent_dim=8)))


def test_trajectory_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    system = make_system(num_ddim_timesteps=10, loss="l2", trajectory_weight=1.0, one_step_timestep=799).train()
    data = batch()
    optimizer = torch.optim.Adam(system.student.parameters(), lr=3e-3)

    def trajectory():
        return loss_at_fixed_draws(system, data, "trajectory", seed=7)

    before = trajectory()
    for _ in range(60):
        torch.manual_seed(7)  # the same noise: the student must learn this one-step map
        loss = system.compute_loss(data)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        system.on_train_batch_end(None, None, 0)
    assert trajectory() < before / 2


def test_a_distillation_continues_from_a_trained_student(bn_dataset_dir, teacher_dir, student_dir, vae_dir, tmp_path):
    from pathlib import Path

    from motionlcm.config import load_config
    from motionlcm.models.folder import load_model_folder
    from motionlcm.train.run import _datamodule, _distill_system

    repo = Path(__file__).resolve().parents[2]
    config = load_config(
        repo / "configs" / "tiny" / "student.yaml",
        [
            f"data.root={bn_dataset_dir}",
            f"output_dir={tmp_path / 'lcm'}",
            f"teacher_dir={teacher_dir}",
            f"init_dir={student_dir}",
            "system.trajectory_weight=1.0",
        ],
    )
    dm = _datamodule(config)
    dm.setup("fit")
    system = _distill_system(config, dm)
    trained = load_model_folder(student_dir).denoiser.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in system.student.state_dict().items())
    assert system.one_step_timestep == 799 and system.trajectory_weight == 1.0  # the V2 sampler's first step
    config["init_dir"] = str(vae_dir)  # a VAE folder is no student
    with pytest.raises(ValueError, match="expected a student model folder"):
        _distill_system(config, dm)


def test_same_weights_allows_half_precision_rounding_only():
    from motionlcm.train.run import _same_weights

    a = MotionVAE(VAEConfig.tiny())
    b = MotionVAE(VAEConfig.tiny())
    b.load_state_dict({k: v.half().float() for k, v in a.state_dict().items()})
    assert _same_weights(a, b)  # a shipped fp16 copy of the same VAE
    with torch.no_grad():
        next(b.parameters()).add_(0.01)
    assert not _same_weights(a, b)
