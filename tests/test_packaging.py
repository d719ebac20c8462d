"""An installed (non-editable) package carries the shipped model: build the wheel, install it elsewhere,
generate with the default model from outside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from motionlcm.pipeline import DEFAULT_MODEL, default_model_dir, shipped_checkpoints_dirs

REPO = Path(__file__).resolve().parents[1]
LOCAL_ONLY = {".git", ".venv", "data", "runs", "build", "dist", "out"}  # top-level folders a checkout may hold
MAX_WHEEL_BYTES = 30 * 2**20
SHIPPED = ("bandai-namco", "bandai-namco-teacher", "bandai-namco-evaluator")

GENERATE = """
import json, sys
from motionlcm.cli import main
code = main(["generate", "a person walks", "--seconds", "1", "-o", sys.argv[1], "--format", "npy,json", "-q"])
files = sorted({m.__file__ for n, m in list(sys.modules.items())
                if n.split(".")[0] == "motionlcm" and getattr(m, "__file__", None)})
print(json.dumps({"code": code, "files": files}))
"""


def _copy_checkout(dst: Path) -> Path:
    """The repository without its VCS data, venv and caches, plus junk where a user's checkout has some."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder).resolve() == REPO
        return {
            n
            for n in names
            if (top and n in LOCAL_ONLY) or n in ("__pycache__", ".pytest_cache") or n.endswith(".egg-info")
        }

    shutil.copytree(REPO, dst, ignore=ignore)
    for junk in (
        "data/bn/new_joint_vecs/a.npy",
        "runs/bn/model/vae.safetensors",
        ".venv/lib/site.py",
        "out/000_a_person_walks.npy",
    ):
        (dst / junk).parent.mkdir(parents=True, exist_ok=True)
        (dst / junk).write_bytes(b"junk")
    return dst


def _pip(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_the_checkout_model_comes_first_and_the_environment_overrides_it(monkeypatch):
    monkeypatch.delenv("MOTIONLCM_MODEL", raising=False)
    assert shipped_checkpoints_dirs() == [REPO / "checkpoints", REPO / "motionlcm" / "_checkpoints"]
    assert default_model_dir() == REPO / "checkpoints" / DEFAULT_MODEL
    monkeypatch.setenv("MOTIONLCM_MODEL", "/elsewhere/model")
    assert default_model_dir() == Path("/elsewhere/model")


@pytest.mark.slow
def test_an_installed_wheel_generates_with_its_packaged_default_model(tmp_path):
    src = _copy_checkout(tmp_path / "src")
    _pip(
        "wheel",
        str(src),
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(tmp_path / "wheel"),
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "wheel").glob("motionlcm-*.whl")
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    names = set(zipfile.ZipFile(wheel).namelist())
    assert all(n.startswith(("motionlcm/", "motionlcm-")) for n in names), sorted(names)[:20]
    assert not [n for n in names if "/wip/" in n or "junk" in n]
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "motionlcm").rglob("*.py")}
    assert sources <= names, sorted(sources - names)
    page = {
        p.relative_to(REPO).as_posix() for p in (REPO / "motionlcm" / "studio" / "static").rglob("*") if p.is_file()
    }
    assert page and page <= names, sorted(page - names)  # the studio works offline from the wheel alone
    for name in SHIPPED:
        folder = REPO / "checkpoints" / name
        files = {
            f"motionlcm/_checkpoints/{name}/{p.relative_to(folder).as_posix()}"
            for p in folder.rglob("*")
            if p.is_file()
        }
        assert files <= names, sorted(files - names)

    site = tmp_path / "site"
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel), cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MOTIONLCM_MODEL", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-c", GENERATE, "out"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(site)},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr[-2000:]
    assert report["files"] and all(f.startswith(f"{site}{os.sep}motionlcm{os.sep}") for f in report["files"])
    assert (site / "motionlcm" / "_checkpoints" / DEFAULT_MODEL / "control" / "pelvis" / "control.json").is_file()
    joints = np.load(elsewhere / "out" / "000_a_person_walks.npy")
    assert joints.shape == (20, 22, 3) and np.isfinite(joints).all()
    meta = json.loads((elsewhere / "out" / "000_a_person_walks.json").read_text())
    assert meta["model"]["path"] == str(site / "motionlcm" / "_checkpoints" / DEFAULT_MODEL)
