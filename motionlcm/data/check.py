"""Validate a HumanML3D-layout dataset folder and summarise it (`motionlcm data check DATASET_DIR`).

Errors are problems that make loaders skip or mis-read data; warnings are suspicious but loadable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from motionlcm.data.features import FEATURE_BLOCKS, FEATURE_DIM
from motionlcm.data.humanml3d import (
    FPS,
    JOINTS_DIR,
    MAX_LENGTH,
    MIN_LENGTH,
    MOTION_DIR,
    TEXT_DIR,
    UNIT_LENGTH,
    length_status,
    parse_caption_line,
)
from motionlcm.data.normalizer import MEAN_FILE, STD_FILE
from motionlcm.io.npy import read_npy_header
from motionlcm.io.text import read_text_file

REQUIRED_SPLITS = ("train", "val", "test")
OPTIONAL_SPLITS = ("train_val", "all")  # shipped by HumanML3D, unused by MotionLCM's loaders
NUM_JOINTS = 22
HISTOGRAM_MAX_S = 10  # one-second bins 0-1 ... 9-10, then 10+
MAX_NAMES_SHOWN = 5  # names quoted in one summarising warning


@dataclass
class DatasetReport:
    """Outcome of `check_dataset`: error and warning lines (each naming a file) and summary statistics."""

    root: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        """The report as human-readable text: summary, length histogram, errors, warnings, verdict."""
        lines = [f"Dataset check: {self.root}"]
        lines += _format_summary(self.summary)
        for title, messages in (("Errors", self.errors), ("Warnings", self.warnings)):
            if messages:
                lines.append(f"{title} ({len(messages)}):")
                lines += [f"  {message}" for message in messages]
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"Result: {verdict} ({len(self.errors)} errors, {len(self.warnings)} warnings)")
        return "\n".join(lines)


def _format_summary(summary: dict[str, Any]) -> list[str]:
    if not summary:
        return []
    splits = ", ".join(f"{name} {count}" for name, count in summary["clips_per_split"].items())
    per_clip = summary["captions_per_clip"]
    upper = (MAX_LENGTH // UNIT_LENGTH + 1) * UNIT_LENGTH
    lines = [
        f"  splits: {splits or 'none'}",
        (
            f"  clips: {summary['clips']} listed, {summary['clips_readable']} readable,"
            f" {summary['rows']} rows = {summary['minutes']:.1f} min at {FPS} fps"
        ),
        (
            f"  length filter {MIN_LENGTH} <= rows < {upper} (T2M):"
            f" {summary['pass_length_filter']} of {summary['clips_readable']} clips pass"
        ),
        (
            f"  captions: {summary['captions']} ({summary['span_captions']} with a time span);"
            f" per clip min {per_clip['min']}, mean {per_clip['mean']:.2f}, max {per_clip['max']}"
        ),
        "  clip length (s):",
    ]
    histogram = summary["length_histogram_s"]
    peak = max(histogram.values(), default=0) or 1
    for label, count in histogram.items():
        lines.append(f"    {label:>5}  {'#' * round(30 * count / peak):<30} {count}")
    return lines


def _histogram_label(seconds: float) -> str:
    if seconds >= HISTOGRAM_MAX_S:
        return f"{HISTOGRAM_MAX_S}+"
    low = int(seconds)
    return f"{low}-{low + 1}"


def _quote_names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    return shown + (f", ... ({len(names) - MAX_NAMES_SHOWN} more)" if len(names) > MAX_NAMES_SHOWN else "")


def _header_ok(path: Path, rel: str, report: DatasetReport) -> bool:
    """Check a .npy header (dtype, size, length: `read_npy_header`) before loading; False after an error."""
    try:
        read_npy_header(path, where=rel)
    except ValueError as err:
        report.errors.append(str(err))
        return False
    return True


def _check_stats(root: Path, report: DatasetReport) -> None:
    for file_name in (MEAN_FILE, STD_FILE):
        path = root / file_name
        if not path.is_file():
            report.errors.append(f"{file_name}: missing")
            continue
        if not _header_ok(path, file_name, report):
            continue
        try:
            values = np.load(path)
        except (OSError, ValueError) as err:
            report.errors.append(f"{file_name}: cannot be loaded ({err})")
            continue
        if values.shape != (FEATURE_DIM,):
            report.errors.append(f"{file_name}: shape {values.shape}, expected ({FEATURE_DIM},)")
        elif not np.isfinite(values).all():
            report.errors.append(f"{file_name}: {int((~np.isfinite(values)).sum())} non-finite values")
        elif file_name == STD_FILE:
            _check_std(values, report)


def _check_std(std: np.ndarray, report: DatasetReport) -> None:
    if not (std > 0).all():
        bad = np.flatnonzero(std <= 0)
        report.errors.append(f"{STD_FILE}: {len(bad)} values <= 0 (first at dim {bad[0]}: {std[bad[0]]})")
        return
    for name, block in FEATURE_BLOCKS.items():
        values = std[block]
        if np.ptp(values) > 1e-5 * values.mean():
            report.warnings.append(
                f"{STD_FILE}: not constant within block {name} [{block.start}:{block.stop}]"
                " (HumanML3D averages the std per block)"
            )


def _read_splits(root: Path, report: DatasetReport) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {}
    for split in REQUIRED_SPLITS + OPTIONAL_SPLITS:
        path = root / f"{split}.txt"
        if not path.is_file():
            if split in REQUIRED_SPLITS:
                report.errors.append(f"{path.name}: split file missing")
            continue
        try:
            names = [line.strip() for line in read_text_file(path, "split file").splitlines() if line.strip()]
        except ValueError as err:
            report.errors.append(str(err))
            continue
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        if duplicates:
            report.warnings.append(f"{path.name}: names listed more than once: {_quote_names(duplicates)}")
        if not names:
            # Nothing to train on is an error; a tiny import may leave val/test empty.
            (report.errors if split == "train" else report.warnings).append(f"{path.name}: empty split file")
        splits[split] = list(dict.fromkeys(names))
    return splits


def _check_split_sets(splits: dict[str, list[str]], report: DatasetReport) -> None:
    required = [split for split in REQUIRED_SPLITS if split in splits]
    for i, first in enumerate(required):
        for second in required[i + 1 :]:
            shared = sorted(set(splits[first]) & set(splits[second]))
            if shared:
                report.errors.append(f"{second}.txt: {len(shared)} names also in {first}.txt: {_quote_names(shared)}")
    expected = {
        "train_val": set(splits.get("train", [])) | set(splits.get("val", [])),
        "all": set().union(*(splits.get(split, []) for split in REQUIRED_SPLITS)),
    }
    for split, names in expected.items():
        if split in splits and set(splits[split]) != names:
            parts = "train+val" if split == "train_val" else "train+val+test"
            missing, extra = sorted(names - set(splits[split])), sorted(set(splits[split]) - names)
            report.warnings.append(
                f"{split}.txt: differs from {parts}: {len(missing)} missing, {len(extra)} extra"
                f" ({_quote_names(missing + extra)})"
            )


def _check_motion(root: Path, name: str, report: DatasetReport) -> int | None:
    rel = f"{MOTION_DIR}/{name}.npy"
    path = root / rel
    if not path.is_file():
        report.errors.append(f"{rel}: missing")
        return None
    if not _header_ok(path, rel, report):
        return None
    try:
        motion = np.load(path)
    except (OSError, ValueError) as err:
        report.errors.append(f"{rel}: cannot be loaded ({err})")
        return None
    if motion.ndim != 2 or motion.shape[1] != FEATURE_DIM or motion.shape[0] == 0:
        report.errors.append(f"{rel}: shape {motion.shape}, expected (T, {FEATURE_DIM}) with T > 0")
        return None
    finite = np.isfinite(motion)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        report.errors.append(f"{rel}: {int((~finite).sum())} non-finite values (first at row {row}, col {col})")
    return motion.shape[0]


def _check_joints(root: Path, name: str, rows: int, report: DatasetReport) -> None:
    rel = f"{JOINTS_DIR}/{name}.npy"
    path = root / rel
    if not path.is_file():
        report.warnings.append(f"{rel}: missing ({JOINTS_DIR}/ exists but has no file for this clip)")
        return
    if not _header_ok(path, rel, report):
        return
    try:
        joints = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        report.errors.append(f"{rel}: cannot be loaded ({err})")
        return
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        report.errors.append(f"{rel}: shape {joints.shape}, expected (T, {NUM_JOINTS}, 3)")
    elif joints.shape[0] != rows:
        report.errors.append(f"{rel}: {joints.shape[0]} frames but {MOTION_DIR}/{name}.npy has {rows} rows")


def _check_texts(root: Path, name: str, rows: int | None, report: DatasetReport) -> tuple[int, int]:
    """Validate `texts/<name>.txt`; returns (captions, span captions)."""
    rel = f"{TEXT_DIR}/{name}.txt"
    path = root / rel
    if not path.is_file():
        report.errors.append(f"{rel}: missing (loaders skip this clip)")
        return 0, 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        report.errors.append(f"{rel}: not UTF-8 ({err})")
        return 0, 0
    captions = spans = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            report.warnings.append(f"{rel}:{number}: blank line (T2M's loader drops the whole clip)")
            continue
        try:
            caption = parse_caption_line(line)
        except ValueError as err:
            report.errors.append(f"{rel}:{number}: {err}")
            continue
        captions += 1
        if not caption.whole_clip:
            spans += 1
            if rows is not None and int(caption.end * FPS) > rows:
                report.warnings.append(
                    f"{rel}:{number}: span ends at {caption.end} s, past the clip end ({rows / FPS:.2f} s)"
                )
    if captions == 0:
        report.errors.append(f"{rel}: no valid caption")
    return captions, spans


def _check_orphans(root: Path, listed: set[str], report: DatasetReport) -> None:
    for folder, suffix in ((MOTION_DIR, ".npy"), (TEXT_DIR, ".txt")):
        if not (root / folder).is_dir():
            if folder == MOTION_DIR:
                report.errors.append(f"{folder}/: folder missing")
            continue
        orphans = sorted(p.stem for p in (root / folder).glob(f"*{suffix}") if p.stem not in listed)
        if orphans:
            report.warnings.append(f"{folder}/: {len(orphans)} files in no split: {_quote_names(orphans)}")


def check_dataset(root: str | Path, progress: bool | None = None) -> DatasetReport:
    """Validate a HumanML3D-layout dataset folder and summarise its clips and captions.

    Args:
        root: dataset folder (Mean.npy, Std.npy, train/val/test.txt, new_joint_vecs/, texts/, optional
            new_joints/, all.txt, train_val.txt).
        progress: show a tqdm bar over clips; None = only when stderr is a terminal.

    Returns:
        A `DatasetReport`; `report.errors` is empty when the folder is usable.
    """
    root = Path(root)
    report = DatasetReport(root)
    if not root.is_dir():
        report.errors.append(f"{root}: not a directory")
        return report
    _check_stats(root, report)
    splits = _read_splits(root, report)
    _check_split_sets(splits, report)
    names = list(dict.fromkeys(name for split_names in splits.values() for name in split_names))
    _check_orphans(root, set(names), report)
    has_joints = (root / JOINTS_DIR).is_dir()
    lengths, caption_counts, span_total = [], [], 0
    disable = None if progress is None else not progress
    for name in tqdm(names, desc="checking clips", unit="clip", disable=disable, leave=False):
        rows = _check_motion(root, name, report)
        if rows is not None:
            lengths.append(rows)
            if has_joints:
                _check_joints(root, name, rows, report)
        captions, spans = _check_texts(root, name, rows, report)
        caption_counts.append(captions)
        span_total += spans
    report.summary = _summary(splits, len(names), lengths, caption_counts, span_total)
    return report


def _summary(
    splits: dict[str, list[str]], clips: int, lengths: list[int], caption_counts: list[int], spans: int
) -> dict[str, Any]:
    histogram = {_histogram_label(s): 0 for s in range(HISTOGRAM_MAX_S + 1)}
    for rows in lengths:
        histogram[_histogram_label(rows / FPS)] += 1
    counts = np.array(caption_counts or [0])
    return {
        "clips_per_split": {split: len(names) for split, names in splits.items()},
        "clips": clips,
        "clips_readable": len(lengths),
        "rows": int(sum(lengths)),
        "minutes": sum(lengths) / FPS / 60,
        "length_histogram_s": histogram,
        "pass_length_filter": sum(length_status(rows, MIN_LENGTH, MAX_LENGTH, UNIT_LENGTH) is None for rows in lengths),
        "captions": int(counts.sum()),
        "span_captions": spans,
        "captions_per_clip": {
            "min": int(counts.min()),
            "mean": float(counts.mean()),
            "max": int(counts.max()),
        },
    }
