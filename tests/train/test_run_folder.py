"""The run folder: --force starts over, --resume needs a checkpoint."""

from __future__ import annotations

import pytest

from motionlcm.train.run import _paths


def _old_run(out):
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"old")
    (out / "logs" / "version_0").mkdir(parents=True)
    (out / "logs" / "version_0" / "metrics.csv").write_text("step,loss\n0,1.0\n")
    (out / "model").mkdir()
    (out / "model" / "model.json").write_text("{}")


def test_force_discards_the_old_runs_checkpoints_and_logs_and_keeps_its_model(tmp_path):
    out = tmp_path / "run"
    _old_run(out)
    with pytest.raises(ValueError, match="holds a run already"):
        _paths({"output_dir": str(out)}, resume=False, force=False)
    assert (out / "checkpoints" / "last.ckpt").is_file()  # refused: nothing touched
    assert _paths({"output_dir": str(out)}, resume=False, force=True) == (out, None)
    assert not (out / "checkpoints").exists() and not (out / "logs").exists()
    assert (out / "model" / "model.json").read_text() == "{}"  # replaced only when the new run exports


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        _paths({"output_dir": str(tmp_path / "none")}, resume=True, force=False)


def test_a_teacher_checkpoint_exports_as_the_model_folder_the_run_ends_with(teacher_dir, tmp_path):
    """`export_teacher_checkpoint` turns an intermediate checkpoint into a model folder that loads and samples:
    from last.ckpt it is exactly the run's own export; an earlier checkpoint gives other weights."""
    import torch

    from motionlcm.models.folder import load_model_folder
    from motionlcm.train.run import export_teacher_checkpoint

    run = teacher_dir.parent
    final = load_model_folder(teacher_dir)
    exported = load_model_folder(export_teacher_checkpoint(run, "last.ckpt", tmp_path / "last"))
    assert exported.kind == "teacher" and exported.meta["steps"] == final.meta["steps"]
    assert exported.meta["prompt_rewrites"] == final.meta["prompt_rewrites"]
    assert exported.text_encoder == final.text_encoder
    for (name, a), b in zip(exported.denoiser.state_dict().items(), final.denoiser.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # another checkpoint: the denoiser weights of that file, and its step
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    key = next(k for k in state["state_dict"] if k.startswith("denoiser."))
    state["state_dict"][key] = state["state_dict"][key] + 1.0
    state["global_step"] = 3
    torch.save(state, run / "checkpoints" / "edited.ckpt")
    try:
        other = load_model_folder(export_teacher_checkpoint(run, "edited.ckpt", tmp_path / "edited"))
    finally:
        (run / "checkpoints" / "edited.ckpt").unlink()
    assert other.meta["steps"] == 3
    name = key[len("denoiser.") :]
    assert torch.allclose(other.denoiser.state_dict()[name], final.denoiser.state_dict()[name] + 1.0)
