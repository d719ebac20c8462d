"""The shipped recipe's architecture end to end at tiny size: a conv VAE with segment latents, an MLD
teacher conditioned on text tokens, its LCM student, and generation through the pipeline, where the
tokens past a motion's length must not matter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from motionlcm.config import load_config
from motionlcm.models.folder import load_model_folder
from motionlcm.pipeline import MotionLCM
from motionlcm.train.run import train

REPO = Path(__file__).resolve().parents[2]
CONV = [
    "model.preset=null",
    "model.arch=conv",
    "model.latent_frames=8",
    "model.latent_size=25",
    "model.latent_dim=8",
    "model.hidden_dim=32",
    "model.num_layers=1",
    "model.max_len=200",
    "data.bucket_by_length=true",
]


@pytest.fixture(scope="module")
def student(bn_dataset_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segment")
    common = [f"data.root={bn_dataset_dir}", "trainer.max_steps=4", "checkpoint.every_n_steps=2"]
    vae = train(
        "vae",
        load_config(REPO / "configs" / "tiny" / "vae.yaml", common + CONV + [f"output_dir={root / 'vae'}"]),
        progress=False,
    )
    mld = train(
        "mld",
        load_config(
            REPO / "configs" / "tiny" / "teacher.yaml",
            common + [f"output_dir={root / 'mld'}", f"vae_dir={vae}", "text_encoder.tokens=8"],
        ),
        progress=False,
    )
    return train(
        "lcm",
        load_config(
            REPO / "configs" / "tiny" / "student.yaml", common + [f"output_dir={root / 'lcm'}", f"teacher_dir={mld}"]
        ),
        progress=False,
    )


def test_folders_keep_the_conv_vae_and_the_text_tokens(student) -> None:
    folder = load_model_folder(student)
    assert folder.vae.config.arch == "conv" and folder.text_encoder["tokens"] == 8


@pytest.mark.parametrize("steps", [1, 2])
def test_generation_ignores_latent_tokens_past_the_length(student, steps) -> None:
    pipe = MotionLCM.from_pretrained(student)
    generator = torch.Generator().manual_seed(0)
    short = pipe.generate_features(["a person waves"], [30], steps, 8.0, generator)
    noise = torch.randn(1, 25, 8, generator=torch.Generator().manual_seed(0))
    text = pipe.encode_text(["a person waves"])
    base = pipe.sample_latents(text, noise, steps, 8.0, torch.Generator().manual_seed(1), [30])
    changed = noise.clone()
    changed[:, 4:] = 7.0  # 30 frames use the first 4 tokens of 8 frames
    again = pipe.sample_latents(text, changed, steps, 8.0, torch.Generator().manual_seed(1), [30])
    assert torch.allclose(base[:, :4], again[:, :4], atol=1e-5)
    assert short.shape == (1, 30, 263) and torch.isfinite(short).all()
