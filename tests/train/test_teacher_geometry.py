"""The teacher's optional geometric terms: MDM's foot contact loss on the decoded x̂0 with the clip's labels,
and the root motion held to the clip's."""

from __future__ import annotations

import pytest
import torch

from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.train.teacher_system import TeacherSystem
from tests.train.test_distill_system import FixedText, batch

STATS = {"mean": torch.zeros(263), "std": torch.ones(263)}


def make_teacher(**kwargs) -> TeacherSystem:
    torch.manual_seed(0)
    vae = MotionVAE(VAEConfig.tiny())
    denoiser = LatentDenoiser(DenoiserConfig.tiny(text_dim=6, latent_size=2, latent_dim=8))
    return TeacherSystem(denoiser, vae, FixedText(6), DDIMScheduler(), cond_dropout=0.0, **kwargs)


def _terms(system: TeacherSystem, seed: int = 3) -> dict:
    torch.manual_seed(seed)
    return system.compute_loss(batch())


def test_the_terms_are_added_with_their_weights_below_the_timestep_bound():
    plain = _terms(make_teacher())
    weighted = make_teacher(contact_weight=2.0, root_weight=5.0, geometry_max_timestep=1000, **STATS)
    terms = _terms(weighted)
    assert set(plain) == {"diffusion", "loss"} and torch.allclose(plain["loss"], terms["diffusion"])  # same draws
    assert terms["contact"] > 0 and terms["root"] > 0
    assert torch.allclose(terms["loss"], terms["diffusion"] + 2.0 * terms["contact"] + 5.0 * terms["root"])
    terms["loss"].backward()
    assert all(p.grad is not None for p in weighted.denoiser.parameters() if p.requires_grad)
    assert all(p.grad is None for p in weighted.vae.parameters())  # the VAE stays frozen


def test_no_sample_below_the_bound_gives_zero_terms():
    terms = _terms(make_teacher(contact_weight=2.0, root_weight=5.0, geometry_max_timestep=0, **STATS))
    assert terms["contact"] == 0 and terms["root"] == 0
    assert torch.equal(terms["loss"], terms["diffusion"])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="contact_weight: expected"):
        make_teacher(contact_weight=-1.0, **STATS)
    with pytest.raises(ValueError, match="root_weight: expected"):
        make_teacher(root_weight=-0.5, **STATS)
    with pytest.raises(ValueError, match="need the feature mean and std"):
        make_teacher(contact_weight=1.0)


def test_a_teacher_fine_tune_starts_from_the_trained_teacher(teacher_dir, vae_dir, bn_dataset_dir, tmp_path):
    from motionlcm.config import load_config
    from motionlcm.models.folder import load_model_folder
    from motionlcm.train.run import _datamodule, _teacher_system

    overrides = [
        f"data.root={bn_dataset_dir}",
        f"vae_dir={vae_dir}",
        f"init_dir={teacher_dir}",
        "system.contact_weight=1.0",
        "system.root_weight=1.0",
        "trainer.max_steps=2",
    ]
    config = load_config("configs/tiny/teacher.yaml", overrides)
    dm = _datamodule(config)
    dm.setup("fit")
    system = _teacher_system(config, dm)
    trained = load_model_folder(teacher_dir).denoiser
    for name, value in trained.state_dict().items():
        assert torch.equal(system.denoiser.state_dict()[name], value.float()), name
    assert system.contact_weight == 1.0 and torch.equal(system.mean, torch.as_tensor(dm.normalizer.mean).float())
    other = load_config("configs/tiny/teacher.yaml", [*overrides[:2], f"init_dir={vae_dir}"])
    dm = _datamodule(other)
    dm.setup("fit")
    with pytest.raises(ValueError, match="expected a teacher model folder"):
        _teacher_system(other, dm)
