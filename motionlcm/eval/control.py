"""Control errors of generated motions against their hints, as MotionLCM and OmniControl report them
(official `mld/models/metrics/cm.py`; shared/docs/motionlcm-reference.md section 7.4).

Per controlled point (a joint at a frame; its controlled axes only) the L2 distance in metres;
* Traj. err (20 / 50 cm): share of motions with any controlled point beyond the threshold;
* Loc. err (20 / 50 cm): share of controlled points beyond the threshold;
* Avg. err: mean point error (m).

Temporal control (a prefix, `MotionLCM.continue_motion`) adds the seam: the largest frame-to-frame move of
any joint in the `SEAM_FRAMES` frames after the prefix, against the 95th percentile of the same per-frame
move over the real clips (issue "Motion control": at most 1.5 times).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from motionlcm.data.hints import point_errors

THRESHOLDS = (0.2, 0.5)  # metres
SEAM_FRAMES = 10  # frames after a prefix whose moves are the seam's
SEAM_LIMIT = 1.5  # a seam move above this multiple of the real clips' 95th percentile counts as a jump
__all__ = [
    "control_errors",
    "evaluate_control",
    "frame_jumps",
    "point_errors",
    "real_test_hints",
    "seam_jump",
    "seam_scores",
]


def frame_jumps(joints: np.ndarray) -> np.ndarray:
    """(T-1,) the largest move of any joint from each frame to the next (m) of (T, 22, 3) joints."""
    return np.linalg.norm(np.diff(np.asarray(joints, dtype=np.float64), axis=0), axis=-1).max(axis=1)


def seam_jump(joints: np.ndarray, prefix_frames: int, frames: int = SEAM_FRAMES) -> float:
    """The largest frame-to-frame move (m) from the prefix's last frame through `frames` frames after it."""
    return float(frame_jumps(joints)[prefix_frames - 1 : prefix_frames - 1 + frames].max())


def seam_scores(
    seams: list[float], real_jumps: list[np.ndarray], real_seams: list[float] | None = None
) -> dict[str, float]:
    """Seam columns: the real clips' 95th-percentile frame move, the mean and largest seam move over it, and the
    share of motions whose seam move exceeds `SEAM_LIMIT` times it; with `real_seams` (the real clips' own
    moves in the same frames) the same share for them, the baseline: a run's limbs move that fast anyway."""
    if not seams or not real_jumps:
        raise ValueError("seam_scores: needs seams of generated motions and real clips' frame moves")
    p95 = float(np.percentile(np.concatenate(real_jumps), 95))
    ratios = np.asarray(seams) / p95
    out = {
        "real_jump_p95_m": p95,
        "seam_ratio_mean": float(ratios.mean()),
        "seam_ratio_max": float(ratios.max()),
        "seam_fail": float((ratios > SEAM_LIMIT).mean()),
    }
    if real_seams:
        out["real_seam_fail"] = float((np.asarray(real_seams) / p95 > SEAM_LIMIT).mean())
    return out


def control_errors(errors: list[np.ndarray]) -> dict[str, float]:
    """Aggregate the `point_errors` of several motions into the paper's columns."""
    if not errors or any(len(e) == 0 for e in errors):
        raise ValueError("control_errors: every motion needs at least one controlled point")
    points = np.concatenate(errors)
    out = {}
    for threshold in THRESHOLDS:
        cm = int(round(threshold * 100))
        out[f"traj_fail_{cm}cm"] = float(np.mean([(e > threshold).any() for e in errors]))
        out[f"loc_fail_{cm}cm"] = float((points > threshold).mean())
    out["avg_err_m"] = float(points.mean())
    return out


def real_test_hints(
    joints: np.ndarray, joint_ids: tuple[int, ...], density: int, rng: np.random.Generator, temporal: bool = False
) -> np.ndarray:
    """(T, 22, 3) hints with NaN where free, taken from a real clip's joints at the test `density` (official
    `random_mask`: 100 / 25 % of the frames, or 1 / 2 / 5 frames; temporal: the first 25 %)."""
    from motionlcm.data.hints import evaluation_mask

    mask = evaluation_mask(len(joints), joint_ids, density, rng, temporal)
    return np.where(mask, joints, np.nan).astype(np.float32)


