"""The text-to-motion evaluation protocol of T2M / MLD / MotionLCM (official `test.py`; docs/evaluation.md).

Per replication: every item of the split is drawn with a random caption and a random crop (T2M's length
coin); the model generates a motion for the caption at the real motion's length; the evaluator embeds the
caption, the real motion and the generated one. From these: R-precision top-1/2/3 and MM-Dist in random
groups of 32, FID (generated vs real), Diversity over 300 pairs, and MultiModality from 100 captions x 30
generations. The "real" row scores the real motions the same way; its FID compares two independent draws of
the real set (the noise floor of FID on this split). Every table also has a "frozen real" sanity row: each real clip
replaced by its first pose carried along its real root trajectory; a metric that scores it close to the
real row cannot see motion. Each row also gets the kinematic metrics of eval/kinematics.py (relative joint
speed and its ratio to the real clips', foot skating, jitter). A VAE folder is evaluated by reconstruction: the
"generated" motion is the VAE's reconstruction of the real one, and MPJPE / feature error are added.

Everything random comes from the seed: replication r uses dataset epoch r and generators seeded (seed, r).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motionlcm.data.cleanup import clean_joints
from motionlcm.data.collate import collate_motion
from motionlcm.data.features import FOOT_CONTACT, features_to_joints, joints_to_features
from motionlcm.data.humanml3d import MAX_LENGTH, MIN_LENGTH, HumanML3DDataset
from motionlcm.data.normalizer import Normalizer
from motionlcm.eval import metrics
from motionlcm.eval.kinematics import freeze_motion, kinematic_summary
from motionlcm.eval.reconstruction import feature_error_sum, mpjpe_sum
from motionlcm.eval.timing import device_name

log = logging.getLogger(__name__)

# Official `TM2TMetrics` (R_size 32) and `configs/motionlcm_t2m.yaml` (DIVERSITY_TIMES 300, MM_NUM_SAMPLES 100,
# MM_NUM_REPEATS 30, MM_NUM_TIMES 10, REPLICATION_TIMES 20, SEED_VALUE 1234).
GROUP_SIZE = 32
DIVERSITY_TIMES = 300
MM_SAMPLES, MM_REPEATS, MM_TIMES = 100, 30, 10
REPLICATIONS = 20
SEED = 1234
KINEMATIC_KEYS = ("relative_speed", "skating", "jitter", "root_speed")  # eval/kinematics.py, per clip, averaged
FAST_SHARE = 0.1  # "fast" clips: the real clips in the top 10 % of root speed (runs and jogs), and their pairs


@dataclass
class EvalSettings:
    """What one evaluation run does (all of it is written to metrics.json)."""

    split: str = "test"
    replications: int = REPLICATIONS
    batch_size: int = 32  # MLD's TEST.BATCH_SIZE
    steps: int | None = None  # None: the model's default (teacher 50 DDIM, student 1)
    guidance: float | None = None  # None: the model's default for `steps`
    multimodality: bool = True
    mm_samples: int = MM_SAMPLES
    mm_repeats: int = MM_REPEATS
    mm_times: int = MM_TIMES
    diversity_times: int = DIVERSITY_TIMES
    min_length: int = MIN_LENGTH
    max_length: int = MAX_LENGTH
    seed: int = SEED
    control: str | None = None  # "pelvis", "all" or a joint name: generate under hints from the real clips
    density: int = 100  # control density: 100 / 25 (% of frames) or 1 / 2 / 5 (frames) (official TEST_DENSITY)
    temporal: bool = False  # control the first 25 % of the frames instead ("initial motions")
    warp: bool = True  # warp the joints onto the hints, as generation does (`motion_warp`)
    control_method: str = "controlnet"  # or "clt" / "both" (pipeline.CONTROL_METHODS)
    clt_steps: int = 400  # noise-tuning steps of clt / both (official 400)

    def check(self) -> None:
        if self.control is not None and self.density not in (1, 2, 5, 25, 100):
            raise ValueError(f"--density: expected 100, 25, 5, 2 or 1, got {self.density}")
        if self.replications < 1 or self.batch_size < 1:
            raise ValueError(f"replications and batch_size must be >= 1, got {self.replications}, {self.batch_size}")
        if self.multimodality and not 2 <= self.mm_times <= self.mm_repeats:
            raise ValueError(f"mm_times must be in 2..mm_repeats ({self.mm_repeats}), got {self.mm_times}")


# ----------------------------------------------------------------------------------------------------
# Evaluators


def load_evaluator(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """A trained evaluator folder (`motionlcm train evaluator`), a shipped one by name
    ("bandai-namco-evaluator", also from an installed package), or an official T2M deps folder."""
    from motionlcm.eval.contrastive import is_evaluator_folder, load_evaluator_folder
    from motionlcm.pipeline import resolve_model_dir

    path = resolve_model_dir(path)
    if not path.exists():
        raise ValueError(f"{path}: evaluator folder not found")
    if is_evaluator_folder(path):
        return load_evaluator_folder(path, device)
    from motionlcm.eval.t2m import T2MEvaluator

    return T2MEvaluator.from_official(path, device=device)


# ----------------------------------------------------------------------------------------------------
# What is evaluated: a function (batch, torch generator) -> un-normalised features (B, T, 263)

MotionSource = Callable[[dict, torch.Generator], Tensor]


@dataclass
class Subject:
    """The model under evaluation: how it makes motions, and what to call it."""

    name: str
    kind: str  # "vae" (reconstruction), "teacher" or "student"
    make: MotionSource
    normalizer: Normalizer
    device: torch.device
    settings: dict[str, Any]
    control_errors: list[np.ndarray] | None = None  # per generated motion, when generating under control
    seams: dict[str, list] | None = None  # temporal control: "seams" (m) and the real clips' "real_jumps"


def load_subject(
    model_dir: str | Path,
    settings: EvalSettings,
    device: str | torch.device = "cpu",
    text_encoder_path: str | None = None,
) -> Subject:
    """Wrap a model folder: generation folders through the pipeline, VAE folders by reconstruction."""
    from motionlcm.models.folder import load_model_folder
    from motionlcm.pipeline import MotionLCM, resolve_model_dir

    device = torch.device(device)
    model_dir = resolve_model_dir(model_dir)
    folder = load_model_folder(model_dir, device="cpu")
    if folder.mean is None:
        raise ValueError(f"{model_dir}: the model folder has no Mean.npy/Std.npy")
    normalizer = Normalizer(folder.mean, folder.std)
    if folder.kind == "vae":
        vae = folder.vae.to(device).eval()
        mean, std = (torch.as_tensor(a, device=device) for a in (folder.mean, folder.std))

        @torch.no_grad()
        def reconstruct(batch: dict, generator: torch.Generator) -> Tensor:
            x, lengths = batch["features"].to(device), batch["lengths"].to(device)
            z, _ = vae.encode(x, lengths)  # a posterior sample, as official evaluation (`MldVae.encode`: `rsample`)
            return vae.decode(z, lengths) * std + mean

        return Subject(str(model_dir), "vae", reconstruct, normalizer, device, {"latent": "posterior sample"})
    pipe = MotionLCM.from_pretrained(model_dir, device=str(device), text_encoder_path=text_encoder_path)
    steps, guidance = pipe.resolve_sampling(settings.steps, settings.guidance)

    def generate(batch: dict, generator: torch.Generator) -> Tensor:
        return pipe.generate_features(batch["texts"], batch["lengths"], steps, guidance, generator)

    sampler = "ddim" if pipe.kind == "teacher" else f"lcm-{pipe.lcm_preset}"
    sampling = {"steps": steps, "guidance": guidance, "sampler": sampler}
    if settings.control is not None:
        return _controlled_subject(pipe, str(model_dir), normalizer, device, settings, sampling)
    return Subject(str(model_dir), pipe.kind, generate, normalizer, device, sampling)


def _controlled_subject(
    pipe: Any, name: str, normalizer: Normalizer, device: torch.device, settings: EvalSettings, sampling: dict
) -> Subject:
    """Generation under hints taken from each real clip's own joints at the test density (official
    `random_mask`). The evaluator embeds the features of the warped joints (recomputed from them; without
    `warp`, the model's own), the kinematic columns clean them as for free generation, and the point errors
    of the joints users get (warped, conformed, foot-locked) go to `control_errors`."""
    from motionlcm.data.continuation import splice_prefix
    from motionlcm.data.hints import Hints, evaluation_mask, joint_set
    from motionlcm.data.motion_warp import warp_to_hints
    from motionlcm.eval.control import frame_jumps, point_errors, seam_jump

    joint_ids = joint_set(settings.control)
    rng = np.random.default_rng([settings.seed, 7])
    errors: list[np.ndarray] = []
    seams: dict[str, list] = {"seams": [], "real_jumps": [], "real_seams": []}
    method = settings.control_method
    controller = pipe.controller_for(set(joint_ids), settings.temporal).name if method != "clt" else None

    def generate(batch: dict, generator: torch.Generator) -> Tensor:
        lengths = batch["lengths"].tolist()
        real = features_to_joints(normalizer.denormalize(batch["features"])).double().numpy()
        hints = [
            Hints(
                real[i, :n].astype(np.float32), evaluation_mask(n, joint_ids, settings.density, rng, settings.temporal)
            )
            for i, n in enumerate(lengths)
        ]
        steps, guidance = sampling["steps"], sampling["guidance"]
        features = pipe.generate_features(
            batch["texts"], lengths, steps, guidance, generator, hints, method, settings.clt_steps, settings.temporal
        ).cpu()
        joints = features_to_joints(features).double().numpy()
        contacts = features[..., FOOT_CONTACT].double().numpy()
        out = torch.zeros_like(features)
        for i, (n, h) in enumerate(zip(lengths, hints, strict=True)):
            if settings.temporal:
                cleaned = clean_joints(joints[i, :n], contacts[i, :n])
                errors.append(point_errors(cleaned, h.values, h.mask))  # the model's own attempt at the prefix
                k = int(h.mask.any((1, 2)).sum())
                j = splice_prefix(real[i, :k], cleaned) if settings.warp else joints[i, :n]  # the splice: exact
                seams["seams"].append(seam_jump(j if settings.warp else cleaned, k))
                seams["real_jumps"].append(frame_jumps(real[i, :n]))
                seams["real_seams"].append(seam_jump(real[i, :n], k))
            else:
                j = warp_to_hints(joints[i, :n], h.values, h.mask) if settings.warp else joints[i, :n]
                errors.append(point_errors(clean_joints(j, contacts[i, :n]), h.values, h.mask))  # what users get
            # the evaluator and `user_joints` (which cleans once) see the warped joints, as for free generation;
            # their heights as generated (a lift by the clip's lowest dip would make planted feet hover)
            rows = joints_to_features(np.concatenate([j, j[-1:]]), floor=False)  # T rows: the last frame held
            out[i, :n] = torch.as_tensor(rows, dtype=out.dtype)
            out[i, :n, FOOT_CONTACT] = features[i, :n, FOOT_CONTACT]  # the model's own contact labels
        return out

    density = 25 if settings.temporal else settings.density  # temporal: the first 25 % (evaluation_mask)
    detail = {"control": settings.control, "density": density, "temporal": settings.temporal,
              "warp": settings.warp, "controller": controller, "control_method": method}  # fmt: skip
    if method != "controlnet":
        detail["clt_steps"] = settings.clt_steps
    return Subject(
        name,
        pipe.kind,
        generate,
        normalizer,
        device,
        {**sampling, **detail},
        errors,
        seams if settings.temporal else None,
    )


# ----------------------------------------------------------------------------------------------------
# One replication


def _batches(dataset: HumanML3DDataset, indices: np.ndarray, batch_size: int) -> Iterator[dict]:
    for start in range(0, len(indices), batch_size):
        yield collate_motion([dataset[int(i)] for i in indices[start : start + batch_size]])


def _generator(device: torch.device, *seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(np.random.SeedSequence(list(seed)).generate_state(1)[0]))
    return generator


def frozen_features(real: Tensor, lengths: Tensor) -> Tensor:
    """The "frozen real" sanity input (B, T, 263): each clip's first pose carried along its real root
    trajectory (`kinematics.freeze_motion`), turned back into features; zero past each length."""
    joints = features_to_joints(real).double().numpy()
    out = torch.zeros_like(real)
    for i, n in enumerate(lengths.tolist()):
        frozen = freeze_motion(joints[i, :n])
        frozen = np.concatenate([frozen, frozen[-1:]])  # features cover T-1 transitions: hold the last frame
        out[i, :n] = torch.as_tensor(joints_to_features(frozen), dtype=real.dtype)
    return out


def user_joints(features: Tensor, lengths: Tensor) -> list[np.ndarray]:
    """The joints users get of each clip, (n, 22, 3) float64: the features' positions conformed to the uniform
    skeleton with the feet locked during their labelled contacts (`clean_joints`, as `MotionLCM` returns
    them). The identity on real clips up to millimetres."""
    joints = features_to_joints(features).double().numpy()
    contacts = features[..., FOOT_CONTACT].double().cpu().numpy()
    return [clean_joints(joints[i, :n], contacts[i, :n]) for i, n in enumerate(lengths.tolist())]


def _kinematics(joints: list[np.ndarray]) -> np.ndarray:
    """(B, 4) relative speed, skating, jitter, root speed of each clip (`KINEMATIC_KEYS` order)."""
    rows = [[kinematic_summary(j)[k] for k in KINEMATIC_KEYS] for j in joints]
    return np.array(rows, dtype=np.float64).reshape(-1, len(KINEMATIC_KEYS))


def user_features(joints: list[np.ndarray], like: Tensor) -> Tensor:
    """Features (B, T, 263) shaped as `like`, re-derived from the joints users get (`joints_to_features`, every
    channel, contacts included, from the positions; the last frame held); zero past each clip.

    A model predicts positions, rotations, velocities and contact labels side by side, but users get only
    the positions (`user_joints`). The evaluator scores all channels, so a model whose rotation and velocity
    channels look real while its positions slide or blur still scores well; the same evaluator on these
    features sees what users see ("FID, joints" in the table). On real clips they are the clips' own features:
    the dataset computed them this way. The heights stay as given (`floor=False`): lifting a generated clip
    by a frame's dip below the floor would make its planted feet hover (and hide their skating)."""
    out = torch.zeros_like(like)
    for i, j in enumerate(joints):
        rows = joints_to_features(np.concatenate([j, j[-1:]]), floor=False)  # T-1 transitions: hold the last frame
        out[i, : len(j)] = torch.as_tensor(rows, dtype=out.dtype)
    return out


@torch.no_grad()
def embed_split(
    dataset: HumanML3DDataset,
    subject: Subject | None,
    evaluator: Any,
    batch_size: int,
    generator: torch.Generator | None,
    recon: dict | None = None,
) -> dict[str, np.ndarray]:
    """Real-motion embeddings of the whole split and, with a subject, text, generated-motion and frozen-real
    ones, plus the kinematic metrics of the real, generated and frozen clips (`kin_real`, ...) and the
    embeddings of the features re-derived from the joints users get (`user_real`, ...; `user_features`)."""
    out: dict[str, list] = {
        "text": [],
        "real": [],
        "gen": [],
        "frozen": [],
        "kin_real": [],
        "kin_gen": [],
        "kin_frozen": [],
        "user_real": [],
        "user_gen": [],
        "user_frozen": [],
    }
    for batch in _batches(dataset, np.arange(len(dataset)), batch_size):
        lengths = batch["lengths"]
        real = dataset.normalizer.denormalize(batch["features"])
        out["real"].append(evaluator.embed_motions(real, lengths).cpu())
        if subject is None:  # the second draw of the real set only needs its motions
            continue
        out["text"].append(evaluator.embed_texts(batch["texts"], batch["tokens"]).cpu())
        gen = subject.make(batch, generator).cpu()
        out["gen"].append(evaluator.embed_motions(gen, lengths).cpu())
        frozen = frozen_features(real, lengths)
        out["frozen"].append(evaluator.embed_motions(frozen, lengths).cpu())
        for role, motion in (("real", real), ("gen", gen), ("frozen", frozen)):
            joints = user_joints(motion, lengths)
            out[f"kin_{role}"].append(torch.as_tensor(_kinematics(joints)))
            out[f"user_{role}"].append(evaluator.embed_motions(user_features(joints, motion), lengths).cpu())
        if recon is not None:
            _add_reconstruction_errors(recon, gen, real, batch, subject.normalizer)
    return {k: torch.cat(v).double().numpy() for k, v in out.items() if v}


def kinematic_scores(values: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Means of (N, 4) per-clip kinematics and their ratios to the real clips' (`values[i]` is generated for
    `real[i]`'s caption and length): relative speed, root speed, and root speed over the fastest `FAST_SHARE`
    of the real clips and their pairs (a run carried at twice its pace hides in the mean over all clips)."""
    means = {key: float(values[:, i].mean()) for i, key in enumerate(KINEMATIC_KEYS)}
    means["relative_speed_ratio"] = means["relative_speed"] / max(float(real[:, 0].mean()), 1e-12)
    root = KINEMATIC_KEYS.index("root_speed")
    means["root_speed_ratio"] = means["root_speed"] / max(float(real[:, root].mean()), 1e-12)
    fast = np.argsort(-real[:, root], kind="stable")[: max(1, round(FAST_SHARE * len(real)))]
    means["fast_root_speed_ratio"] = float(values[fast, root].mean()) / max(float(real[fast, root].mean()), 1e-12)
    return means


def _add_reconstruction_errors(totals: dict, gen: Tensor, real: Tensor, batch: dict, normalizer: Normalizer) -> None:
    lengths, mask = batch["lengths"], batch["mask"].float()
    pred, target = features_to_joints(gen), features_to_joints(real)
    totals["mpjpe"] += float(mpjpe_sum(pred, target, mask, align_root=True))
    totals["mpjpe_unaligned"] += float(mpjpe_sum(pred, target, mask, align_root=False))
    totals["feature_error"] += float(feature_error_sum(normalizer.normalize(gen), normalizer.normalize(real), lengths))
    totals["frames"] += int(lengths.sum())


@torch.no_grad()
def multimodality_embeddings(
    dataset: HumanML3DDataset,
    subject: Subject,
    evaluator: Any,
    settings: EvalSettings,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> np.ndarray:
    """(mm_samples, mm_repeats, D): each of mm_samples random items generated mm_repeats times."""
    picks = rng.choice(len(dataset), size=min(settings.mm_samples, len(dataset)), replace=False)
    rows = []
    for index in picks:
        batch = collate_motion([dataset[int(index)]] * settings.mm_repeats)
        gen = subject.make(batch, generator).cpu()
        rows.append(evaluator.embed_motions(gen, batch["lengths"]).cpu())
    return torch.stack(rows).double().numpy()


def score(
    text: np.ndarray,
    motion: np.ndarray,
    reference: np.ndarray,
    settings: EvalSettings,
    rng: np.random.Generator,
    perm: np.ndarray,
) -> dict[str, float]:
    """R-precision, MM-Dist, FID against `reference` and Diversity of one embedding set."""
    out = metrics.r_precision_and_matching(text, motion, perm=perm, group_size=GROUP_SIZE)
    out["fid"] = metrics.fid(motion, reference)
    out["diversity"] = metrics.diversity(motion, times=min(settings.diversity_times, len(motion) - 1), rng=rng)
    return out


def user_scores(text: np.ndarray, motion: np.ndarray, reference: np.ndarray, perm: np.ndarray) -> dict[str, float]:
    """FID and R@3 of `user_features` embeddings ("FID, joints", "R@3, joints"): the evaluator on what users
    see."""
    matched = metrics.r_precision_and_matching(text, motion, perm=perm, group_size=GROUP_SIZE)
    return {"fid_joints": metrics.fid(motion, reference), "top3_joints": matched["top3"]}


def run_replication(
    r: int, dataset: HumanML3DDataset, subject: Subject, evaluator: Any, settings: EvalSettings, recon: dict | None
) -> dict[str, dict[str, float]]:
    """Scores of replication r for the real motions and the subject."""
    rng = np.random.default_rng([settings.seed, r])
    generator = _generator(subject.device, settings.seed, r)
    dataset.set_epoch(2 * r)
    emb = embed_split(dataset, subject, evaluator, settings.batch_size, generator, recon)
    dataset.set_epoch(2 * r + 1)  # an independent draw of the real set: the FID noise floor
    second = embed_split(dataset, None, evaluator, settings.batch_size, None)["real"]
    perm = rng.permutation(len(emb["text"]))
    real = score(emb["text"], emb["real"], second, settings, rng, perm) | kinematic_scores(
        emb["kin_real"], emb["kin_real"]
    )
    model = score(emb["text"], emb["gen"], emb["real"], settings, rng, perm) | kinematic_scores(
        emb["kin_gen"], emb["kin_real"]
    )
    real |= user_scores(emb["text"], emb["user_real"], second, perm)
    model |= user_scores(emb["text"], emb["user_gen"], emb["real"], perm)
    if subject.control_errors is not None:
        from motionlcm.eval.control import control_errors

        model |= control_errors(subject.control_errors)
        subject.control_errors.clear()
    if subject.seams is not None:
        from motionlcm.eval.control import seam_scores

        model |= seam_scores(subject.seams["seams"], subject.seams["real_jumps"], subject.seams["real_seams"])
        for values in subject.seams.values():
            values.clear()
    if settings.multimodality and subject.kind != "vae" and subject.control_errors is None:
        dataset.set_epoch(2 * r)
        model["multimodality"] = metrics.multimodality(
            multimodality_embeddings(dataset, subject, evaluator, settings, rng, generator),
            times=settings.mm_times,
            rng=rng,
        )
    # the sanity row draws from its own generator: the model row's numbers stay those of earlier versions
    frozen_rng = np.random.default_rng([settings.seed, r, 1])
    frozen = score(emb["text"], emb["frozen"], emb["real"], settings, frozen_rng, perm)
    frozen |= kinematic_scores(emb["kin_frozen"], emb["kin_real"])
    frozen |= user_scores(emb["text"], emb["user_frozen"], emb["real"], perm)
    return {"real": real, "frozen": frozen, "model": model}


# ----------------------------------------------------------------------------------------------------
# The whole evaluation


def evaluate(
    subject: Subject, dataset_dir: str | Path, evaluator: Any, settings: EvalSettings, progress: bool = True
) -> dict[str, Any]:
    """Run every replication; returns the metrics.json content (per-replication values and summaries)."""
    settings.check()
    dataset = HumanML3DDataset(
        dataset_dir,
        split=settings.split,
        normalizer=subject.normalizer,
        min_length=settings.min_length,
        max_length=settings.max_length,
        random_crop=True,
        seed=settings.seed,
    )
    if len(dataset) < GROUP_SIZE:
        raise ValueError(
            f"{dataset_dir}: split {settings.split!r} has {len(dataset)} usable items; "
            f"R-precision needs at least {GROUP_SIZE}"
        )
    recon = {"mpjpe": 0.0, "mpjpe_unaligned": 0.0, "feature_error": 0.0, "frames": 0} if subject.kind == "vae" else None
    runs = []
    for r in _progress(range(settings.replications), progress, "replications"):
        result = run_replication(r, dataset, subject, evaluator, settings, recon)
        runs.append(result)
        log.info("replication %d: %s", r, {k: round(v, 4) for k, v in result["model"].items()})
    summary = {row: metrics.summarize_replications([run[row] for run in runs]) for row in ROWS}
    used = len(dataset) // GROUP_SIZE * GROUP_SIZE
    report = {
        "model": subject.name,
        "kind": subject.kind,
        "sampling": subject.settings,
        "dataset": str(dataset_dir),
        "evaluator": getattr(evaluator, "name", type(evaluator).__name__),
        "settings": asdict(settings),
        "samples": len(dataset),
        "r_precision_samples": used,
        "dropped": dataset.dropped,
        "replications": runs,
        "summary": summary,
        "device": device_name(subject.device),
        "torch": torch.__version__,
    }
    if recon is not None:
        frames = max(1, recon["frames"])
        report["reconstruction"] = {
            "mpjpe_mm": 1000 * recon["mpjpe"] / frames,
            "mpjpe_unaligned_mm": 1000 * recon["mpjpe_unaligned"] / frames,
            "feature_error": recon["feature_error"] / frames,
            "frames": recon["frames"],
        }
    return report


def _progress(iterable: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------------
# The paper-style table

COLUMNS = [
    ("top1", "R@1"),
    ("top2", "R@2"),
    ("top3", "R@3"),
    ("fid", "FID"),
    ("fid_joints", "FID, joints"),
    ("top3_joints", "R@3, joints"),
    ("matching_score", "MM-Dist"),
    ("diversity", "Diversity"),
    ("multimodality", "MModality"),
    ("relative_speed", "Rel. speed (m/s)"),
    ("relative_speed_ratio", "Speed / real"),
    ("root_speed_ratio", "Root speed / real"),
    ("fast_root_speed_ratio", "Fast clips' root speed / real"),
    ("skating", "Skating"),
    ("jitter", "Jitter (m/s³)"),
]
CONTROL_COLUMNS = [
    ("traj_fail_20cm", "Traj. err 20 cm"),
    ("traj_fail_50cm", "Traj. err 50 cm"),
    ("loc_fail_20cm", "Loc. err 20 cm"),
    ("loc_fail_50cm", "Loc. err 50 cm"),
    ("avg_err_m", "Avg. err (m)"),
]
SEAM_COLUMNS = [
    ("seam_ratio_mean", "mean move / real p95"),
    ("seam_ratio_max", "largest"),
    ("seam_fail", "share above 1.5x"),
    ("real_seam_fail", "real clips above 1.5x there"),
    ("real_jump_p95_m", "real p95 (m)"),
]
ROWS = ("real", "frozen", "model")  # "frozen": the sanity row, real clips replaced by their first pose


def format_stat(stats: dict[str, float] | None) -> str:
    """`mean ± CI` with 3 decimals, or 2 significant digits for values below 0.001 (e.g. the real-motion FID)."""
    if stats is None:
        return "-"
    mean, ci = stats["mean"], stats["conf_interval"]
    if mean != 0 and abs(mean) < 1e-3:
        return f"{mean:.1e} ± {ci:.0e}"
    return f"{mean:.3f} ± {ci:.3f}"


def format_table(report: dict[str, Any]) -> str:
    """Markdown table: the real-motion, frozen-real and model rows, mean +/- 95% CI for every metric."""
    header = "| | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    sampling = report["sampling"]
    name = {"vae": "VAE reconstruction", "teacher": "teacher", "student": "student"}[report["kind"]]
    if "steps" in sampling:
        name += f" ({sampling['sampler']}, {sampling['steps']} steps, guidance {sampling['guidance']:g})"
    for row, label in (("real", "Real motion"), ("frozen", "Frozen real (sanity)"), ("model", name)):
        if row not in report["summary"]:
            continue
        cells = [format_stat(report["summary"][row].get(key)) for key, _ in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    """What `motionlcm eval` prints: `format_table`, then the reconstruction, AITS and sample-count lines."""
    lines = [format_table(report)]
    if "reconstruction" in report:
        rec = report["reconstruction"]
        lines.append(
            f"reconstruction: MPJPE {rec['mpjpe_mm']:.1f} mm (unaligned {rec['mpjpe_unaligned_mm']:.1f} mm), "
            f"feature error {rec['feature_error']:.4f} over {rec['frames']} frames"
        )
    control = report["summary"].get("model", {})
    if "avg_err_m" in control:
        sampling = report["sampling"]
        lines.append(
            f"control ({sampling['control']}, density {sampling['density']}"
            f"{', temporal' if sampling['temporal'] else ''}, {sampling['control_method']}, "
            f"controller {sampling['controller']}, "
            f"warp {'on' if sampling['warp'] else 'off'}): "
            + ", ".join(f"{label} {format_stat(control[key])}" for key, label in CONTROL_COLUMNS)
        )
        if "seam_ratio_mean" in control:
            lines.append(
                "temporal: the errors are the model's own attempt at the prefix (the splice makes them 0); seam "
                + ", ".join(f"{label} {format_stat(control[key])}" for key, label in SEAM_COLUMNS)
            )
    if "aits" in report:
        a = report["aits"]
        stages = ", ".join(f"{k} {1000 * v:.1f}" for k, v in a["stages"].items())
        lines.append(f"AITS {1000 * a['aits_s']:.1f} ms/sentence at batch 1 on {a['device']} ({stages} ms)")
    lines.append(
        f"{report['samples']} samples ({report['r_precision_samples']} in R-precision groups), "
        f"{report['settings']['replications']} replications; dropped: {report['dropped'] or 'nothing'}"
    )
    return "\n".join(lines)
