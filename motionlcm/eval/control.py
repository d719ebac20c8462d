"""Control errors of generated motions against their hints, as MotionLCM and OmniControl report them
(official `mld/models/metrics/cm.py`; shared/docs/motionlcm-reference.md section 7.4).

Per controlled point (a joint at a frame; its controlled axes only) the L2 distance in metres;
* Traj. err (20 / 50 cm): share of motions with any controlled point beyond the threshold;
* Loc. err (20 / 50 cm): share of controlled points beyond the threshold;
* Avg. err: mean point error (m).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from motionlcm.data.hints import point_errors

THRESHOLDS = (0.2, 0.5)  # metres
__all__ = ["control_errors", "evaluate_control", "point_errors", "real_test_hints"]


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
    from motionlcm.data.hints import TEMPORAL_FRACTION, evaluation_mask

    density = int(TEMPORAL_FRACTION * 100) if temporal else density
    mask = evaluation_mask(len(joints), joint_ids, density, rng, temporal)
    return np.where(mask, joints, np.nan).astype(np.float32)


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

    rng = np.random.default_rng(seed)
    hints = [real_test_hints(j, joint_ids, density, rng, temporal) for _, j in clips]
    errors, skating, speed, generated = [], [], [], []
    batches = range(0, len(clips), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"control {density}", dynamic_ncols=True)
    for start in batches:
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
