"""Import a BVH motion-capture library as a HumanML3D-format dataset.

Per clip: parse -> forward kinematics -> rig mapping onto the 22 SMPL joints (metres, HumanML3D axes) ->
resample to 20 fps -> the HumanML3D pipeline (`joints_to_features`) -> captions. Optionally each clip's
left/right mirror with swapped labels. Splits are seeded and stratified; Mean/Std come from the training
split. The import is all-or-nothing: it builds a temporary folder and renames it at the end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from motionlcm import __version__
from motionlcm.data.captions import CaptionRules, format_text_line, mirror_text_line, pos_tag
from motionlcm.data.features import features_to_joints, joints_to_features, mirror_joints
from motionlcm.data.normalizer import compute_mean_std
from motionlcm.data.rig import Rig, nominal_fps, resample_positions
from motionlcm.data.skeleton import FPS
from motionlcm.io.atomic import prepare_staging, swap_folder
from motionlcm.io.bvh import BVHError, read_bvh

SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_RATIOS = (0.80, 0.05, 0.15)  # HumanML3D: 23,384 / 1,460 / 4,384 clips
TURN_CHECK_DEGREES = 45.0  # a turn label is contradicted when the heading turns this far the other way
CREATED_BY = "data import-bvh"  # the end of manifest.json's "created_by": marks a folder --force may replace


class BVHImportError(ValueError):
    """A problem that stops the import; the message names the file (and line when known)."""


@dataclass
class ClipRecord:
    """What the manifest says about one imported clip (or its mirror)."""

    name: str
    source: str
    source_fps: float
    source_frames: int
    frames: int
    rows: int
    content: str | None = None
    style: str | None = None
    mirror_of: str | None = None
    label_fix: str | None = None
    heading_change_deg: float = 0.0
    captions: int = 0
    split: str | None = None


@dataclass
class ClipFailure:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" if self.line else f"{self.file}: {self.reason}"


@dataclass
class ImportSummary:
    out_dir: Path
    clips: list[ClipRecord]
    skipped: list[ClipFailure]
    seconds: float
    split_counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- one clip


def clip_joints(path: Path, rig: Rig) -> tuple[np.ndarray, float, int]:
    """SMPL joints (T, 22, 3) at 20 fps in metres from one BVH file; also its fps and frame count."""
    bvh = read_bvh(path)
    positions, rotations = bvh.forward_kinematics()
    try:
        joints = rig.map_positions(positions, rotations, bvh.names)
    except ValueError as exc:
        raise BVHImportError(f"{path}: {exc}") from None
    fps = rig.fps or nominal_fps(bvh.frame_time)
    joints = resample_positions(joints, fps, FPS)
    if joints.shape[0] < 2:
        raise BVHImportError(f"{path}: {bvh.num_frames} frame(s) is too short for one feature row")
    return joints, fps, bvh.num_frames


def heading_change_degrees(features: np.ndarray) -> float:
    """Total turn over a clip in degrees, + = left (counter-clockwise seen from above).

    Row 0 is skipped: HumanML3D forces r[0] to identity, so it holds a jump, not a turn.
    """
    return float(np.degrees(-2.0 * features[1:, 0].sum()))


def _label_turn_fix(rules: CaptionRules, content: str, turn_deg: float) -> tuple[str, str | None]:
    """Check a turn label against the measured heading change: (content to caption, note for the manifest).

    A turn the other way by TURN_CHECK_DEGREES or more is captioned by what the clip does (the mirrored
    label); a turn weaker than that keeps its label and gets a note.
    """
    expected = rules.turn(content)
    if expected is None:
        return content, None
    measured = "left" if turn_deg > 0 else "right"
    if abs(turn_deg) < TURN_CHECK_DEGREES:
        return content, f"labelled {content} but turns only {abs(turn_deg):.0f} deg {measured}: label kept"
    if measured == expected:
        return content, None
    fixed = rules.mirror_content(content)
    return fixed, f"labelled {content} but turns {measured} by {abs(turn_deg):.0f} deg: captioned as {fixed}"


def _sidecar_lines(path: Path, mirrored: bool) -> list[str]:
    """Caption lines from `<stem>.txt` beside the BVH: HumanML3D lines or plain captions."""
    sidecar = path.with_suffix(".txt")
    if not sidecar.is_file():
        raise BVHImportError(
            f"{path}: no captions: the caption rules do not match its name and {sidecar.name} is missing"
        )
    lines = []
    for number, raw in enumerate(sidecar.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        if "#" in text:
            if len(text.split("#")) != 4:
                raise BVHImportError(f"{sidecar}:{number}: expected caption#tokens#from#to, got {text!r}")
            line = text
        else:
            line = format_text_line(text, pos_tag(text))
        lines.append(mirror_text_line(line) if mirrored else line)
    if not lines:
        raise BVHImportError(f"{sidecar}: no captions in file")
    return lines


def _write_clip(out: Path, name: str, features: np.ndarray, lines: list[str]) -> None:
    np.save(out / "new_joint_vecs" / f"{name}.npy", features.astype(np.float32))
    np.save(out / "new_joints" / f"{name}.npy", features_to_joints(features).astype(np.float32))
    (out / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def process_clip(
    path: Path, src_root: Path, out: Path, rig: Rig, rules: CaptionRules | None, mirror: bool, seed: int
) -> list[ClipRecord] | ClipFailure:
    """Convert one BVH file (and its mirror) into dataset files; returns the records or the failure."""
    try:
        joints, fps, source_frames = clip_joints(path, rig)
        features = joints_to_features(joints)
        if not np.isfinite(features).all():
            raise BVHImportError(f"{path}: non-finite features (degenerate bones, e.g. two mapped joints coincide)")
    except BVHError as exc:
        return ClipFailure(str(path), exc.line, exc.reason)
    except BVHImportError as exc:
        return ClipFailure(str(path), None, str(exc).removeprefix(f"{path}: "))
    rel = path.relative_to(src_root).as_posix()
    rng = np.random.default_rng([seed, zlib.crc32(rel.encode())])  # same captions whatever the worker order
    try:
        label = rules.parse_name(path.stem) if rules else None
    except ValueError as exc:  # a name the rules match, with an unknown content or style
        return ClipFailure(str(path), None, str(exc))
    turn = heading_change_degrees(features)
    base = ClipRecord(path.stem, rel, fps, source_frames, joints.shape[0], features.shape[0], heading_change_deg=turn)
    variants = [(base, features, False)]
    if mirror:
        mirrored = ClipRecord(
            **{**asdict(base), "name": "M" + path.stem, "mirror_of": path.stem, "heading_change_deg": -turn}
        )
        variants.append((mirrored, joints_to_features(mirror_joints(joints)), True))
    try:
        for record, feats, is_mirror in variants:
            if label is not None:
                content, record.label_fix = _label_turn_fix(rules, label.content, turn)
                record.content = rules.mirror_content(content) if is_mirror else content
                record.style = label.style
                lines = rules.text_lines(record.content, record.style, rng)
            else:
                lines = _sidecar_lines(path, is_mirror)
            record.captions = len(lines)
            _write_clip(out, record.name, feats, lines)
    except BVHImportError as exc:
        return ClipFailure(str(path), None, str(exc).removeprefix(f"{path}: "))
    return [v[0] for v in variants]


# --------------------------------------------------------------------------- splits and statistics


MIN_STRATUM = 7  # clips: with the default test share 0.15 a smaller content/style group gets no test clip


def assign_splits(strata: dict[str, str], ratios: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Seeded split of clip names, stratified by label so that every split sees every label.

    Each stratum is shuffled by its own generator, seeded by (seed, stratum name), so that adding clips of
    other labels (a second library) leaves the split of the existing ones unchanged.

    Args:
        strata: clip name -> stratum (e.g. "walk/elderly"); mirrors are assigned with their clip elsewhere.
        ratios: train, val, test fractions (sum 1).
    """
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for name in sorted(strata):
        by_stratum[strata[name]].append(name)
    split = {}
    for stratum in sorted(by_stratum):
        rng = np.random.default_rng([seed, zlib.crc32(str(stratum).encode())])
        names = [by_stratum[stratum][i] for i in rng.permutation(len(by_stratum[stratum]))]
        n_val = int(round(ratios[1] * len(names)))
        n_test = int(round(ratios[2] * len(names)))
        for i, name in enumerate(names):
            split[name] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return split


