"""Shared test fixtures: paths to the real data samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED = Path(os.environ.get("MOTIONLCM_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def humanml3d_sample_dir() -> Path:
    """The real HumanML3D sample (Mean/Std, clips 000000 and 012314) from ../shared."""
    path = SHARED / "datasets" / "humanml3d-sample"
    if not path.is_dir():
        pytest.fail(f"HumanML3D sample not found at {path}; set MOTIONLCM_SHARED to the shared/ folder")
    return path


@pytest.fixture(scope="session")
def bn_fixture_dir() -> Path:
    """Six real Bandai-Namco BVH clips (some shortened), see tests/fixtures/bandai-namco/README.md."""
    return FIXTURES / "bandai-namco"
