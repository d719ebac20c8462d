"""Timelines: speed, streaming latency, memory, seam continuity and whether each segment does what it says.

Usage:
    python bench/bench_timeline.py [--model MODEL] [--takes 5] [--seam controlnet --seam splice]
        [--json bench/results/timeline.json] [--strip docs/img/timeline_strip.png]

For each seam method, `--takes` timelines of 30 segments (120 s; prompts drawn from PROMPTS, lengths 2-6 s,
seeds 0..takes-1) are generated after one warm-up take, and scored:
- generation time of the whole take (model loading and file writing excluded; issue target < 3 s on 2 cores);
- streaming latency: the wall time from asking for the first frame of a segment, right after the previous
  segment's last frame, to getting it (target < 50 ms);
- seams (`motionlcm.eval.seams.seam_report`): pelvis jumps beyond the local velocity (target <= 2 cm), the
  largest acceleration in the 10 frames around each seam against the 95th percentile inside segments (target
  <= 1.5x; the same score for windows inside segments is the baseline), foot skating at seams and inside;
- segment checks (bench/prompt_checks.py's kinematic checks on each segment's own frames), beside the same
  prompts generated alone at the same lengths and seeds.
Then peak memory (max RSS of a fresh process) for a 1-minute and a 10-minute take. Prints tables, saves JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from prompt_checks import check

from motionlcm.eval.seams import seam_report

REPO = Path(__file__).resolve().parents[1]
# (prompt, check, side, shortest and longest seconds): Bandai-Namco contents, checked where a check exists
PROMPTS = [
    ("a person walks forward", "steps", "walk", 3.0, 6.0),
    ("a person walks and turns left", "turn", "left", 4.0, 6.0),
    ("a person walks and turns right", "turn", "right", 4.0, 6.0),
    ("someone runs forward", "steps", "run", 2.5, 4.0),
    ("a person waves with the right hand", "waves", "right", 3.0, 5.0),
    ("a person waves with the left hand", "waves", "left", 3.0, 5.0),
    ("a person raises both hands", None, None, 2.0, 3.0),
    ("a person bows politely", None, None, 2.0, 3.5),
    ("a person kicks with the right leg", None, None, 2.0, 3.0),
    ("a person dances happily", None, None, 3.0, 6.0),
]


def make_timeline(seed: int, segments: int = 30, seconds: float = 120.0) -> list[tuple[str, float]]:
    """`segments` prompts drawn from PROMPTS (no prompt twice in a row), lengths in each prompt's range scaled
    to `seconds` in all (rounded to frames)."""
    rng = np.random.default_rng(seed)
    picks, last = [], None
    for _ in range(segments):
        choice = int(rng.choice([i for i in range(len(PROMPTS)) if i != last]))
        picks.append(choice)
        last = choice
    lengths = np.array([rng.uniform(PROMPTS[i][3], PROMPTS[i][4]) for i in picks])
    lengths = np.round(lengths * seconds / lengths.sum() * 20) / 20
    lengths[-1] += seconds - lengths.sum()
    return [(PROMPTS[i][0], float(s)) for i, s in zip(picks, lengths, strict=True)]


def segment_checks(joints: np.ndarray, rows: list[dict]) -> list[dict]:
    """The prompt check of every checked segment on its own frames."""
    out = []
    spec = {p[0]: p[1:3] for p in PROMPTS}
    for row in rows:
        kind, side = spec[row["prompt"]]
        if kind is None:
            continue
        seg = joints[row["start_frame"] : row["start_frame"] + row["frames"]].astype(np.float64)
        result = check(kind, side, seg)
        out.append({"prompt": row["prompt"], "ok": bool(result["ok"])})
    return out


def stream_latencies(pipe, timeline, seed: int, seam: str) -> list[float]:
    """Seconds from asking for each segment's first frame (after the previous segment's last) to receiving it."""
    latencies, asked = [], time.perf_counter()
    for frame in pipe.stream(iter(timeline), seed=seed, method=seam):
        now = time.perf_counter()
        if frame.new_segment and frame.segment > 0:
            latencies.append(now - asked)
        asked = time.perf_counter()
    return latencies


def memory_probe(model: str, seconds: float, seam: str) -> float:
    """Peak RSS (MiB) of a fresh process that loads the model and generates a `seconds` take."""
    code = (
        "import resource, sys; sys.path.insert(0, 'bench');"
        "from bench_timeline import make_timeline; from motionlcm import MotionLCM;"
        f"pipe = MotionLCM.from_pretrained({model!r}, device='cpu');"
        f"t = make_timeline(0, segments=int({seconds} / 4), seconds={seconds});"
        f"pipe.generate_timeline(t, seed=0, method={seam!r}, max_seconds=1e9);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bandai-namco", help="model folder or shipped name")
    parser.add_argument("--takes", type=int, default=5, help="120 s timelines per seam method (seeds 0..N-1)")
    parser.add_argument("--seam", action="append", default=None, help="seam methods (default: controlnet, splice)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1- and 10-minute memory probes")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "timeline.json")
    parser.add_argument("--strip", type=Path, default=None, help="also render a 20 s timeline strip to this image")
    args = parser.parse_args()
    from motionlcm import MotionLCM

    pipe = MotionLCM.from_pretrained(args.model, device="cpu")
    seams = args.seam or ["controlnet", "splice"]
    pipe.generate_timeline(make_timeline(99, 5, 20.0), seed=99, method=seams[0])  # warm-up
    results: dict = {"model": args.model, "machine": platform.processor() or platform.machine(),
                     "threads": torch.get_num_threads(), "torch": torch.__version__, "methods": {}}  # fmt: skip
    for seam in seams:
        times, latencies, reports, checks, alone = [], [], [], [], []
        for seed in range(args.takes):
            timeline = make_timeline(seed)
            began = time.perf_counter()
            motion = pipe.generate_timeline(timeline, seed=seed, method=seam)
            times.append(time.perf_counter() - began)
            rows = motion.settings["timeline"]
            starts = [row["start_frame"] for row in rows[1:]]
            reports.append(seam_report(motion.joints, starts))
            checks += segment_checks(motion.joints, rows)
            latencies += stream_latencies(pipe, timeline, seed, seam)
            for row in rows:  # the same prompt alone, same length and seed as the segment's first piece
                solo = pipe(row["prompt"], frames=min(row["frames"], 196), seed=row["pieces"][0]["seed"])[0]
                alone += segment_checks(solo.joints, [{**row, "start_frame": 0, "frames": solo.frames}])
        summary = {
            "take_seconds": times,
            "stream_latency_ms": {"median": 1e3 * float(np.median(latencies)),
                                  "p95": 1e3 * float(np.percentile(latencies, 95)), "max": 1e3 * max(latencies)},
            "root_jump_max_m": max(r["root_jump_max_m"] for r in reports),
            "root_jumps_over_2cm": float(np.mean([r["root_jumps_over_limit"] for r in reports])),
            "inside_root_jumps_over_2cm": float(np.mean([r["inside_root_jumps_over_limit"] for r in reports])),
            "seam_acceleration_fail": float(np.mean([r["seam_acceleration_fail"] for r in reports])),
            "inside_acceleration_fail": float(np.mean([r["inside_acceleration_fail"] for r in reports])),
            "seam_acceleration_ratio_median": float(np.median([x for r in reports for x in r["seam_acceleration_ratio"]])),
            "skating_seams": float(np.mean([r["skating_seams"] for r in reports])),
            "skating_inside": float(np.mean([r["skating_inside"] for r in reports])),
            "segment_checks": _pass_rates(checks),
            "alone_checks": _pass_rates(alone),
        }  # fmt: skip
        results["methods"][seam] = summary
        _print(seam, summary)
    if not args.no_memory:
        results["peak_rss_mib"] = {f"{s}s": memory_probe(args.model, s, seams[0]) for s in (60.0, 600.0)}
        print("peak RSS (MiB):", results["peak_rss_mib"])
    if args.strip is not None:
        timeline = [("a person walks forward", 4.0), ("a person walks and turns left", 5.0),
                    ("a person waves with the right hand", 4.0), ("someone runs forward", 3.0),
                    ("a person bows politely", 4.0)]  # fmt: skip
        motion = pipe.generate_timeline(timeline, seed=0, method=seams[0])
        frames = np.linspace(0, motion.frames - 1, 10).round().astype(int).tolist()
        motion.render(args.strip, title="a 20 s timeline (motionlcm generate --timeline)", frames=frames)
        print("strip:", args.strip)
    results["self_max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print("saved", args.json)


def _pass_rates(checks: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for c in checks:
        passed, total = out.get(c["prompt"], [0, 0])
        out[c["prompt"]] = [passed + int(c["ok"]), total + 1]
    return out


def _print(seam: str, s: dict) -> None:
    t, lat = s["take_seconds"], s["stream_latency_ms"]
    print(f"\n== seam: {seam}")
    print(f"120 s take (30 segments): median {np.median(t):.2f} s, max {max(t):.2f} s")
    print(f"stream latency: median {lat['median']:.1f} ms, p95 {lat['p95']:.1f}, max {lat['max']:.1f}")
    print(
        f"root jump max {100 * s['root_jump_max_m']:.2f} cm ({100 * s['root_jumps_over_2cm']:.1f} % of seams > 2 cm; "
        f"windows inside segments {100 * s['inside_root_jumps_over_2cm']:.1f} %)"
    )
    print(f"seam windows > 1.5x inside p95 acceleration: {100 * s['seam_acceleration_fail']:.1f} % "
          f"(windows inside segments: {100 * s['inside_acceleration_fail']:.1f} %), median ratio "
          f"{s['seam_acceleration_ratio_median']:.2f}")  # fmt: skip
    print(f"skating: seams {s['skating_seams']:.3f}, inside {s['skating_inside']:.3f}")
    print(f"{'prompt':<38} {'in timeline':>12} {'alone':>8}")
    for prompt, (p, n) in s["segment_checks"].items():
        a = s["alone_checks"].get(prompt, [0, 0])
        print(f"{prompt:<38} {p:>5}/{n:<6} {a[0]:>3}/{a[1]:<4}")


if __name__ == "__main__":
    main()
