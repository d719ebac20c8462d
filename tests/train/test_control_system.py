"""ControlSystem: only the ControlNet and the trajectory encoder train, the control loss falls on a toy set,
and `train control` writes a controller folder that generation finds and that steers the motion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motionlcm.data.hints import HintNormalizer
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.models.controlnet import TrajectoryEncoder, TrajectoryEncoderConfig, controlnet_from_denoiser
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.vae import MotionVAE, VAEConfig
from motionlcm.train.control_system import ControlSystem, masked_control_loss
from tests.train.test_distill_system import FixedText


def make_system(**kwargs):
    torch.manual_seed(0)
    vae = MotionVAE(VAEConfig.tiny(dropout=0.0))
    student = LatentDenoiser(DenoiserConfig.tiny(text_dim=6, time_cond_proj_dim=256, dropout=0.0))
    encoder = TrajectoryEncoder(TrajectoryEncoderConfig.tiny(dropout=0.0))
    normalizer = HintNormalizer(np.zeros((22, 3)), np.ones((22, 3)))
    return ControlSystem(
        student, vae, FixedText(6), DDIMScheduler(), controlnet_from_denoiser(student), encoder, normalizer,
        torch.zeros(263), torch.ones(263) * 0.1, lr=3e-3, warmup_steps=1, total_steps=40, **kwargs,
    )  # fmt: skip


def batch(size=4, frames=24):
    torch.manual_seed(3)
    lengths = torch.tensor([24, 20, 16, 24][:size])
    return {
        "features": torch.randn(size, frames, 263),
        "lengths": lengths,
        "mask": torch.arange(frames)[None] < lengths[:, None],
        "texts": ["walk", "run fast", "wave", "jump"][:size],
    }


def loss_at(system, data, seed=11):
    torch.manual_seed(seed)
    return system.compute_loss(data)


def test_only_controlnet_and_encoder_train():
    system = make_system()
    trainable = {n.split(".")[0] for n, p in system.named_parameters() if p.requires_grad}
    assert trainable == {"controlnet", "trajectory_encoder"}
    assert not system.student.training and not system.vae.training


def test_control_loss_falls_on_a_toy_set():
    system = make_system(one_step_fraction=0.5, control_weight=5.0, control_beta=0.05, diffusion_weight=0.0)
    data = batch()
    before = loss_at(system, data)
    optimizer = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(25):  # one fixed draw of masks, timesteps and noise: a toy set to fit
        loss = loss_at(system, data)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = loss_at(system, data)
    assert after["control"] < 0.5 * before["control"]
    assert after["error_m"] < before["error_m"]


def test_masked_control_loss_counts_only_controlled_axes():
    joints = torch.zeros(2, 5, 22, 3)
    hints = torch.zeros_like(joints)
    hints[0, :, 3] = 10.0  # free: ignored
    mask = torch.zeros_like(joints, dtype=torch.bool)
    mask[:, 1, 0] = True
    assert masked_control_loss(joints, hints, mask) == 0.0
    hints[1, 1, 0, 0] = 1.0
    # sample 1: smooth-L1 of 1 m with beta 0.05 is 0.975 over its 3 controlled axes; sample 0: 0
    assert masked_control_loss(joints, hints, mask, beta=0.05).item() == pytest.approx(0.975 / 3 / 2)


def test_train_control_installs_a_controller_that_generation_uses(control_dir, student_dir):
    from motionlcm.pipeline import MotionLCM

    header = json.loads((control_dir / "control.json").read_text())
    assert header["joints"] == [0] and header["format"] == "motionlcm-control"
    assert (student_dir / "control" / "pelvis" / "control.json").is_file()
    pipe = MotionLCM.from_pretrained(student_dir, text_encoder_path=None)
    assert [c.name for c in pipe.controllers()] == ["pelvis"]
    hints = np.full((24, 22, 3), np.nan, np.float32)
    hints[:, 0, 0] = np.linspace(0, 1, 24)
    hints[:, 0, 2] = 0.0
    free = pipe("a person walks", frames=24, seed=1)[0]
    steered = pipe("a person walks", control=hints, seed=1)[0]
    assert steered.frames == 24 and steered.hints is not None
    record = steered.settings["control"]
    assert record["controller"] == "pelvis" and record["controlled_points"] == 24
    assert np.isfinite(record["avg_err_m"])
    assert not np.allclose(free.joints, steered.joints)  # trained for 6 steps: already not the identity
    with pytest.raises(ValueError, match="no controller controls any frames of right_wrist"):
        bad = np.full((24, 22, 3), np.nan, np.float32)
        bad[3, 21] = [0, 1, 0]
        pipe("a person waves", control=bad)
    with pytest.raises(ValueError, match="hints have 24 frames, the motion 30"):
        pipe("a person walks", frames=30, control=hints)


def test_install_refuses_a_controller_of_another_denoiser(control_dir, teacher_dir, tmp_path):
    import shutil

    from motionlcm.models.control_folder import install_controller

    other = tmp_path / "other"
    shutil.copytree(teacher_dir, other)
    with pytest.raises(ValueError, match="another denoiser"):
        install_controller(control_dir, other, "pelvis")
    assert not (other / "control").exists() or not any((other / "control").iterdir())


def test_clt_steers_a_student_without_any_controller(student_dir):
    from motionlcm.data.hints import hints_from_array, point_errors
    from motionlcm.pipeline import MotionLCM

    pipe = MotionLCM.from_pretrained(student_dir)
    hints = np.full((24, 22, 3), np.nan, np.float32)
    hints[::4, 21] = [0.3, 1.2, 0.4]  # the right wrist: no controller covers it
    free = pipe("a person waves", frames=24, seed=2)[0]
    tuned = pipe("a person waves", control=hints, control_method="clt", clt_steps=40, warp=False, seed=2)[0]
    h = hints_from_array(hints)
    assert (
        point_errors(tuned.joints, h.values, h.mask).mean() < 0.7 * point_errors(free.joints, h.values, h.mask).mean()
    )
    assert tuned.settings["control"]["controller"] is None and tuned.settings["clt_steps"] == 40
    with pytest.raises(ValueError, match="use --steps 1"):
        pipe("a person waves", control=hints, control_method="clt", steps=2)
