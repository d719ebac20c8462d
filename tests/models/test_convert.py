"""Tests for motionlcm.models.convert: official checkpoints -> model folders, validation and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.models import DenoiserConfig, LatentDenoiser, MotionVAE, VAEConfig
from motionlcm.models.convert import (
    DEFAULT_TEXT_ENCODER,
    convert_official_checkpoint,
    detect_kind,
    load_official_state_dict,
    official_configs,
    split_official_state_dict,
)
from motionlcm.models.folder import load_model_folder
from tests.models.official_layout import cheap_tensor, fake_official_state_dict


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Full-size forwards of tiny batches are op-overhead bound: one intra-op thread is faster, and several
    times faster on a busy 2-core machine where OpenMP threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _official_checkpoint(path: Path, vae: MotionVAE, denoiser: LatentDenoiser | None) -> Path:
    """Lay our modules out as the official training scripts save them (prefixes + evaluator keys)."""
    sd = {f"vae.{k}": v for k, v in vae.state_dict().items()}
    if denoiser is not None:
        sd |= {f"denoiser.{k}": v for k, v in denoiser.state_dict().items()}
    sd["t2m_moveencoder.main.0.weight"] = torch.randn(512, 259, 4)
    sd["t2m_moveencoder.main.0.bias"] = torch.randn(512)
    sd["t2m_textencoder.hidden"] = torch.randn(2, 1, 512)
    torch.save({"state_dict": sd}, path)
    return path


def _outputs(vae: MotionVAE, denoiser: LatentDenoiser, guidance: bool) -> list[torch.Tensor]:
    c = vae.config
    gen = torch.Generator().manual_seed(1)
    x, z = torch.randn(2, 12, 263, generator=gen), torch.randn(2, c.latent_size, c.latent_dim, generator=gen)
    text = torch.randn(2, 1, 768, generator=gen)
    w_emb = guidance_scale_embedding(torch.tensor([6.5, 11.5]), 256) if guidance else None
    with torch.no_grad():
        _, dist = vae.encode(x, [12, 7])
        return [
            dist.loc,
            dist.scale,
            vae.decode(z, [12, 7]),
            denoiser(z, torch.tensor([799, 299]), text, w_emb),
        ]


@pytest.fixture(scope="module")
def v2_student() -> tuple[MotionVAE, LatentDenoiser]:
    """Full-size V2 VAE and LCM student (cond_proj made non-zero so the guidance path is exercised)."""
    torch.manual_seed(0)
    vae = MotionVAE(VAEConfig.v2()).eval()
    denoiser = LatentDenoiser(DenoiserConfig.v2(time_cond_proj_dim=256)).eval()
    torch.nn.init.normal_(denoiser.time_embedding.cond_proj.weight, std=0.02)
    return vae, denoiser


def _check_round_trip(tmp_path: Path, version: str, vae: MotionVAE, denoiser: LatentDenoiser) -> None:
    ckpt = _official_checkpoint(tmp_path / "model.ckpt", vae, denoiser)
    stats = tmp_path / "stats"
    stats.mkdir()
    np.save(stats / "Mean.npy", np.zeros(263, np.float32))
    np.save(stats / "Std.npy", np.ones(263, np.float32))

    out = convert_official_checkpoint(ckpt, version, tmp_path / "converted", mean_std_dir=stats)
    loaded = load_model_folder(out)
    lcm = denoiser.config.is_lcm
    assert loaded.kind == ("student" if lcm else "teacher")
    assert loaded.text_encoder == DEFAULT_TEXT_ENCODER
    assert loaded.meta["evaluator_keys_ignored"] == 3
    assert loaded.meta["source"]["version"] == version and loaded.meta["source"]["file"] == "model.ckpt"
    np.testing.assert_array_equal(loaded.std, np.ones(263, np.float32))
    for a, b in zip(_outputs(vae, denoiser, lcm), _outputs(loaded.vae, loaded.denoiser, lcm), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_round_trip_v2_lcm_gives_identical_outputs(tmp_path: Path, v2_student) -> None:
    _check_round_trip(tmp_path, "v2", *v2_student)


def test_round_trip_v1_teacher_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _check_round_trip(tmp_path, "v1", MotionVAE(VAEConfig.v1()).eval(), LatentDenoiser(DenoiserConfig.v1()).eval())


def test_vae_only_checkpoint_and_notes(tmp_path: Path, v2_student) -> None:
    ckpt = _official_checkpoint(tmp_path / "vae.ckpt", v2_student[0], None)
    out = convert_official_checkpoint(ckpt, "v2", tmp_path / "m")
    loaded = load_model_folder(out)
    assert loaded.kind == "vae" and loaded.denoiser is None and loaded.mean is None
    assert any("Mean.npy/Std.npy" in note for note in loaded.meta["notes"])
    header = json.loads((out / "model.json").read_text())
    assert header["files"]["denoiser"] is None
    with pytest.raises(ValueError, match="already exists"):
        convert_official_checkpoint(ckpt, "v2", out)


@pytest.mark.parametrize("kind", ["vae", "mld", "lcm"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_kind_detection_and_configs(version: str, kind: str) -> None:
    sd = fake_official_state_dict(version, kind)  # the official layouts' names: mld, lcm
    assert detect_kind(sd) == {"mld": "teacher", "lcm": "student"}.get(kind, kind)
    vae_config, den_config = official_configs(version, sd)
    assert vae_config == getattr(VAEConfig, version)()
    assert (den_config is None) == (kind == "vae")
    if den_config is not None:
        assert den_config.time_cond_proj_dim == (256 if kind == "lcm" else None)
    vae_sd, den_sd, found = split_official_state_dict(sd, version)
    assert found == detect_kind(sd) and "global_motion_token" in vae_sd
    assert (den_sd is None) == (kind == "vae")


def test_kit_feature_size_is_read_from_the_checkpoint() -> None:
    sd = fake_official_state_dict("v2", "mld")
    sd["vae.skel_embedding.weight"] = cheap_tensor((256, 251))
    sd["vae.final_layer.weight"] = cheap_tensor((251, 256))
    sd["vae.final_layer.bias"] = cheap_tensor((251,))
    assert official_configs("v2", sd)[0].nfeats == 251
    split_official_state_dict(sd, "v2")


def test_a_one_dimensional_guidance_projection_is_refused_with_its_key() -> None:
    sd = fake_official_state_dict("v2", "lcm")
    sd["denoiser.time_embedding.cond_proj.weight"] = cheap_tensor((256,))
    with pytest.raises(ValueError, match=r"cond_proj\.weight: expected a 2-D weight .*got shape \(256,\)"):
        official_configs("v2", sd)


def test_v1_checkpoint_converted_as_v2_fails_with_hint(tmp_path: Path) -> None:
    sd = fake_official_state_dict("v1", "lcm")
    with pytest.raises(ValueError) as info:
        split_official_state_dict(sd, "v2", source="x.ckpt (v2)")
    message = str(info.value)
    assert message.startswith("x.ckpt (v2): does not match the official v2 layout")
    assert "vae.global_motion_token expects (32, 256), got (2, 256)" in message
    assert "8 missing [vae.latent_pre.weight" in message  # 4 vae + 4 denoiser projection keys
    assert message.endswith("is this a V1 checkpoint? use --version v1")
    with pytest.raises(ValueError, match="is this a V2 checkpoint"):
        split_official_state_dict(fake_official_state_dict("v2", "vae"), "v1")
    ckpt = tmp_path / "v1.ckpt"
    torch.save({"state_dict": sd}, ckpt)  # stride-0 tensors: a tiny file
    with pytest.raises(ValueError, match=r"v1\.ckpt \(v2\): does not match.*use --version v1"):
        convert_official_checkpoint(ckpt, "v2", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_unexpected_and_wrong_shapes_are_listed_together() -> None:
    sd = fake_official_state_dict("v2", "mld")
    del sd["denoiser.encoder.norm.weight"]
    sd["denoiser.encoder.extra.weight"] = cheap_tensor((3,))
    sd["vae.query_pos_encoder.pe"] = cheap_tensor((200, 1, 256))
    sd["mystery.weight"] = cheap_tensor((1,))
    with pytest.raises(ValueError) as info:
        split_official_state_dict(sd, "v2")
    message = str(info.value)
    assert "1 wrong shape [vae.query_pos_encoder.pe expects (500, 1, 256), got (200, 1, 256)]" in message
    assert "1 missing [denoiser.encoder.norm.weight]" in message
    assert "2 unexpected [denoiser.encoder.extra.weight, mystery.weight]" in message
    assert "use --version" not in message


def test_many_problems_are_truncated_with_counts() -> None:
    sd = {k: v for k, v in fake_official_state_dict("v2", "mld").items() if "encoder.input_blocks" not in k}
    with pytest.raises(ValueError, match=r"96 missing \[(vae\.encoder\.input_blocks\.0\.[\w.]+, ){10}\.\.\.\]$"):
        split_official_state_dict(sd, "v2")


def test_control_and_text_encoder_keys_are_ignored_with_a_note(tmp_path: Path, v2_student) -> None:
    sd = {f"vae.{k}": v for k, v in v2_student[0].state_dict().items()}
    sd |= {
        "controlnet.controlnet_down_mid_blocks.0.weight": torch.zeros(2, 2),
        "traj_encoder.pe": torch.zeros(2),
    }
    sd["text_encoder.model.weight"] = torch.zeros(2)
    torch.save({"state_dict": sd}, tmp_path / "c.ckpt")
    meta = load_model_folder(convert_official_checkpoint(tmp_path / "c.ckpt", "v2", tmp_path / "m")).meta
    assert meta["unsupported_keys_ignored"] == 2 and meta["text_encoder_keys_ignored"] == 1
    assert any("motion-control" in note for note in meta["notes"])


def test_unsafe_or_malformed_files_are_refused(tmp_path: Path) -> None:
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {"vae.x": torch.zeros(1)}, "hparams": _Opaque()}, pickled)
    with pytest.raises(ValueError, match=r"pickled\.ckpt: holds pickled objects other than tensors.*_Opaque"):
        load_official_state_dict(pickled)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_official_state_dict(garbage)
    flat = tmp_path / "flat.ckpt"
    torch.save({"vae.x": torch.zeros(1)}, flat)
    with pytest.raises(ValueError, match="'state_dict' entry"):
        load_official_state_dict(flat)
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_official_state_dict(tmp_path / "absent.ckpt")
    with pytest.raises(ValueError, match="version: unknown 'v3'"):
        split_official_state_dict(fake_official_state_dict("v2", "vae"), "v3")
    with pytest.raises(ValueError, match="not a MotionLCM/MLD checkpoint"):
        detect_kind({"foo.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"^f\.ckpt: not a MotionLCM/MLD checkpoint"):
        split_official_state_dict({"t2m_textencoder.hidden": torch.zeros(1)}, "v2", source="f.ckpt")


class _Opaque:
    """An arbitrary picklable object: weights_only loading must refuse it."""


# ------------------------------------------------------------------------------------------- control checkpoints


def _hint_stats(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "Mean_raw.npy", rng.normal(size=66).astype(np.float32))  # official: flat (66,)
    np.save(folder / "Std_raw.npy", rng.uniform(0.1, 1.0, size=66).astype(np.float32))
    return folder


def test_official_control_layouts_are_the_documented_ones() -> None:
    """Our ControlNet and trajectory encoder have exactly the keys and shapes of the official ones (written out by
    hand from shared/docs/motionlcm-reference.md section 11.2, not from our modules)."""
    from motionlcm.models.controlnet import ControlNet, TrajectoryEncoder, TrajectoryEncoderConfig
    from tests.models.official_layout import controlnet_shapes, shapes_of, traj_encoder_shapes

    for version, act in (("v1", None), ("v2", "silu")):
        with torch.device("meta"):
            net = ControlNet(getattr(DenoiserConfig, version)(time_cond_proj_dim=256), act)
            encoder = TrajectoryEncoder(getattr(TrajectoryEncoderConfig, version)())
        assert shapes_of(net) == controlnet_shapes(version)
        assert shapes_of(encoder) == traj_encoder_shapes(version)


def test_control_checkpoint_round_trip_gives_identical_control(tmp_path: Path, v2_student) -> None:
    """An official s_all checkpoint (our modules laid out as official keys, random weights) converts into a model
    folder with an installed controller whose residuals are identical to the original modules'."""
    from motionlcm.models.control_folder import denoiser_fingerprint, load_control_folder
    from motionlcm.models.controlnet import TrajectoryEncoder, TrajectoryEncoderConfig, controlnet_from_denoiser

    vae, denoiser = v2_student
    torch.manual_seed(3)
    net = controlnet_from_denoiser(denoiser).eval()
    encoder = TrajectoryEncoder(TrajectoryEncoderConfig.v2()).eval()
    with torch.no_grad():  # non-zero zero-convolutions, so the residuals carry the condition
        for p in [*net.controlnet_cond_embedding.parameters(), *net.controlnet_down_mid_blocks.parameters()]:
            p.normal_(0.0, 0.02)
    ckpt = _official_checkpoint(tmp_path / "motionlcm_humanml_s_all.ckpt", vae, denoiser)
    sd = torch.load(ckpt, weights_only=True)["state_dict"]
    sd |= {f"controlnet.{k}": v for k, v in net.state_dict().items()}
    sd |= {f"traj_encoder.{k}": v for k, v in encoder.state_dict().items()}
    torch.save({"state_dict": sd}, ckpt)
    out = convert_official_checkpoint(ckpt, "v2", tmp_path / "converted", hint_stats_dir=_hint_stats(tmp_path / "n"))
    loaded = load_model_folder(out)
    assert loaded.meta["unsupported_keys_ignored"] == 0 and not any("motion-control" in n for n in loaded.meta["notes"])
    controller = load_control_folder(out / "control" / "all")
    assert controller.joints == (0, 10, 11, 15, 20, 21) and controller.spatial and not controller.temporal
    assert controller.base_fingerprint == denoiser_fingerprint(loaded.denoiser)
    np.testing.assert_array_equal(controller.hint_normalizer.mean.reshape(-1), np.load(tmp_path / "n" / "Mean_raw.npy"))
    gen = torch.Generator().manual_seed(2)
    hints = torch.randn(2, 40, 22, 3, generator=gen)
    mask = torch.zeros(2, 40, 22, 3, dtype=torch.bool)
    mask[0, :, 0], mask[1, ::7, 20] = True, True
    z, text = torch.randn(2, 16, 32, generator=gen), torch.randn(2, 1, 768, generator=gen)
    w = guidance_scale_embedding(torch.tensor([8.0, 8.0]), 256)
    with torch.no_grad():
        for a, b in (((net, encoder), (controller.controlnet, controller.trajectory_encoder)),):
            cond_a, cond_b = a[1](hints, mask), b[1](hints, mask)
            torch.testing.assert_close(cond_a, cond_b, rtol=0, atol=0)
            t = torch.tensor([799, 799])
            for ra, rb in zip(
                a[0](z, t, text, w, condition=cond_a), b[0](z, t, text, w, condition=cond_b), strict=True
            ):
                torch.testing.assert_close(ra, rb, rtol=0, atol=0)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_documented_control_layout_converts_and_kind_comes_from_the_name(tmp_path: Path, version: str) -> None:
    sd = fake_official_state_dict(version, "control")
    for name, expected in (("motionlcm_humanml_t.ckpt", "temporal"), ("motionlcm_humanml_s_pelvis.ckpt", "pelvis")):
        torch.save({"state_dict": sd}, tmp_path / name)
        out = convert_official_checkpoint(
            tmp_path / name, version, tmp_path / f"m-{expected}", hint_stats_dir=_hint_stats(tmp_path / f"n-{expected}")
        )
        assert [p.name for p in (out / "control").iterdir()] == [expected]
    from motionlcm.models.control_folder import load_control_folder

    temporal = load_control_folder(tmp_path / "m-temporal" / "control" / "temporal")
    assert temporal.temporal and not temporal.spatial and temporal.prefix_joints == (0, 10, 11, 15, 20, 21)


