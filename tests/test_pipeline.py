"""Teacher training end to end (tiny VAE -> tiny MLD) and DDIM + CFG sampling through the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.data.cleanup import clean_joints
from motionlcm.data.features import FOOT_CONTACT, features_to_joints
from motionlcm.data.skeleton import TARGET_BONE_LENGTHS, bone_lengths
from motionlcm.pipeline import MotionLCM, resolve_lengths


def test_student_folder_samples_in_1_2_4_steps(student_dir, teacher_dir):
    pipe = MotionLCM.from_pretrained(student_dir, device="cpu")
    assert pipe.kind == "student" and pipe.denoiser.config.time_cond_proj_dim == 256
    calls = []
    original = pipe.denoiser.forward
    pipe.denoiser.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    for steps, guidance in ((1, 8.0), (2, 12.5), (4, 13.5)):  # V2 per-step guidance map
        calls.clear()
        motion = pipe("a person walks forward.", seconds=2.0, steps=steps, seed=3)[0]
        assert len(calls) == steps and motion.settings["guidance"] == guidance and motion.frames == 40
    a = pipe(["a person runs.", "a person waves."], frames=[40, 48], steps=2, seed=1)
    b = pipe(["a person runs.", "a person waves."], frames=[40, 48], steps=2, seed=1)
    assert np.array_equal(a[1].joints, b[1].joints) and a[1].frames == 48


def test_teacher_folder_samples_seeded_motions(teacher_dir):
    pipe = MotionLCM.from_pretrained(teacher_dir, device="cpu")
    assert pipe.kind == "teacher" and pipe.text_encoder.dim == 384
    prompts = ["a person walks forward.", "someone waves with the left hand."]
    first = pipe(prompts, seconds=[2.0, 3.0], steps=5, seed=7)
    again = pipe(prompts, seconds=[2.0, 3.0], steps=5, seed=7)
    other = pipe(prompts, seconds=[2.0, 3.0], steps=5, seed=8)
    assert [m.frames for m in first] == [40, 60] and first[0].joints.shape == (40, 22, 3)
    assert np.array_equal(first[1].features, again[1].features)
    assert not np.allclose(first[1].features, other[1].features)
    # the joints are the features' positions on the uniform skeleton, feet locked during their contact
    # labels (a 6-step model stretches bones a lot)
    raw = features_to_joints(first[1].features)
    assert np.allclose(clean_joints(raw, first[1].features[:, FOOT_CONTACT]), first[1].joints, atol=1e-5)
    assert np.abs(bone_lengths(first[1].joints) - TARGET_BONE_LENGTHS[1:]).max() < 1e-5
    assert np.abs(bone_lengths(raw) - TARGET_BONE_LENGTHS[1:]).max() > 0.01
    untouched = pipe(prompts, seconds=[2.0, 3.0], steps=5, seed=7, conform=False, foot_lock=False)
    assert np.allclose(untouched[1].joints, raw, atol=1e-5) and not untouched[1].settings["conformed"]
    assert first[0].settings == {
        "steps": 5,
        "guidance": 7.5,
        "seed": 7,
        "kind": "teacher",
        "conformed": True,
        "foot_lock": True,
    }
    batched = pipe(prompts, frames=[40, 60], steps=5, seed=7)  # batching is independent of the other prompt
    alone = pipe(prompts[:1], frames=40, steps=5, seed=7)
    assert np.allclose(batched[0].features, first[0].features)
    assert alone[0].frames == 40


def test_sample_latents_runs_only_the_sampler(teacher_dir):
    pipe = MotionLCM.from_pretrained(teacher_dir, device="cpu")
    cfg = pipe.vae.config
    noise = torch.randn(2, cfg.latent_size, cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    text = pipe.text_encoder(["a person runs.", "a person raises both hands."])
    a = pipe.sample_latents(text, noise, steps=4, guidance=7.5)
    b = pipe.sample_latents(text, noise, steps=4, guidance=1.0)
    assert a.shape == noise.shape and not torch.allclose(a, b)  # guidance changes the result


def test_lengths_are_validated():
    assert resolve_lengths(2, seconds=3.0) == [60, 60]
    assert resolve_lengths(2, frames=[10, 196]) == [10, 196]
    with pytest.raises(ValueError, match="exactly one"):
        resolve_lengths(1, seconds=1.0, frames=20)
    with pytest.raises(ValueError, match="outside 1..196"):
        resolve_lengths(1, seconds=12.0)
    with pytest.raises(ValueError, match="2 lengths for 3 prompts"):
        resolve_lengths(3, frames=[20, 30])


def test_a_distillation_run_re_exports_its_ema_target_weights(student_dir, tmp_path):
    from motionlcm.models.folder import load_model_folder
    from motionlcm.train.run import export_student_weights

    run_dir = Path(student_dir).parent
    online = load_model_folder(export_student_weights(run_dir, "online", tmp_path / "online"))
    target = load_model_folder(export_student_weights(run_dir, "target", tmp_path / "target"))
    shipped = load_model_folder(student_dir)
    assert target.meta["sampling"]["exported"] == "target"
    for key, value in shipped.denoiser.state_dict().items():
        assert torch.equal(online.denoiser.state_dict()[key], value)
    assert any(not torch.equal(target.denoiser.state_dict()[k], v) for k, v in shipped.denoiser.state_dict().items())


def test_shipped_folders_can_be_named_instead_of_given_as_paths(tmp_path, monkeypatch):
    from motionlcm.eval.protocol import load_evaluator
    from motionlcm.pipeline import resolve_model_dir, shipped_checkpoints_dirs

    shipped = shipped_checkpoints_dirs()[0]
    assert resolve_model_dir("bandai-namco-teacher") == shipped / "bandai-namco-teacher"
    assert resolve_model_dir("no-such-model") == Path("no-such-model")  # left for the loader to report
    assert resolve_model_dir("sub/bandai-namco") == Path("sub/bandai-namco")  # only bare names are looked up
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bandai-namco").mkdir()  # a folder of that name here wins over the shipped one
    assert resolve_model_dir("bandai-namco") == Path("bandai-namco")
    assert type(load_evaluator("bandai-namco-evaluator")).__name__ == "ContrastiveEvaluator"


def test_a_student_folder_naming_an_unknown_sampling_preset_is_refused(student_dir, tmp_path):
    from motionlcm.models.folder import load_model_folder, save_model_folder

    folder = load_model_folder(student_dir)
    meta = {**folder.meta, "sampling": {"scheduler": "v3"}}
    bad = save_model_folder(
        tmp_path / "v3",
        vae=folder.vae,
        denoiser=folder.denoiser,
        mean=folder.mean,
        std=folder.std,
        text_encoder=folder.text_encoder,
        meta=meta,
    )
    with pytest.raises(ValueError, match="meta.sampling.scheduler: 'v3' is not one of v1, v2"):
        MotionLCM.from_pretrained(bad, device="cpu")


def test_a_folder_may_record_its_own_tuned_guidance(student_dir, tmp_path):
    from motionlcm import presets
    from motionlcm.models.folder import load_model_folder, save_model_folder

    folder = load_model_folder(student_dir)

    def with_guidance(name, table):
        meta = {**folder.meta, "sampling": {**folder.meta["sampling"], "guidance": table}}
        return save_model_folder(tmp_path / name, vae=folder.vae, denoiser=folder.denoiser, mean=folder.mean,
                                 std=folder.std, text_encoder=folder.text_encoder, meta=meta)  # fmt: skip

    pipe = MotionLCM.from_pretrained(with_guidance("tuned", {"1": 6.5}), device="cpu")
    assert pipe.default_guidance(1) == 6.5 and pipe.resolve_sampling(None, None) == (1, 6.5)
    assert pipe.default_guidance(2) == presets.sampling_guidance("v2", 2)  # untuned counts keep the preset
    assert pipe(["a person walks."], frames=20, seed=0)[0].settings["guidance"] == 6.5
    for bad in ({"1": "high"}, {"0": 6.5}, {"1": float("nan")}, [6.5]):
        with pytest.raises(ValueError, match="meta.sampling.guidance"):
            MotionLCM.from_pretrained(with_guidance(f"bad{len(list(tmp_path.iterdir()))}", bad), device="cpu")


def test_a_model_reads_prompts_with_the_rewrites_its_training_captions_recorded(student_dir, teacher_dir, tmp_path):
    """Training on a BVH import records the caption rules' prompt rewrites (datasets/bandai-namco/captions.yaml:
    its captions name no gender); the pipeline encodes "she ... her left hand" as "the person ... the left hand",
    records what it read, and `rewrite_prompts = False` encodes the prompt as typed."""
    from motionlcm.data.captions import CaptionRules
    from motionlcm.models.folder import load_model_folder, save_model_folder

    rules = CaptionRules.load(Path(__file__).resolve().parents[1] / "datasets" / "bandai-namco" / "captions.yaml")
    for trained in (student_dir, teacher_dir):
        assert load_model_folder(trained).meta["prompt_rewrites"] == rules.prompt_rewrites.to_list()
    pipe = MotionLCM.from_pretrained(student_dir, device="cpu")
    typed, neutral = "She waves with her left hand", "The person waves with the left hand"
    assert pipe.read_prompt(typed) == neutral
    assert torch.equal(pipe.encode_text([typed]), pipe.encode_text([neutral]))
    motion, plain = pipe([typed, neutral], frames=24, seed=3)
    assert motion.text == typed and motion.settings["prompt_read_as"] == neutral
    assert "prompt_read_as" not in plain.settings
    np.testing.assert_allclose(motion.joints, pipe([neutral], frames=24, seed=3)[0].joints, atol=1e-5)  # batch of 1
    pipe.rewrite_prompts = False
    assert not torch.equal(pipe.encode_text([typed]), pipe.encode_text([neutral]))
    assert "prompt_read_as" not in pipe([typed], frames=24, seed=3)[0].settings

    folder = load_model_folder(student_dir)
    bad = save_model_folder(tmp_path / "bad", vae=folder.vae, denoiser=folder.denoiser, mean=folder.mean,
                            std=folder.std, text_encoder=folder.text_encoder,
                            meta={**folder.meta, "prompt_rewrites": [{"pattern": "(", "replace": "x"}]})  # fmt: skip
    with pytest.raises(ValueError, match=r"meta.prompt_rewrites\[0\].pattern: not a valid regular expression"):
        MotionLCM.from_pretrained(bad, device="cpu")
