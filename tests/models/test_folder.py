"""Tests for motionlcm.models.folder: round trips, kinds, dtypes, atomic writes and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from motionlcm.models import DenoiserConfig, LatentDenoiser, MotionVAE, VAEConfig
from motionlcm.models import folder as folder_module
from motionlcm.models.folder import load_model_folder, save_model_folder

TEXT_REF = {"kind": "test-encoder", "path": "/models/enc", "dim": 16}


@pytest.fixture(scope="module")
def modules() -> tuple[MotionVAE, LatentDenoiser]:
    torch.manual_seed(0)
    vae = MotionVAE(VAEConfig.tiny()).eval()
    student = LatentDenoiser(DenoiserConfig.tiny(16, time_cond_proj_dim=32)).eval()
    torch.nn.init.normal_(student.time_embedding.cond_proj.weight, std=0.1)
    return vae, student


def _stats() -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(-1, 1, 263, dtype=np.float32), np.linspace(0.5, 2, 263, dtype=np.float32)


def _outputs(vae: MotionVAE, denoiser: LatentDenoiser) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x, z = torch.randn(2, 9, 263, generator=gen), torch.randn(2, 2, 8, generator=gen)
    text, w = torch.randn(2, 1, 16, generator=gen), torch.randn(2, 32, generator=gen)
    with torch.no_grad():
        mu = vae.encode(x, [9, 4], use_mean=True)[0]
        return mu, vae.decode(z, [9, 4]), denoiser(z, torch.tensor([10, 900]), text, w)


def test_round_trip_gives_identical_outputs(tmp_path: Path, modules) -> None:
    vae, student = modules
    mean, std = _stats()
    out = save_model_folder(
        tmp_path / "m", vae=vae, denoiser=student, mean=mean, std=std, text_encoder=TEXT_REF, meta={"step": 7}
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "Mean.npy",
        "Std.npy",
        "denoiser.safetensors",
        "model.json",
        "vae.safetensors",
    ]
    header = json.loads((out / "model.json").read_text())
    assert (header["format"], header["format_version"], header["kind"]) == ("motionlcm-model", 1, "student")
    assert header["vae"] == vae.config.to_dict() and header["denoiser"]["time_cond_proj_dim"] == 32
    assert "vae." not in "".join(load_file(out / "vae.safetensors"))  # official names, no prefix

    loaded = load_model_folder(out)
    assert loaded.kind == "student" and loaded.path == out
    assert loaded.vae.config == vae.config and loaded.denoiser.config == student.config
    assert not loaded.vae.training and not loaded.denoiser.training
    assert loaded.text_encoder == TEXT_REF and loaded.meta == {"step": 7}
    np.testing.assert_array_equal(loaded.mean, mean)
    np.testing.assert_array_equal(loaded.std, std)
    for a, b in zip(_outputs(vae, student), _outputs(loaded.vae, loaded.denoiser), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_kinds(tmp_path: Path, modules) -> None:
    vae, _ = modules
    teacher = LatentDenoiser(DenoiserConfig.tiny(16))
    assert load_model_folder(save_model_folder(tmp_path / "v", vae=vae)).kind == "vae"
    loaded = load_model_folder(save_model_folder(tmp_path / "t", vae=vae, denoiser=teacher))
    assert loaded.kind == "teacher" and loaded.mean is None and loaded.text_encoder is None
    with pytest.raises(ValueError, match="neither"):
        save_model_folder(tmp_path / "e")


def test_folders_written_with_the_papers_kind_names_load_as_their_role(tmp_path: Path, modules) -> None:
    vae, student = modules
    teacher = LatentDenoiser(DenoiserConfig.tiny(16))
    for name, denoiser, role in (("mld", teacher, "teacher"), ("lcm", student, "student")):
        out = save_model_folder(tmp_path / name, vae=vae, denoiser=denoiser)
        header = json.loads((out / "model.json").read_text())
        (out / "model.json").write_text(json.dumps({**header, "kind": name}))  # as earlier versions wrote it
        assert load_model_folder(out).kind == role
    header["kind"] = "mld"  # a student's weights under the teacher's name is still refused
    (tmp_path / "lcm" / "model.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="does not match"):
        load_model_folder(tmp_path / "lcm")


def test_float16_storage(tmp_path: Path, modules) -> None:
    vae, student = modules
    out = save_model_folder(tmp_path / "h", vae=vae, denoiser=student, dtype=torch.float16)
    assert {t.dtype for t in load_file(out / "denoiser.safetensors").values()} == {torch.float16}
    loaded = load_model_folder(out)
    assert loaded.vae.final_layer.weight.dtype == torch.float32
    for a, b in zip(_outputs(vae, student), _outputs(loaded.vae, loaded.denoiser), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0.05)


def test_overwrite_rules(tmp_path: Path, modules) -> None:
    vae, student = modules
    target = save_model_folder(tmp_path / "m", vae=vae)
    with pytest.raises(ValueError, match="already exists"):
        save_model_folder(target, vae=vae, denoiser=student)
    save_model_folder(target, vae=vae, denoiser=student, overwrite=True)
    assert load_model_folder(target).kind == "student"
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a model folder"):
        save_model_folder(other, vae=vae, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "precious"]  # no temporary leftovers


def test_failed_write_leaves_nothing(tmp_path: Path, modules, monkeypatch) -> None:
    vae, student = modules

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(folder_module, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model_folder(tmp_path / "m", vae=vae, denoiser=student)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path: Path, modules) -> None:
    vae, _ = modules
    mean, std = _stats()
    with pytest.raises(ValueError, match="both or neither"):
        save_model_folder(tmp_path / "m", vae=vae, mean=mean)
    with pytest.raises(ValueError, match="mean: expected shape"):
        save_model_folder(tmp_path / "m", vae=vae, mean=mean[:10], std=std[:10])
    with pytest.raises(ValueError, match="JSON"):
        save_model_folder(tmp_path / "m", vae=vae, meta={"bad": object()})
    wide = LatentDenoiser(DenoiserConfig.tiny(16, latent_dim=4))
    with pytest.raises(ValueError, match="do not match the vae"):
        save_model_folder(tmp_path / "m", vae=vae, denoiser=wide)
    assert list(tmp_path.iterdir()) == []


def test_load_errors_name_the_folder_and_file(tmp_path: Path, modules) -> None:
    vae, student = modules
    with pytest.raises(ValueError, match="not a model folder"):
        load_model_folder(tmp_path / "nothing")
    out = save_model_folder(tmp_path / "m", vae=vae, denoiser=student, mean=_stats()[0], std=_stats()[1])

    header = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**header, "format": "something-else"}))
    with pytest.raises(ValueError, match=r"model\.json: unknown format 'something-else'"):
        load_model_folder(out)
    (out / "model.json").write_text(json.dumps({**header, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version"):
        load_model_folder(out)
    (out / "model.json").write_text(json.dumps(header))

    weights = load_file(out / "vae.safetensors")
    weights["global_motion_token"] = torch.zeros(3, 32)
    del weights["final_layer.bias"]
    save_file(weights, out / "vae.safetensors")
    with pytest.raises(
        ValueError,
        match=r"vae\.safetensors: weights do not match.*1 missing \[final_layer\.bias\]"
        r".*global_motion_token expects \(4, 32\), got \(3, 32\)",
    ):
        load_model_folder(out)

    (out / "vae.safetensors").unlink()
    with pytest.raises(ValueError, match=r"vae\.safetensors: missing"):
        load_model_folder(out)


def test_non_finite_weights_bad_statistics_and_bad_config_types_are_refused(tmp_path: Path, modules) -> None:
    vae, student = modules
    mean, std = _stats()
    out = save_model_folder(tmp_path / "m", vae=vae, denoiser=student, mean=mean, std=std)
    header = json.loads((out / "model.json").read_text())
    good_weights = load_file(out / "denoiser.safetensors")
    broken = {k: v.clone() for k, v in good_weights.items()}
    broken["latent_post.weight"][0, 0] = float("nan")
    save_file(broken, out / "denoiser.safetensors")
    with pytest.raises(ValueError, match=r"denoiser\.safetensors: tensor latent_post\.weight holds NaN"):
        load_model_folder(out)
    save_file(good_weights, out / "denoiser.safetensors")
    load_model_folder(out)  # repaired

    bad_stats = {
        "Mean.npy": (np.full(263, np.nan, np.float32), "NaN"),
        "Std.npy": (np.zeros(263, np.float32), "non-positive"),
    }
    for name, (array, message) in bad_stats.items():
        np.save(out / name, array)
        with pytest.raises(ValueError, match=rf"{name}: holds .*{message}"):
            load_model_folder(out)
        np.save(out / name, mean if name == "Mean.npy" else std)
    for array, message in (
        (np.zeros(262, np.float32), r"expected shape \(263,\)"),
        (np.zeros((263, 1), np.float32), r"expected shape \(263,\)"),
        (np.array(["x"] * 263), "dtype"),
    ):
        np.save(out / "Mean.npy", array)
        with pytest.raises(ValueError, match=rf"Mean\.npy: .*{message}"):
            load_model_folder(out)
    np.save(out / "Mean.npy", mean)

    for section, key, value, message in (
        ("vae", "hidden_dim", 1e12, "hidden_dim: expected int"),
        ("vae", "hidden_dim", "64", "hidden_dim: expected int"),
        ("denoiser", "dropout", "0.1", "dropout: expected float"),
        ("vae", "num_layers", 2**40, "num_layers: expected int of at most"),
    ):
        (out / "model.json").write_text(json.dumps({**header, section: {**header[section], key: value}}))
        with pytest.raises(ValueError, match=rf"model\.json: bad config \({message}"):
            load_model_folder(out)
    (out / "model.json").write_text(json.dumps({**header, "files": "vae.safetensors"}))
    with pytest.raises(ValueError, match=r"model\.json: files: expected an object"):
        load_model_folder(out)
