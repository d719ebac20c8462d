"""Benchmark the BVH library import: per-stage cost per clip and the whole import, printed and saved as JSON.

Usage:
    python bench/bench_import.py SRC_DIR [--sample 200] [--full] [--json bench/results/import.json]

SRC_DIR is a folder of BVH files, e.g. the extracted Bandai-Namco-Research-Motiondataset-2/data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.bvh_import import find_bvh_files, import_bvh_library
from motionlcm.data.features import features_to_joints, joints_to_features, mirror_joints
from motionlcm.data.rig import Rig, nominal_fps, resample_positions
from motionlcm.io.bvh import read_bvh

REPO = Path(__file__).resolve().parents[1]
RIG = REPO / "datasets" / "bandai-namco" / "rig.yaml"
CAPTIONS = REPO / "datasets" / "bandai-namco" / "captions.yaml"


def stage_times(files: list[Path], rig: Rig) -> dict[str, float]:
    """Median milliseconds per clip of each import stage, single process."""
    stages: dict[str, list[float]] = {
        k: [] for k in ("parse", "fk+map+resample", "features", "mirror features", "joints")
    }
    for path in files:
        t0 = time.perf_counter()
        bvh = read_bvh(path)
        t1 = time.perf_counter()
        positions, rotations = bvh.forward_kinematics()
        joints = resample_positions(rig.map_positions(positions, rotations, bvh.names), nominal_fps(bvh.frame_time))
        t2 = time.perf_counter()
        feats = joints_to_features(joints)
        t3 = time.perf_counter()
        joints_to_features(mirror_joints(joints))
        t4 = time.perf_counter()
        features_to_joints(feats)
        t5 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=False):
            stages[key].append(dt * 1000)
    return {k: float(np.median(v)) for k, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src_dir", type=Path, help="folder of BVH files")
    parser.add_argument("--sample", type=int, default=200, help="clips timed stage by stage")
    parser.add_argument("--full", action="store_true", help="also time the whole import (with --mirror)")
    parser.add_argument("--workers", type=int, default=None, help="workers for the full import")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "import.json", help="output JSON")
    args = parser.parse_args()

    torch.set_num_threads(1)
    files = find_bvh_files(args.src_dir)
    step = max(1, len(files) // args.sample)
    stages = stage_times(files[::step][: args.sample], Rig.load(RIG))
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "clips": len(files),
        "stage_ms_median": stages,
    }
    print(f"{'stage':<20} {'ms/clip (median)':>16}")
    for key, ms in stages.items():
        print(f"{key:<20} {ms:>16.1f}")
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            summary = import_bvh_library(
                args.src_dir, Path(tmp) / "ds", RIG, CAPTIONS, mirror=True, workers=args.workers, progress=False
            )
        result["full_import"] = {
            "seconds": round(summary.seconds, 1),
            "clips_written": len(summary.clips),
            "workers": args.workers or os.cpu_count(),
            "mirror": True,
        }
        print(f"full import with mirror: {len(files)} files -> {len(summary.clips)} clips in {summary.seconds:.1f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
