"""Control accuracy of a controller on real hints: MotionLCM / OmniControl's Traj. err, Loc. err, Avg. err, plus
foot skating and relative joint speed of the motions users get.

Usage:
    python bench/bench_control.py [MODEL_DIR] --dataset data/bandai-namco --split test \
        [--controller runs/bn-control-pelvis/model] [--joints pelvis] [--density 100 25 5 2 1] \
        [--max-clips 256] [--json bench/results/control_pelvis.json]

Each clip of the split (up to 196 frames, its first caption) is generated at 1 step under hints taken from
its own joints at each density (official test masks: 100 / 25 % of the frames, or 1 / 2 / 5 frames), and the
generated joints are compared with the hints. `--controller` evaluates a run's controller folder without
installing it; by default the model folder's installed controllers are used. Prints a table, saves JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from motionlcm.data.features import features_to_joints
from motionlcm.data.hints import joint_set
from motionlcm.data.humanml3d import HumanML3DDataset
from motionlcm.eval.control import evaluate_control
from motionlcm.eval.kinematics import foot_skating_ratio, relative_joint_speed
from motionlcm.models.control_folder import load_control_folder
from motionlcm.pipeline import MAX_FRAMES, MotionLCM

REPO = Path(__file__).resolve().parents[1]


def load_clips(root: Path, split: str, min_length: int, max_clips: int | None) -> list[tuple[str, np.ndarray]]:
    """(first caption, joints) of the split's whole clips, evenly spread when `max_clips` is smaller."""
    dataset = HumanML3DDataset(root, split, min_length=min_length, random_crop=False)
    items = [item for item in dataset.items if "_" not in item.name[:2]]  # whole clips, not caption spans
    if max_clips is not None and len(items) > max_clips:
        items = [items[int(i)] for i in np.linspace(0, len(items) - 1, max_clips).round()]
    clips = []
    for item in items:
        joints = features_to_joints(item.motion[:MAX_FRAMES])
        clips.append((item.captions[0].text, joints.astype(np.float32)))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--dataset", type=Path, default=REPO / "data" / "bandai-namco", help="dataset folder")
    parser.add_argument("--split", default="test", help="split name (default test)")
    parser.add_argument("--controller", type=Path, default=None, help="a controller folder to evaluate instead")
    parser.add_argument("--joints", default="pelvis", help="controlled joints: pelvis, all or a joint name")
    parser.add_argument("--density", type=int, nargs="+", default=[100, 25, 5, 2, 1], help="test densities")
    parser.add_argument("--temporal", action="store_true", help="temporal control: the first 25 %% of frames")
    parser.add_argument("--max-clips", type=int, default=None, help="at most this many clips (evenly spread)")
    parser.add_argument("--min-length", type=int, default=20, help="shortest clip in frames")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks and the noise")
    parser.add_argument("--method", default="controlnet", help="controlnet, clt or both")
    parser.add_argument("--clt-steps", type=int, default=400, help="noise-tuning steps of clt / both")
    parser.add_argument("--no-warp", action="store_true", help="score the generated motion without motion warping")
    parser.add_argument("--batch-size", type=int, default=32, help="motions per pipeline call")
    parser.add_argument("--aits", type=int, default=0, help="also time N clips at batch 1, text-only and controlled")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    pipe = MotionLCM.from_pretrained(args.model_dir)
    if args.controller is not None:
        pipe._controllers = [load_control_folder(args.controller)]
    clips = load_clips(args.dataset, args.split, args.min_length, args.max_clips)
    real = {
        "skating": float(np.mean([foot_skating_ratio(j) for _, j in clips])),
        "rel_speed": float(np.mean([relative_joint_speed(j) for _, j in clips])),
    }
    joint_ids = joint_set(args.joints)
    rows = {}
    print(
        f"{len(clips)} clips of {args.dataset}/{args.split}; real skating {real['skating']:.3f}, "
        f"speed {real['rel_speed']:.3f} m/s"
    )
    densities = [25] if args.temporal else args.density
    if args.temporal:
        print("| prefix | model's own prefix err (m) | prefix max dev (m) | seam / real p95: mean, largest | "
              "seams > 1.5x (real clips) | skating | speed / real | s/clip |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
    else:
        print("| density | Traj. err 20/50 cm | Loc. err 20/50 cm | Avg. err (m) | skating | speed / real | s/clip |")
        print("|---|---|---|---|---|---|---|")
    for density in densities if not args.temporal else []:
        start = time.perf_counter()
        scores = evaluate_control(
            pipe, clips, joint_ids, density, args.seed, args.batch_size, args.temporal,
            control_method=args.method, clt_steps=args.clt_steps, warp=not args.no_warp,
        )["scores"]  # fmt: skip
        scores["seconds_per_clip"] = (time.perf_counter() - start) / len(clips)
        rows[str(density)] = scores
        print(
            f"| {density} | {scores['traj_fail_20cm']:.3f} / {scores['traj_fail_50cm']:.3f} | "
            f"{scores['loc_fail_20cm']:.3f} / {scores['loc_fail_50cm']:.3f} | {scores['avg_err_m']:.4f} | "
            f"{scores['skating']:.3f} | {scores['rel_speed'] / real['rel_speed']:.2f} | "
            f"{scores['seconds_per_clip']:.3f} |"
        )
    if args.temporal:
        start = time.perf_counter()
        scores = evaluate_control(
            pipe, clips, joint_ids, 25, args.seed, args.batch_size, True, control_method=args.method,
            clt_steps=args.clt_steps,
        )["scores"]  # fmt: skip
        scores["seconds_per_clip"] = (time.perf_counter() - start) / len(clips)
        rows["temporal"] = scores
        print(
            f"| first 25 % | {scores['model_prefix_err_m']:.4f} | {scores['prefix_max_dev_m']:.1e} | "
            f"{scores['seam_ratio_mean']:.2f}, {scores['seam_ratio_max']:.2f} | {scores['seam_fail']:.3f} ({scores['real_seam_fail']:.3f}) | "
            f"{scores['skating']:.3f} | {scores['rel_speed'] / real['rel_speed']:.2f} | "
            f"{scores['seconds_per_clip']:.3f} |"
        )
    timing = None
    if args.aits:
        from motionlcm.data.hints import hints_from_array
        from motionlcm.eval.control import real_test_hints
        from motionlcm.eval.timing import measure_aits

        picks = clips[:: max(1, len(clips) // args.aits)][: args.aits]
        texts, lengths = [t for t, _ in picks], [len(j) for _, j in picks]
        rng = np.random.default_rng(args.seed)
        hints = [hints_from_array(real_test_hints(j, joint_ids, densities[0], rng, args.temporal)) for _, j in picks]
        text_only = measure_aits(pipe, texts, lengths)
        controlled = measure_aits(pipe, texts, lengths, hints=hints)
        timing = {"text_only": text_only, "controlnet": controlled, "ratio": controlled["aits_s"] / text_only["aits_s"]}
        print(f"AITS at batch 1 over {len(picks)} clips: text-only {1000 * text_only['aits_s']:.1f} ms, with the "
              f"ControlNet {1000 * controlled['aits_s']:.1f} ms ({timing['ratio']:.2f}x)")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "command": "python bench/bench_control.py " + " ".join(map(str, __import__("sys").argv[1:])),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "model": str(pipe.folder.path),
            "controller": str(args.controller or [c.path for c in pipe.controllers()]),
            "joints": args.joints,
            "method": args.method,
            "clt_steps": args.clt_steps if args.method != "controlnet" else None,
            "warp": not args.no_warp,
            "real": real,
            "rows": rows,
            "aits": timing,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