def test_control_conversion_refusals(tmp_path: Path) -> None:
    sd = fake_official_state_dict("v1", "control")
    torch.save({"state_dict": sd}, tmp_path / "mine.ckpt")
    stats = _hint_stats(tmp_path / "n")
    with pytest.raises(ValueError, match=r"mine\.ckpt: give --control pelvis \| all \| temporal"):
        convert_official_checkpoint(tmp_path / "mine.ckpt", "v1", tmp_path / "a", hint_stats_dir=stats)
    with pytest.raises(ValueError, match=r"does not match the official v2 layout.*is this a V1 checkpoint"):
        convert_official_checkpoint(tmp_path / "mine.ckpt", "v2", tmp_path / "b", hint_stats_dir=stats, control="all")
    bad = dict(sd)
    bad["traj_encoder.global_motion_token"] = cheap_tensor((16, 256))  # a V2 token in a V1 encoder
    torch.save({"state_dict": bad}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match=r"traj_encoder\.global_motion_token expects \(1, 256\), got \(16, 256\)"):
        convert_official_checkpoint(tmp_path / "bad.ckpt", "v1", tmp_path / "c", hint_stats_dir=stats, control="all")
    (tmp_path / "n" / "Std_raw.npy").unlink()
    with pytest.raises(ValueError, match=r"Std_raw\.npy: missing"):
        convert_official_checkpoint(tmp_path / "mine.ckpt", "v1", tmp_path / "d", hint_stats_dir=stats, control="all")
    assert not any((tmp_path / x).exists() for x in "abcd")  # nothing half-written
    teacher = fake_official_state_dict("v1", "mld")
    torch.save({"state_dict": teacher}, tmp_path / "t.ckpt")
    with pytest.raises(ValueError, match="--hint-stats is for motion-control checkpoints"):
        convert_official_checkpoint(
            tmp_path / "t.ckpt", "v1", tmp_path / "e", hint_stats_dir=_hint_stats(tmp_path / "n2")
        )
