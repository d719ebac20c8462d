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


@pytest.fixture(scope="session")
def bn_dataset_dir(bn_fixture_dir, tmp_path_factory) -> Path:
    """The six Bandai-Namco fixture clips imported with mirrors (12 clips); val = four of the mirrors."""
    from motionlcm.data.bvh_import import import_bvh_library

    repo_bn = REPO / "datasets" / "bandai-namco"
    out = tmp_path_factory.mktemp("bn-dataset") / "bn"
    import_bvh_library(bn_fixture_dir, out, repo_bn / "rig.yaml", repo_bn / "captions.yaml", mirror=True,
                       seed=0, workers=1, progress=False, split_ratios=(1.0, 0.0, 0.0))
    mirrors = sorted(p.stem for p in (out / "new_joint_vecs").glob("M*.npy"))
    (out / "val.txt").write_text("\n".join(mirrors[:4]) + "\n")
    return out