def _write_splits(out: Path, clips: list[ClipRecord], ratios: tuple[float, float, float], seed: int) -> dict:
    originals = [c for c in clips if c.mirror_of is None]
    sizes = Counter(f"{c.content}/{c.style}" for c in originals)
    # content/style groups too small to reach val or test are pooled per content (dataset-1: one clip per style)
    strata = {
        c.name: f"{c.content}/{c.style}" if sizes[f"{c.content}/{c.style}"] >= MIN_STRATUM else f"{c.content}"
        for c in originals
    }
    split = assign_splits(strata, ratios, seed)
    for clip in clips:
        clip.split = split[clip.mirror_of or clip.name]
    names = {s: sorted(c.name for c in clips if c.split == s) for s in SPLITS}
    names["train_val"] = sorted(names["train"] + names["val"])
    names["all"] = sorted(c.name for c in clips)
    for key, values in names.items():
        (out / f"{key}.txt").write_text("".join(n + "\n" for n in values))
    return {s: len(names[s]) for s in SPLITS}


def _write_mean_std(out: Path, clips: list[ClipRecord]) -> None:
    train = [np.load(out / "new_joint_vecs" / f"{c.name}.npy") for c in clips if c.split == "train"]
    if not train:
        raise BVHImportError(f"{out}: the training split is empty; import more clips or change --split")
    mean, std = compute_mean_std(train)
    np.save(out / "Mean.npy", mean.astype(np.float32))
    np.save(out / "Std.npy", std.astype(np.float32))


