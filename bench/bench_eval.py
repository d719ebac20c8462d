"""Paper-style evaluation table for several models on one dataset split, with AITS.

Runs `motionlcm.eval.protocol.evaluate` for each model (same evaluator, same seed) and prints one markdown
table: the real-motion row once, then each model's row (mean +/- 95% CI), plus AITS at batch 1.
Saves everything (every replication) to a JSON file.

    python bench/bench_eval.py --dataset data/bandai-namco --evaluator runs/bn-evaluator/model \
        --min-length 20 --replications 20 \
        --model "VAE reconstruction=runs/bn-vae/model" \
        --model "teacher, DDIM 50=runs/bn-mld/model" \
        --model "student, 1 step=runs/bn-lcm/model:1" --model "student, 2 steps=runs/bn-lcm/model:2"
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from motionlcm.eval.protocol import COLUMNS, EvalSettings, evaluate, format_stat, load_evaluator, load_subject
from motionlcm.eval.timing import aits_inputs, measure_aits


def parse_model(text: str) -> tuple[str, str, int | None]:
    """`label=path[:steps]`."""
    label, _, rest = text.partition("=")
    head, _, tail = rest.rpartition(":")
    return (label, head, int(tail)) if tail.isdigit() else (label, rest, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="HumanML3D-layout dataset folder")
    parser.add_argument("--evaluator", required=True, help="evaluator folder (or official T2M deps folder)")
    parser.add_argument(
        "--model", action="append", required=True, metavar="LABEL=PATH[:STEPS]", help="a model to evaluate (repeatable)"
    )
    parser.add_argument("--split", default="test", help="split to evaluate")
    parser.add_argument("--replications", type=int, default=20, help="replications per model")
    parser.add_argument("--min-length", type=int, default=40, help="shortest clip kept, in frames")
    parser.add_argument("--aits", type=int, default=100, help="sentences timed at batch 1 (0 skips)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--no-mm", action="store_true", help="skip MultiModality (100 x 30 generations per replication)"
    )
    parser.add_argument("--json", default="bench/results/eval.json", help="where to save the results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    evaluator = load_evaluator(args.evaluator)
    rows, reports = [], {}
    for label, path, steps in map(parse_model, args.model):
        settings = EvalSettings(
            split=args.split,
            replications=args.replications,
            steps=steps,
            min_length=args.min_length,
            multimodality=not args.no_mm,
        )
        subject = load_subject(path, settings)
        start = time.perf_counter()
        report = evaluate(subject, args.dataset, evaluator, settings, progress=True)
        report["wall_seconds"] = time.perf_counter() - start
        if args.aits and subject.kind != "vae":
            from motionlcm.pipeline import MotionLCM

            inputs = aits_inputs(args.dataset, args.split, args.aits, args.min_length)
            report["aits"] = measure_aits(MotionLCM.from_pretrained(path, device="cpu"), *inputs, steps=steps)
        reports[label] = report
        if not rows:
            rows.append(("Real motion", report["summary"]["real"], None))
            if "frozen" in report["summary"]:
                rows.append(("Frozen real (sanity)", report["summary"]["frozen"], None))
        rows.append((label, report["summary"]["model"], report.get("aits")))
        print(f"{label}: done in {report['wall_seconds']:.0f} s", flush=True)
        save(args.json, rows, reports)  # after every model, so an interrupted run keeps what it measured
    print("\n".join(table(rows)))
    print(f"saved {args.json}")


def table(rows: list) -> list[str]:
    header = "| | AITS (ms) | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for label, summary, aits in rows:
        timing = f"{1000 * aits['aits_s']:.1f}" if aits else "-"
        lines.append(f"| {label} | {timing} | " + " | ".join(format_stat(summary.get(k)) for k, _ in COLUMNS) + " |")
    return lines


def save(path: str, rows: list, reports: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "table": table(rows),
        "reports": reports,
    }
    out.write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
