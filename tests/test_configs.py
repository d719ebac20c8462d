"""Every shipped config loads, and each section maps onto its constructor's arguments."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from motionlcm.config import build_dataclass, load_config, parse_override
from motionlcm.models.denoiser import DenoiserConfig
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.models.vae import VAEConfig
from motionlcm.train.datamodule import HumanML3DDataModule
from motionlcm.train.distill_system import PRESETS, DistillSystem
from motionlcm.train.teacher_system import TeacherSystem
from motionlcm.train.vae_system import VAESystem

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def arguments(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_sections_match_constructors(path):
    import pytorch_lightning as pl

    config = load_config(path)
    if path.stem == "evaluator":
        from motionlcm.eval.contrastive import EvaluatorConfig
        from motionlcm.train.evaluator_system import EvaluatorSystem

        build_dataclass(EvaluatorConfig, config["model"], "model")
        assert set(config.get("system") or {}) <= arguments(EvaluatorSystem.__init__)
        assert set(config["data"]) <= arguments(HumanML3DDataModule.__init__)
        assert set(config["trainer"]) <= arguments(pl.Trainer.__init__)
        return
    if "model_dir" in config:  # a ControlNet run (train control)
        from motionlcm.data.hints import joint_set
        from motionlcm.models.controlnet import TrajectoryEncoderConfig
        from motionlcm.train.control_system import ControlSystem

        args = {"latent_size": 25, "latent_dim": 32, **(config.get("trajectory_encoder") or {})}
        build_dataclass(TrajectoryEncoderConfig, args, "trajectory_encoder")
        joint_set(config["control"]["joints"])
        from motionlcm.train.run import control_spec

        control_spec(config)  # every control key known, every joint set named right
        assert set(config.get("system") or {}) <= arguments(ControlSystem.__init__) | {"cond_act"}
        assert set(config["data"]) <= arguments(HumanML3DDataModule.__init__)
        assert set(config["trainer"]) <= arguments(pl.Trainer.__init__)
        return
    is_mld, is_lcm = "vae_dir" in config, "teacher_dir" in config
    if not is_lcm:  # a student's architecture is its teacher's
        model = dict(config["model"])
        if is_mld:
            model.setdefault("text_dim", 384)
        built = build_dataclass(DenoiserConfig if is_mld else VAEConfig, model, "model")
        assert built.num_layers % 2 == 1
    system = DistillSystem if is_lcm else TeacherSystem if is_mld else VAESystem
    assert set(config.get("system") or {}) <= arguments(system.__init__)
    assert set(config["data"]) <= arguments(HumanML3DDataModule.__init__)
    assert set(config["trainer"]) <= arguments(pl.Trainer.__init__)
    if is_mld:
        assert set(config.get("text_encoder") or {}) <= arguments(TextEncoder.__init__)
    if is_lcm:
        assert config["preset"] in PRESETS


def test_official_configs_use_the_paper_settings():
    vae = load_config(CONFIG_DIR / "vae.yaml")
    mld = load_config(CONFIG_DIR / "teacher.yaml")
    assert build_dataclass(VAEConfig, vae["model"], "model") == VAEConfig.v2()
    assert vae["system"]["lr"] == 2e-4 and vae["system"]["kl_weight"] == 1e-4 and vae["data"]["batch_size"] == 128
    assert mld["system"]["lr"] == 1e-4 and mld["system"]["cond_dropout"] == 0.1 and mld["data"]["batch_size"] == 64
    assert build_dataclass(VAEConfig, {"preset": "v1"}, "model") == VAEConfig.v1()
    for name, temporal in (("control-spatial", False), ("control-temporal", True)):
        control = load_config(CONFIG_DIR / f"{name}.yaml")  # official configs/motionlcm_control_{s,t}.yaml
        assert control["system"]["lr"] == 1e-4 and control["system"]["warmup_steps"] == 1000
        assert control["system"]["diffusion_weight"] == 1.0 and control["system"]["control_beta"] == 1.0
        assert control["data"]["batch_size"] == 128 and control["trajectory_encoder"]["arch"] == "transformer"
        assert control["control"]["temporal"] is temporal


def test_overrides_and_errors(tmp_path):
    config = load_config(CONFIG_DIR / "vae.yaml", ["trainer.max_steps=7", "model.preset=v1", "data.root=x"])
    assert config["trainer"]["max_steps"] == 7 and config["model"]["preset"] == "v1"
    assert parse_override("system.betas=[0.9, 0.99]") == (["system", "betas"], [0.9, 0.99])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_override("trainer.max_steps")
    with pytest.raises(ValueError, match="unknown section"):
        load_config(CONFIG_DIR / "vae.yaml", ["optimiser.lr=1"])
    with pytest.raises(ValueError, match="unknown field"):
        build_dataclass(VAEConfig, {"preset": "v2", "hiden_dim": 3}, "model")
    with pytest.raises(ValueError, match="unknown preset"):
        build_dataclass(VAEConfig, {"preset": "v3"}, "model")