def _batch_starts(count: int, batch_size: int, desc: str | None) -> Any:
    """Start indices of batches over `count` items, with a progress bar labelled `desc` unless it is None."""
    starts = range(0, count, batch_size)
    if desc is None:
        return starts
    from tqdm import tqdm

    return tqdm(starts, desc=desc, dynamic_ncols=True)


def evaluate_control(
    pipe: Any,
    clips: list[tuple[str, np.ndarray]],
    joint_ids: tuple[int, ...],
    density: int,
    seed: int = 0,
    batch_size: int = 32,
    temporal: bool = False,
    progress: bool = False,
    **generate: Any,
) -> dict[str, Any]:
    """Generate every (caption, real joints) clip under hints from its own joints and score the control
    errors, foot skating and relative joint speed of the motions users get. Returns the columns and the
    per-motion point errors. `generate` goes to the pipeline call (control_method, clt_steps, warp, ...)."""
    from motionlcm.eval.kinematics import foot_skating_ratio, relative_joint_speed

    if temporal:
        return evaluate_continuation(pipe, clips, joint_ids, seed, batch_size, progress, **generate)
    rng = np.random.default_rng(seed)
    hints = [real_test_hints(j, joint_ids, density, rng, temporal) for _, j in clips]
    errors, skating, speed, generated = [], [], [], []
    for start in _batch_starts(len(clips), batch_size, f"control {density}" if progress else None):
        part = slice(start, start + batch_size)
        texts = [text for text, _ in clips[part]]
        motions = pipe(texts, control=hints[part], seed=seed + start, **generate)
        for motion, h in zip(motions, hints[part], strict=True):
            mask = ~np.isnan(h)
            errors.append(point_errors(motion.joints, np.nan_to_num(h), mask))
            skating.append(foot_skating_ratio(motion.joints))
            speed.append(relative_joint_speed(motion.joints))
            generated.append(motion)
    out = control_errors(errors)
    out.update(skating=float(np.mean(skating)), rel_speed=float(np.mean(speed)), motions=len(clips))
    return {"scores": out, "motions": generated}


def evaluate_continuation(
    pipe: Any,
    clips: list[tuple[str, np.ndarray]],
    joint_ids: tuple[int, ...],
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
    **generate: Any,
) -> dict[str, Any]:
    """Temporal control as users get it: continue each real clip's first 25 % of frames (`continue_motion`,
    prefix `joint_ids`) to its length, and score how well the model itself met the prefix (before the splice),
    that the prefix came out exact, the seam, foot skating and relative joint speed."""
    from motionlcm.data.hints import TEMPORAL_FRACTION
    from motionlcm.eval.kinematics import foot_skating_ratio, relative_joint_speed

    generate.pop("warp", None)  # the splice replaces warping
    attempt, exact, seams, real_jumps, real_seams, skating, speed, generated = [], [], [], [], [], [], [], []
    for start in _batch_starts(len(clips), batch_size, "continuation" if progress else None):
        part = clips[start : start + batch_size]
        prefixes = [j[: max(1, int(len(j) * TEMPORAL_FRACTION))] for _, j in part]
        motions = pipe.continue_motion(
            [t for t, _ in part], prefixes, frames=[len(j) for _, j in part], seed=seed + start,
            prefix_joints=joint_ids, **generate,
        )  # fmt: skip
        for motion, prefix, (_, real) in zip(motions, prefixes, part, strict=True):
            attempt.append(motion.settings["continuation"]["model_prefix_err_m"])
            exact.append(float(np.abs(motion.joints[: len(prefix)] - prefix).max()))
            seams.append(seam_jump(motion.joints, len(prefix)))
            real_jumps.append(frame_jumps(real))
            real_seams.append(seam_jump(real, len(prefix)))
            skating.append(foot_skating_ratio(motion.joints))
            speed.append(relative_joint_speed(motion.joints))
            generated.append(motion)
    out = {"model_prefix_err_m": float(np.mean(attempt)), "prefix_max_dev_m": float(np.max(exact))}
    out |= seam_scores(seams, real_jumps, real_seams)
    out.update(skating=float(np.mean(skating)), rel_speed=float(np.mean(speed)), motions=len(clips))
    return {"scores": out, "motions": generated}
