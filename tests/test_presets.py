"""motionlcm/presets.py is the one home of the V1/V2 numbers: every consumer must build from it."""

from __future__ import annotations

import ast
from dataclasses import asdict
from pathlib import Path

import pytest

from motionlcm import presets
from motionlcm.diffusion.lcm import LCMScheduler
from motionlcm.models.denoiser import DenoiserConfig
from motionlcm.models.vae import VAEConfig


@pytest.mark.parametrize("version", presets.VERSIONS)
def test_model_configs_carry_the_preset_fields(version):
    vae, denoiser = asdict(getattr(VAEConfig, version)()), asdict(getattr(DenoiserConfig, version)())
    assert {k: vae[k] for k in presets.VAE[version]} == presets.VAE[version]
    assert {k: denoiser[k] for k in presets.DENOISER[version]} == presets.DENOISER[version]


def test_v1_and_v2_models_differ_where_the_official_configs_do():
    assert (VAEConfig.v1().latent_size, VAEConfig.v1().latent_dim) == (1, 256)
    assert (VAEConfig.v2().latent_size, VAEConfig.v2().latent_dim) == (16, 32)
    assert DenoiserConfig.v1().text_act == "relu" and DenoiserConfig.v2().text_act is None


@pytest.mark.parametrize("version", presets.VERSIONS)
def test_scheduler_presets_and_guidance(version):
    config = getattr(LCMScheduler, version)().config
    for key, value in presets.SAMPLING[version].items():
        assert config[key] == value
    if version == "v2":  # the scheduler's step map is a copy: editing it must not change the preset
        config["timesteps_step_map"][1].append(0)
        assert presets.SAMPLING["v2"]["timesteps_step_map"][1] == [799]
    assert presets.sampling_guidance("v2", 2) == 12.5 and presets.sampling_guidance("v2", 3) == 8.0
    assert presets.sampling_guidance("v1", 4) == 7.5


def test_distillation_reads_the_presets_and_unknown_versions_are_named():
    from motionlcm.train.distill_system import PRESETS

    assert PRESETS is presets.DISTILLATION
    assert presets.DISTILLATION["v2"] == {"num_ddim_timesteps": 10, "huber_c": 0.5}
    with pytest.raises(ValueError, match="config: preset: 'v3' is not one of v1, v2"):
        presets.check_version("v3", "config: preset")


def test_presets_sit_at_the_bottom_of_the_package():
    tree = ast.parse(Path(presets.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("motionlcm")]
