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
