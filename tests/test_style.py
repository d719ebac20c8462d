"""One style for the whole code base: `ruff check` and `ruff format` (pyproject.toml [tool.ruff], line length
120) leave nothing to change. Run `ruff format motionlcm tests bench` to fix what this reports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TREES = ["motionlcm", "tests", "bench"]


@pytest.fixture(scope="module")
def ruff() -> str:
    exe = shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return exe


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing_to_change(ruff, command):
    run = subprocess.run([ruff, *command, *TREES], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