# --------------------------------------------------------------------------- the whole library


def find_bvh_files(src: Path) -> list[Path]:
    """All *.bvh files under src (any case), sorted; clip names (stems) must be unique."""
    if not src.is_dir():
        raise BVHImportError(f"{src}: not a directory")
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())
    if not files:
        raise BVHImportError(f"{src}: no .bvh files found")
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise BVHImportError(f"{path}: clip name {path.stem!r} also used by {seen[path.stem]}")
        seen[path.stem] = path
    return files


_WORKER: dict = {}  # per-process rig and caption rules, loaded once by _worker_init


def _worker_init(rig_path: Path, captions_path: Path | None) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["rig"] = Rig.load(rig_path)
    _WORKER["rules"] = CaptionRules.load(captions_path) if captions_path else None


def _process_job(job: tuple) -> list[ClipRecord] | ClipFailure:
    path, src, out, mirror, seed = job
    return process_clip(path, src, out, _WORKER["rig"], _WORKER["rules"], mirror, seed)


def _run_clips(jobs: list[tuple], init_args: tuple, workers: int, progress: bool, skip_bad: bool):
    """Yield process_clip results, in a process pool when workers > 1."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="import-bvh", unit="clip", disable=not progress)
    pool = None
    if workers <= 1:
        _worker_init(*init_args)
        results = map(_process_job, jobs)
    else:
        # forkserver, not fork: a child forked from a process whose torch / OpenMP threads are busy can
        # deadlock on a lock one of them held (seen in the test suite after a torch benchmark)
        context = get_context("forkserver" if os.name == "posix" else "spawn")
        pool = context.Pool(workers, initializer=_worker_init, initargs=init_args)
        results = pool.imap_unordered(_process_job, jobs, chunksize=4)
    try:
        for result in results:
            bar.update()
            if isinstance(result, ClipFailure) and not skip_bad:
                raise BVHImportError(str(result))
            yield result
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()


def check_split_ratios(ratios: tuple[float, ...]) -> tuple[float, float, float]:
    """Three finite fractions >= 0 (train, val, test) that sum to 1; anything else is a BVHImportError."""
    values = tuple(float(r) for r in ratios)
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        shown = ",".join(f"{v:g}" for v in values)
        raise BVHImportError(
            f"--split: expected three finite fractions >= 0 (train,val,test) that sum to 1, got {shown}"
        )
    return values  # type: ignore[return-value]


def is_earlier_import(folder: Path) -> bool:
    """Whether `folder` holds a manifest.json written by `import-bvh` (so that --force may replace it)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    created_by = manifest.get("created_by") if isinstance(manifest, dict) else None
    return isinstance(created_by, str) and created_by.startswith("motionlcm ") and created_by.endswith(CREATED_BY)


def check_output_dir(src: Path, out: Path, force: bool) -> None:
    """Refuse an output folder that overlaps the source library, or that --force would wrongly replace:
    only a missing folder, an empty one or an earlier import may be the output."""
    src_real, out_real = src.resolve(), out.resolve()
    if out_real == src_real or src_real in out_real.parents or out_real in src_real.parents:
        raise BVHImportError(f"{out}: the output folder must be outside the source folder {src} and not contain it")
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise BVHImportError(f"{out}: already exists (use --force to replace it)")
    if out.is_symlink() or not out.is_dir():
        raise BVHImportError(f"{out}: not a folder; --force replaces only an earlier import or an empty folder")
    if any(out.iterdir()) and not is_earlier_import(out):
        raise BVHImportError(
            f"{out}: not an earlier import (no manifest.json by import-bvh); "
            "--force replaces only an earlier import or an empty folder"
        )


