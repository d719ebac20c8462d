"""Print one markdown table from the JSON files of `bench/bench_eval.py` (real row once, then each model).

python bench/eval_table.py bench/results/eval_bn_students.json bench/results/eval_bn_teacher_variants.json
"""

from __future__ import annotations

import argparse
import json

from motionlcm.eval.protocol import COLUMNS, format_stat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="bench_eval.py JSON files")
    args = parser.parse_args()
    lines = [
        "| | reps | AITS (ms) | " + " | ".join(name for _, name in COLUMNS) + " |",
        "|" + "---|" * (len(COLUMNS) + 3),
    ]
    real_done = False
    for file in args.files:
        for label, report in json.load(open(file))["reports"].items():
            reps = len(report["replications"])
            if not real_done:
                for row, name in (("real", "Real motion"), ("frozen", "Frozen real (sanity)")):
                    if row in report["summary"]:
                        stats = report["summary"][row]
                        lines.append(
                            f"| {name} | {reps} | - | "
                            + " | ".join(format_stat(stats.get(k)) for k, _ in COLUMNS)
                            + " |"
                        )
                real_done = True
            aits = f"{1000 * report['aits']['aits_s']:.1f}" if "aits" in report else "-"
            cells = " | ".join(format_stat(report["summary"]["model"].get(k)) for k, _ in COLUMNS)
            lines.append(f"| {label} | {reps} | {aits} | {cells} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
