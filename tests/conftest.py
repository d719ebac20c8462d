"""Shared test fixtures: paths to the real data samples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED = Path(os.environ.get("MOTIONLCM_SHARED", REPO.parent / "shared"))


@pytest.fixture
def dead_pid() -> int:
    """The PID of a process that has exited (as a run killed with SIGKILL leaves behind)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="session")
def humanml3d_sample_dir() -> Path:
    """The real HumanML3D sample (Mean/Std, clips 000000 and 012314) from ../shared."""
    path = SHARED / "datasets" / "humanml3d-sample"
    if not path.is_dir():
        reason = f"HumanML3D sample not found at {path}; set MOTIONLCM_SHARED to the shared/ folder"
        if os.environ.get("MOTIONLCM_REQUIRE_SHARED"):  # a CI that must not silently lose these tests
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def bn_fixture_dir() -> Path:
    """Six real Bandai-Namco BVH clips (some shortened), see tests/fixtures/bandai-namco/README.md."""
    return FIXTURES / "bandai-namco"


@pytest.fixture(scope="session")
def bn_dataset_dir(bn_fixture_dir, tmp_path_factory) -> Path:
    """The six Bandai-Namco fixture clips imported with mirrors (12 clips); val = four of the mirrors."""
    from motionlcm.data.bvh_import import import_bvh_library

    repo_bn = REPO / "datasets" / "bandai-namco"
    out = tmp_path_factory.mktemp("bn-dataset") / "bn"
    import_bvh_library(
        bn_fixture_dir,
        out,
        repo_bn / "rig.yaml",
        repo_bn / "captions.yaml",
        mirror=True,
        seed=0,
        workers=1,
        progress=False,
        split_ratios=(1.0, 0.0, 0.0),
    )
    mirrors = sorted(p.stem for p in (out / "new_joint_vecs").glob("M*.npy"))
    (out / "val.txt").write_text("\n".join(mirrors[:4]) + "\n")
    return out


def _tiny_run(kind: str, root: Path, overrides: list[str]) -> Path:
    from motionlcm.config import load_config
    from motionlcm.train.run import train

    common = [f"data.root={root}", "trainer.max_steps=6", "checkpoint.every_n_steps=3"]
    return train(kind, load_config(REPO / "configs" / "tiny" / f"{kind}.yaml", common + overrides), progress=False)


@pytest.fixture(scope="session")
def vae_dir(bn_dataset_dir, tmp_path_factory):
    """A tiny VAE (6 steps) trained on the fixture import."""
    return _tiny_run("vae", bn_dataset_dir, [f"output_dir={tmp_path_factory.mktemp('runs') / 'vae'}"])


@pytest.fixture(scope="session")
def teacher_dir(vae_dir, bn_dataset_dir):
    """A tiny MLD teacher (6 steps) of `vae_dir`, in the same runs folder (runs/vae, runs/mld)."""
    out = Path(vae_dir).parents[1] / "mld"
    return _tiny_run("teacher", bn_dataset_dir, [f"output_dir={out}", f"vae_dir={vae_dir}"])


@pytest.fixture(scope="session")
def student_dir(teacher_dir, bn_dataset_dir, tmp_path_factory):
    """A tiny LCM student (4 distillation steps) of `teacher_dir`."""
    from motionlcm.config import load_config
    from motionlcm.train.run import train

    root = tmp_path_factory.mktemp("lcm")
    overrides = [
        f"data.root={bn_dataset_dir}",
        "trainer.max_steps=4",
        "checkpoint.every_n_steps=2",
        f"output_dir={root / 'lcm'}",
        f"teacher_dir={teacher_dir}",
    ]
    return train("student", load_config(REPO / "configs" / "tiny" / "student.yaml", overrides), progress=False)


@pytest.fixture(scope="session")
def control_dir(student_dir, bn_dataset_dir, tmp_path_factory):
    """A tiny pelvis controller (6 steps) of the tiny student, installed as <student>/control/pelvis."""
    from motionlcm.config import load_config
    from motionlcm.train.run import train

    out = tmp_path_factory.mktemp("control") / "run"
    overrides = [f"data.root={bn_dataset_dir}", "trainer.max_steps=6", "checkpoint.every_n_steps=3",
                 f"output_dir={out}", f"model_dir={student_dir}", "install_as=pelvis"]  # fmt: skip
    return train("control", load_config(REPO / "configs" / "tiny" / "control.yaml", overrides), progress=False)


@pytest.fixture(scope="session")
def continuation_model_dir(control_dir, student_dir, bn_dataset_dir, tmp_path_factory):
    """A copy of the tiny student with its pelvis controller, plus "cont": six joints spatially and prefixes of
    every joint, started from the pelvis controller."""
    import shutil

    from motionlcm.config import load_config
    from motionlcm.train.run import train

    model = tmp_path_factory.mktemp("cont") / "model"
    shutil.copytree(student_dir, model)
    overrides = [
        f"data.root={bn_dataset_dir}", "trainer.max_steps=4", "checkpoint.every_n_steps=2",
        f"output_dir={model.parent / 'run'}", f"model_dir={model}", "install_as=cont", "control.joints=all",
        "control.temporal_share=0.5", "control.prefix_joints=[body, all]", "control.random_prefix=true",
        f"control.init_from={model / 'control' / 'pelvis'}",
    ]  # fmt: skip
    train("control", load_config(REPO / "configs" / "tiny" / "control.yaml", overrides), progress=False)
    return model