def _prepare_tmp(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    prepare_staging(out.parent, f".{out.name}.importing-")  # stale folders of killed imports; SIGTERM cleans up
    tmp = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("new_joint_vecs", "new_joints", "texts", "import"):
        (tmp / sub).mkdir(parents=True)
    return tmp


def _publish(tmp: Path, out: Path) -> None:
    swap_folder(tmp, out)  # io/atomic.py: the old import is removed only once the new one is in place


def _manifest(
    src: Path,
    rig: Rig,
    rules_path: Path | None,
    args: dict,
    clips: list[ClipRecord],
    skipped: list[ClipFailure],
    split_counts: dict,
    seconds: float,
) -> dict:
    rows = [c.rows for c in clips]
    return {
        "format": "HumanML3D (263-d features, 22 SMPL joints, 20 fps)",
        "created_by": f"motionlcm {__version__} {CREATED_BY}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_dir": str(src),
        "rig": rig.name,
        "rig_file": "import/rig.yaml",
        "captions_file": "import/captions.yaml" if rules_path else None,
        "licence": rig.licence,
        "options": args,
        "seconds": round(seconds, 1),
        "counts": {
            "clips": len(clips),
            "rows": int(sum(rows)),
            "minutes": round(sum(rows) / FPS / 60, 1),
            "splits": split_counts,
            "skipped": len(skipped),
            "label_notes": sum(1 for c in clips if c.label_fix and c.mirror_of is None),
        },
        "clips": [asdict(c) for c in sorted(clips, key=lambda c: c.name)],
        "skipped": [asdict(s) for s in skipped],
    }


def import_bvh_library(
    src: str | Path,
    out: str | Path,
    rig_path: str | Path,
    captions_path: str | Path | None = None,
    mirror: bool = False,
    seed: int = 0,
    skip_bad: bool = False,
    workers: int | None = None,
    split_ratios: tuple[float, float, float] = DEFAULT_SPLIT_RATIOS,
    force: bool = False,
    progress: bool = True,
) -> ImportSummary:
    """Import every BVH file under `src` into a HumanML3D-format dataset folder `out`.

    Raises BVHImportError (a ValueError) naming the file and line of the first bad clip unless `skip_bad`,
    in which case bad clips are listed in the manifest. Nothing is left behind on failure. An existing `out`
    is replaced only with `force` and only if it is empty or an earlier import (`check_output_dir`).
    """
    start = time.perf_counter()
    src, out = Path(src), Path(out)
    rig = Rig.load(rig_path)
    if captions_path:
        CaptionRules.load(captions_path)  # fail on a bad rules file before any work starts
    split_ratios = check_split_ratios(split_ratios)
    files = find_bvh_files(src)
    check_output_dir(src, out, force)
    workers = workers or min(len(files), os.cpu_count() or 1)
    tmp = _prepare_tmp(out)
    try:
        jobs = [(path, src, tmp, mirror, seed) for path in files]
        clips: list[ClipRecord] = []
        skipped: list[ClipFailure] = []
        init_args = (Path(rig_path), Path(captions_path) if captions_path else None)
        for result in _run_clips(jobs, init_args, workers, progress, skip_bad):
            (skipped.append if isinstance(result, ClipFailure) else clips.extend)(result)
        if not clips:
            raise BVHImportError(f"{src}: every clip failed; first: {skipped[0]}")
        split_counts = _write_splits(tmp, clips, split_ratios, seed)
        _write_mean_std(tmp, clips)
        shutil.copyfile(rig_path, tmp / "import" / "rig.yaml")
        if captions_path:
            shutil.copyfile(captions_path, tmp / "import" / "captions.yaml")
        args = {"mirror": mirror, "seed": seed, "skip_bad": skip_bad, "split": list(split_ratios)}
        seconds = time.perf_counter() - start
        manifest = _manifest(
            src, rig, Path(captions_path) if captions_path else None, args, clips, skipped, split_counts, seconds
        )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportSummary(out, clips, skipped, time.perf_counter() - start, split_counts)


def summarize(summary: ImportSummary) -> str:
    """A few human-readable lines about a finished import."""
    clips = summary.clips
    rows = sum(c.rows for c in clips)
    contents = Counter(c.content for c in clips if c.content)
    lines = [
        f"imported {len(clips)} clips ({rows / FPS / 60:.1f} min at {FPS} fps) into {summary.out_dir} "
        f"in {summary.seconds:.1f} s",
        "splits: " + ", ".join(f"{k} {v}" for k, v in summary.split_counts.items()),
    ]
    if contents:
        lines.append("contents: " + ", ".join(f"{k} {v}" for k, v in sorted(contents.items())))
    fixes = [c for c in clips if c.label_fix and c.mirror_of is None]
    for clip in fixes:
        lines.append(f"label check: {clip.name}: {clip.label_fix}")
    for failure in summary.skipped:
        lines.append(f"skipped: {failure}")
    return "\n".join(lines)
