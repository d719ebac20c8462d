"""Train a VAE, an MLD teacher, an LCM student, a motion ControlNet or an evaluator from a resolved config:
data, system, Lightning Trainer, export.

Checkpoints go to `<output_dir>/checkpoints` (best-k by validation loss plus `last.ckpt`), logs to
`<output_dir>/logs` (CSV, and TensorBoard when installed), the resolved config to
`<output_dir>/config.yaml`, and the trained model folder to `<output_dir>/model`.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from motionlcm import presets
from motionlcm.config import build_dataclass, load_config, save_config
from motionlcm.data.captions import CaptionRules, PromptRewrites
from motionlcm.data.features import features_to_joints
from motionlcm.data.hints import HintNormalizer, joint_set
from motionlcm.data.normalizer import Normalizer
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.lcm import LCMScheduler
from motionlcm.eval.contrastive import (
    ContrastiveEvaluator,
    EvaluatorConfig,
    Vocabulary,
    caption_tokens,
    save_evaluator,
)
from motionlcm.models.control_folder import install_controller, save_control_folder
from motionlcm.models.controlnet import TrajectoryEncoder, TrajectoryEncoderConfig, controlnet_from_denoiser
from motionlcm.models.conv_vae import fit_latent_std
from motionlcm.models.denoiser import DenoiserConfig, LatentDenoiser
from motionlcm.models.folder import load_model_folder, save_model_folder
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.models.vae import VAEConfig, build_vae
from motionlcm.train.control_system import ControlSystem
from motionlcm.train.datamodule import HumanML3DDataModule
from motionlcm.train.distill_system import DistillSystem
from motionlcm.train.evaluator_system import EvaluatorSystem
from motionlcm.train.teacher_system import TeacherSystem
from motionlcm.train.vae_system import VAESystem

KINDS = ("vae", "teacher", "student", "control", "evaluator")


def _paths(config: dict, resume: bool, force: bool) -> tuple[Path, Path | None]:
    out = Path(config.get("output_dir") or "runs/run")
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise ValueError(f"{last}: no checkpoint to resume from")
    if resume:
        check_checkpoint(last)
    if last.is_file() and not resume:
        if not force:
            raise ValueError(f"{out}: holds a run already; use --resume to continue it or --force to start over")
        # starting over discards the old run's checkpoints and logs (its logs would sit beside the new run's
        # as version_0, version_1, ... and mix into plots); its exported model stays until the new one replaces it
        for part in ("checkpoints", "logs"):
            shutil.rmtree(out / part, ignore_errors=True)
    return out, last if resume else None


def check_checkpoint(path: Path) -> dict:
    """Read a training checkpoint with torch's safe loader (tensors and plain containers only: a file holding
    other pickled objects is refused, never run); a truncated, empty or garbage file is one ValueError."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a readable training checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "global_step" not in ckpt:
        raise ValueError(f"{path}: not a Lightning training checkpoint (no state_dict / global_step)")
    return ckpt


def _precision(value: str | int) -> str | int:
    if value == "auto":
        return "bf16-mixed" if torch.cuda.is_available() else "32-true"
    return value


def _loggers(out: Path) -> list:
    loggers = [CSVLogger(out, name="logs")]  # logs/version_N: a resumed run adds a version, never overwrites
    try:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="logs", version=loggers[0].version, default_hp_metric=False))
    except (ImportError, ModuleNotFoundError):
        pass
    return loggers


def check_run_settings(config: dict) -> None:
    """Fail at once, with the key named, on settings that would crash, hang or train on NaN later: the step
    count, the accelerator and device count this machine has, and non-finite or non-positive rates."""
    trainer = config.get("trainer") or {}
    steps = trainer.get("max_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"trainer.max_steps: expected an integer >= 1, got {steps!r}")
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"trainer.accelerator={accelerator}: no CUDA device is available (use cpu)")
    if accelerator not in ("auto", "cpu", "gpu", "cuda", "mps"):
        raise ValueError(f"trainer.accelerator: unknown {accelerator!r}; use auto, cpu, gpu or mps")
    devices = trainer.get("devices", "auto")
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    available = torch.cuda.device_count() if on_gpu else (os.cpu_count() or 1)  # CPU: DDP processes
    if devices not in ("auto", -1) and (
        isinstance(devices, bool) or not isinstance(devices, int) or not 1 <= devices <= available
    ):
        where = f"{available} CUDA device(s)" if on_gpu else f"at most one CPU process per core: {available}"
        raise ValueError(f"trainer.devices: {devices!r} is not available ({where})")
    for key, value in (config.get("system") or {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"system.{key}: must be finite, got {value}")
    lr = (config.get("system") or {}).get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0):
        raise ValueError(f"system.lr: expected a number > 0, got {lr!r}")


def build_trainer(config: dict, out: Path, progress: bool = True) -> pl.Trainer:
    """A Lightning Trainer from the `trainer` and `checkpoint` sections."""
    trainer_args = dict(config["trainer"])
    ckpt = config["checkpoint"]
    trainer_args["precision"] = _precision(trainer_args.get("precision", "auto"))
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="step{step:07d}-loss{val/loss:.5f}",
        auto_insert_metric_name=False,
        monitor=ckpt.get("monitor", "val/loss"),
        save_top_k=ckpt.get("save_top_k", 3),
        save_last=True,
        # always overwrite last.ckpt: with the counter, a run copied to a new folder and resumed writes
        # last-v1.ckpt and leaves the stale last.ckpt for the next --resume
        enable_version_counter=False,
    )
    return pl.Trainer(
        **trainer_args,
        default_root_dir=out,
        logger=_loggers(out),
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="step")],
        val_check_interval=ckpt.get("every_n_steps", 1000),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
    )


def _datamodule(config: dict) -> HumanML3DDataModule:
    data = dict(config.get("data") or {})
    data.setdefault("seed", config.get("seed"))
    if "root" not in data:
        raise ValueError("config: data.root is required (a HumanML3D-layout dataset folder)")
    return HumanML3DDataModule(**data)


def _vae_system(config: dict, dm: HumanML3DDataModule) -> VAESystem:
    vae = build_vae(build_dataclass(VAEConfig, config.get("model"), "model"))
    if config.get("init_dir"):  # fine-tune: start from a trained VAE of the same shape
        folder = _load_trained_folder(config["init_dir"], ("vae", "teacher", "student"), "init_dir", "vae")
        if folder.vae.config != vae.config:
            raise ValueError(f"{config['init_dir']}: its VAE's config differs from this config's model section")
        if folder.mean is not None and not np.allclose(folder.mean, dm.normalizer.mean, atol=1e-6):
            raise ValueError(f"{config['init_dir']}: its Mean/Std differ from {dm.root}'s")
        vae.load_state_dict(folder.vae.state_dict())
    return VAESystem(vae, dm.normalizer, total_steps=config["trainer"]["max_steps"], **(config.get("system") or {}))


def _load_trained_folder(path: str | None, kinds: tuple[str, ...], key: str, trained_by: str):
    """The model folder named by config `key`; its kind must be one of `kinds` (every kind holds a VAE)."""
    if not path:
        raise ValueError(f"config: {key} is required (a model folder from `motionlcm train {trained_by}`)")
    folder = load_model_folder(path)
    if folder.kind not in kinds:
        raise ValueError(f"{path}: expected a {' or '.join(kinds)} model folder, found {folder.kind!r}")
    return folder


def _text_encoder_args(config: dict) -> dict:
    """The config's text-encoder arguments, batch-invariant unless it says otherwise: a caption's embedding
    must not depend on its batch neighbours, or a resumed run (empty cache) drifts from an uninterrupted one."""
    return {"batch_invariant": True, **(config.get("text_encoder") or {})}


def _feature_stats(folder) -> dict[str, torch.Tensor]:
    """The folder's Mean/Std as system arguments (what its VAE decodes to), or nothing if it has none."""
    return {} if folder.mean is None else {"mean": torch.as_tensor(folder.mean), "std": torch.as_tensor(folder.std)}


def _teacher_denoiser_config(config: dict, folder: Any, text_dim: int) -> DenoiserConfig:
    """The teacher's denoiser config: the `model` section, with the text width and the VAE's latent shape."""
    model = dict(config.get("model") or {})
    model.setdefault("text_dim", text_dim)
    model.setdefault("latent_size", folder.vae.config.latent_size)
    model.setdefault("latent_dim", folder.vae.config.latent_dim)
    denoiser_config = build_dataclass(DenoiserConfig, model, "model")
    latent_shape = (folder.vae.config.latent_size, folder.vae.config.latent_dim)
    if (denoiser_config.latent_size, denoiser_config.latent_dim) != latent_shape:
        raise ValueError("model: denoiser latent shape differs from the VAE's")
    return denoiser_config


def _teacher_system(config: dict, dm: HumanML3DDataModule) -> TeacherSystem:
    vae_dir = config.get("vae_dir")
    folder = _load_trained_folder(vae_dir, ("vae", "teacher", "student"), "vae_dir", "vae")
    if folder.mean is not None:  # the latents only mean something with the statistics the VAE was trained on
        if not np.allclose(folder.mean, dm.normalizer.mean, atol=1e-6):
            warnings.warn(f"{vae_dir}: using the VAE's Mean/Std, which differ from {dm.root}'s", stacklevel=2)
        dm.set_normalizer(Normalizer(folder.mean, folder.std))
    text_encoder = TextEncoder(**_text_encoder_args(config))
    denoiser_config = _teacher_denoiser_config(config, folder, text_encoder.dim)
    scheduler = DDIMScheduler(**(config.get("scheduler") or {}))
    denoiser = LatentDenoiser(denoiser_config)
    if config.get("init_dir"):  # fine-tune: start from a trained teacher of this VAE
        start = _load_trained_folder(config["init_dir"], ("teacher",), "init_dir", "teacher")
        if not _same_weights(start.vae, folder.vae):
            raise ValueError(f"{config['init_dir']}: its VAE is not {vae_dir}'s")
        if start.denoiser.config != denoiser_config:
            raise ValueError(f"{config['init_dir']}: its denoiser's config differs from this config's model section")
        denoiser.load_state_dict(start.denoiser.float().state_dict())
    return TeacherSystem(
        denoiser,
        folder.vae,
        text_encoder,
        scheduler,
        total_steps=config["trainer"]["max_steps"],
        **_feature_stats(folder),
        **(config.get("system") or {}),
    )


def _distill_system(config: dict, dm: HumanML3DDataModule) -> DistillSystem:
    folder = _load_trained_folder(config.get("teacher_dir"), ("teacher",), "teacher_dir", "teacher")
    dm.set_normalizer(Normalizer(folder.mean, folder.std))
    preset = presets.check_version(config.get("preset", presets.DEFAULT), "config: preset")
    system_args = {**presets.DISTILLATION[preset], **(config.get("system") or {})}
    presets.guidance_table(config.get("sampling_guidance") or {}, "config: sampling_guidance")
    sampler = LCMScheduler.from_preset(preset)
    sampler.set_timesteps(1)
    system_args.setdefault("one_step_timestep", int(sampler.timesteps[0]))  # V2 799, V1 999
    if config.get("init_dir"):  # continue a distillation: start from a trained student of this teacher
        student = _load_trained_folder(config["init_dir"], ("student",), "init_dir", "student")
        if not _same_weights(student.vae, folder.vae):
            raise ValueError(f"{config['init_dir']}: its VAE is not the teacher's ({config['teacher_dir']})")
        system_args["student"] = student.denoiser.float()
    text_encoder = TextEncoder.from_reference(folder.text_encoder, **_text_encoder_args(config))
    return DistillSystem(
        folder.denoiser,
        folder.vae,
        text_encoder,
        DDIMScheduler(**(config.get("scheduler") or {})),
        total_steps=config["trainer"]["max_steps"],
        **_feature_stats(folder),
        **system_args,
    )


def fit_hint_normalizer(dm: HumanML3DDataModule, clips: int = 1024) -> HintNormalizer:
    """Joint-position statistics of up to `clips` training clips (evenly spread, whole clips)."""
    items = dm.datasets["train"].items
    picks = np.linspace(0, len(items) - 1, min(clips, len(items))).round().astype(int)
    return HintNormalizer.fit([features_to_joints(items[int(i)].motion) for i in picks])


def _trajectory_encoder(config: dict, folder) -> TrajectoryEncoder:
    """The config's trajectory encoder, shaped like the student's latents (and the conv VAE's segments)."""
    args = dict(config.get("trajectory_encoder") or {})
    args.setdefault("latent_size", folder.denoiser.config.latent_size)
    args.setdefault("latent_dim", folder.denoiser.config.latent_dim)
    if folder.vae.config.arch == "conv":
        args.setdefault("latent_frames", folder.vae.config.latent_frames)
    return TrajectoryEncoder(build_dataclass(TrajectoryEncoderConfig, args, "trajectory_encoder"))


def _control_system(config: dict, dm: HumanML3DDataModule) -> ControlSystem:
    folder = _load_trained_folder(config.get("model_dir"), ("student",), "model_dir", "student")
    dm.set_normalizer(Normalizer(folder.mean, folder.std))
    preset = presets.check_version(folder.meta.get("sampling", {}).get("scheduler", presets.DEFAULT), "scheduler")
    sampler = LCMScheduler.from_preset(preset)
    sampler.set_timesteps(1)
    spec = control_spec(config)
    student = folder.denoiser.float()
    encoder = _trajectory_encoder(config, folder)
    controlnet = controlnet_from_denoiser(student, (config.get("system") or {}).get("cond_act", "silu"))
    if spec["init_from"]:
        _init_controller(spec["init_from"], controlnet, encoder)
    system_args = {
        "num_ddim_timesteps": presets.DISTILLATION[preset]["num_ddim_timesteps"],
        **(config.get("system") or {}),
    }
    system_args.setdefault("one_step_timestep", int(sampler.timesteps[0]))
    system_args.pop("cond_act", None)
    # the guidance range the student was distilled on (older folders: the official 5..15, the system's default)
    w_range = presets.w_range_of(folder.meta.get("sampling", {}).get("w_range"), "model_dir: meta.sampling.w_range")
    if w_range is not None:
        system_args.setdefault("w_min", w_range[0])
        system_args.setdefault("w_max", w_range[1])
    return ControlSystem(
        student,
        folder.vae,
        TextEncoder.from_reference(folder.text_encoder, **_text_encoder_args(config)),
        DDIMScheduler(**(config.get("scheduler") or {})),
        controlnet,
        encoder,
        fit_hint_normalizer(dm),
        torch.as_tensor(folder.mean),
        torch.as_tensor(folder.std),
        joints=spec["joints"],
        temporal=spec["temporal"],
        temporal_share=spec["temporal_share"],
        prefix_joints=spec["prefix_joints"],
        random_prefix=spec["random_prefix"],
        joint_subsets=spec["joint_subsets"],
        total_steps=config["trainer"]["max_steps"],
        **system_args,
    )


CONTROL_KEYS = (
    "joints",
    "temporal",
    "temporal_share",
    "prefix_joints",
    "random_prefix",
    "joint_subsets",
    "init_from",
)


def control_spec(config: dict) -> dict[str, Any]:
    """The `control:` section of a control config, checked: `joints` (a set name of `hints.CONTROL_JOINTS` or a
    joint name), `temporal` (prefixes only, the official "t" models), `temporal_share` (a share of prefix
    samples in a spatial run), `prefix_joints` (set names a prefix holds), `random_prefix`, `joint_subsets` (random subsets of `joints` per spatial sample), `init_from` (a
    controller folder whose weights start the run)."""
    control = dict(config.get("control") or {})
    unknown = sorted(set(control) - set(CONTROL_KEYS))
    if unknown:
        raise ValueError(f"config: control: unknown keys {unknown} ({', '.join(CONTROL_KEYS)})")
    names = control.get("prefix_joints") or []
    names = [names] if isinstance(names, str) else list(names)
    return {
        "joints": joint_set(str(control.get("joints", "pelvis"))),
        "temporal": bool(control.get("temporal", False)),
        "temporal_share": float(control.get("temporal_share", 0.0)),
        "prefix_joints": tuple(joint_set(str(n)) for n in names) or None,
        "random_prefix": bool(control.get("random_prefix", False)),
        "joint_subsets": bool(control.get("joint_subsets", False)),
        "init_from": control.get("init_from"),
    }


def control_modes(spec: dict[str, Any]) -> dict[str, Any]:
    """What a controller trained under `spec` can do, for its folder header: spatial control of `joints`, and
    prefixes (`continue_motion`) of the `prefix_joints`."""
    prefixes = spec["temporal"] or spec["temporal_share"] > 0
    prefix_joints = sorted({j for s in (spec["prefix_joints"] or (spec["joints"],)) for j in s}) if prefixes else []
    return {
        "joints": spec["joints"],
        "temporal": bool(prefixes),
        "spatial": not spec["temporal"],
        "prefix_joints": prefix_joints,
    }


def _init_controller(source: str | Path, controlnet: torch.nn.Module, encoder: torch.nn.Module) -> None:
    """Start a run from a trained controller's weights (`control.init_from`); the layouts must match."""
    from motionlcm.models.control_folder import load_control_folder

    start = load_control_folder(source)
    for mine, theirs, what in (
        (controlnet, start.controlnet, "ControlNet"),
        (encoder, start.trajectory_encoder, "trajectory encoder"),
    ):
        try:
            mine.load_state_dict({k: v.float() for k, v in theirs.state_dict().items()}, strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"control.init_from {source}: its {what} does not fit this config ({str(error).splitlines()[0]})"
            ) from None


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Same layout and the same weights up to half-precision rounding (a shipped fp16 copy of a run's model)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].shape == sb[k].shape and torch.allclose(sa[k].float(), sb[k].float(), rtol=2e-3, atol=1e-4) for k in sa
    )


def _evaluator_system(config: dict, dm: HumanML3DDataModule) -> EvaluatorSystem:
    train_items = dm.datasets["train"].items
    vocabulary = Vocabulary.build(caption_tokens(c.text, c.tokens) for item in train_items for c in item.captions)
    evaluator_config = build_dataclass(EvaluatorConfig, config.get("model"), "model")
    evaluator = ContrastiveEvaluator(evaluator_config, vocabulary, dm.normalizer.mean, dm.normalizer.std)
    return EvaluatorSystem(evaluator, total_steps=config["trainer"]["max_steps"], **(config.get("system") or {}))


def _latent_std_batches(dm: HumanML3DDataModule, clips: int = 2048, batch_size: int = 64):
    """Up to `clips` training clips (evenly spread, their epoch-0 crops) for `fit_latent_std`."""
    from motionlcm.data.collate import collate_motion

    dataset = dm.datasets["train"]
    picks = np.linspace(0, len(dataset) - 1, min(clips, len(dataset))).round().astype(int)
    for start in range(0, len(picks), batch_size):
        yield collate_motion([dataset[int(i)] for i in picks[start : start + batch_size]])


def dataset_prompt_rewrites(root: str | Path) -> PromptRewrites:
    """The prompt rewrites of the caption rules a BVH import captioned `root` with (`import/captions.yaml`,
    `prompts.rewrite`); none for a dataset without such rules (HumanML3D's own captions)."""
    rules = Path(root) / "import" / "captions.yaml"
    return CaptionRules.load(rules).prompt_rewrites if rules.is_file() else PromptRewrites()


def export_model(kind: str, system: pl.LightningModule, dm: HumanML3DDataModule, out: Path, config: dict) -> Path:
    """Write `<out>/model`: the trained weights, the dataset statistics and the text-encoder reference."""
    meta = {
        "trained_by": f"motionlcm train {kind}",
        "config": str(out / "config.yaml"),
        "dataset": str(dm.root),
        "steps": int(system.global_step),
    }
    if kind == "evaluator":
        meta["validation"] = {k: float(v) for k, v in system.trainer.callback_metrics.items() if k.startswith("val/")}
        return save_evaluator(system.evaluator, out / "model", meta=meta, overwrite=True)
    if kind == "vae":
        vae = system.export_vae()
        if hasattr(vae, "latent_std"):
            meta["latent_std"] = fit_latent_std(vae.eval(), _latent_std_batches(dm)).tolist()
        return save_model_folder(
            out / "model", vae=vae, mean=dm.normalizer.mean, std=dm.normalizer.std, meta=meta, overwrite=True
        )
    if kind == "control":
        meta["model_dir"] = str(config.get("model_dir"))
        meta["validation"] = {k: float(v) for k, v in system.trainer.callback_metrics.items() if k.startswith("val/")}
        return save_control_folder(
            out / "model",
            controlnet=system.controlnet,
            trajectory_encoder=system.trajectory_encoder,
            hint_normalizer=system.hint_normalizer,
            **control_modes(control_spec(config)),
            base=system.student,
            meta=meta,
            overwrite=True,
        )
    if kind == "student":
        meta["sampling"] = {
            "scheduler": config.get("preset", presets.DEFAULT),
            "exported": system.export,
            "w_range": [float(w) for w in system.w_range],  # LCM form, w = scale - 1
        }
        if config.get("sampling_guidance"):  # the scales this student was distilled for ({steps: scale})
            table = presets.guidance_table(config["sampling_guidance"], "config: sampling_guidance")
            meta["sampling"]["guidance"] = {str(k): v for k, v in table.items()}
        denoiser = system.export_student()
    else:
        denoiser = system.export_denoiser()
    rewrites = dataset_prompt_rewrites(dm.root)
    if rewrites:  # how the model reads prompts: the caption rules of its data say which words they never use
        meta["prompt_rewrites"] = rewrites.to_list()
    return save_model_folder(
        out / "model",
        vae=system.vae,
        denoiser=denoiser,
        mean=dm.normalizer.mean,
        std=dm.normalizer.std,
        text_encoder=system.text_encoder.reference(),
        meta=meta,
        overwrite=True,
    )


def _warn_if_schedule_changes(previous_config: Path, config: dict) -> None:
    """Resuming with another trainer.max_steps re-stretches the warm-up + cosine schedule to the new end (a
    warm restart: the learning rate jumps to the new curve's value); say so instead of doing it silently."""
    if not previous_config.is_file():
        return
    before, after = load_config(previous_config)["trainer"].get("max_steps"), config["trainer"]["max_steps"]
    if before is not None and before != after:
        warnings.warn(
            f"{previous_config.parent}: resuming with trainer.max_steps={after} (the run had {before}): "
            "the learning-rate schedule is re-stretched to the new end (a warm restart)",
            stacklevel=3,
        )


def train(kind: str, config: dict, resume: bool = False, force: bool = False, progress: bool = True) -> Path:
    """Run one training job; returns the exported model folder."""
    kind = presets.ROLE_ALIASES.get(kind, kind)  # "mld", "lcm": the papers' names
    if kind not in KINDS:
        raise ValueError(f"unknown training kind {kind!r}; expected one of {', '.join(KINDS)}")
    check_run_settings(config)
    out, ckpt_path = _paths(config, resume, force)
    if ckpt_path is not None:
        _warn_if_schedule_changes(out / "config.yaml", config)
    pl.seed_everything(config.get("seed", 1234), workers=True, verbose=False)
    dm = _datamodule(config)
    dm.setup("fit")
    if kind in ("teacher", "student"):
        dataset_prompt_rewrites(dm.root)  # a bad rules file stops the run now, not at its export
    builders = {
        "vae": _vae_system,
        "teacher": _teacher_system,
        "student": _distill_system,
        "control": _control_system,
        "evaluator": _evaluator_system,
    }
    system = builders[kind](config, dm)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are known to be good
    trainer = build_trainer(config, out, progress)
    if trainer.is_global_zero:
        save_config(config, out / "config.yaml")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")  # we resume it ourselves
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(system, datamodule=dm, ckpt_path=ckpt_path)
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt", weights_only=False)  # full state: resumable
    model_dir = out / "model"
    if trainer.is_global_zero:
        model_dir = export_model(kind, system, dm, out, config)
        if kind == "control" and config.get("install_as"):
            installed = install_controller(model_dir, config["model_dir"], str(config["install_as"]), overwrite=force)
            print(f"installed as {installed}")
    return model_dir


def export_student_weights(
    run_dir: str | Path, weights: str = "target", output: str | Path | None = None, checkpoint: str = "last.ckpt"
) -> Path:
    """Re-export a distillation run's student from a checkpoint, choosing the online or the EMA target weights.

    The model folder written at the end of `train lcm` holds the weights chosen by `system.export`; this
    writes the other ones (default `<run_dir>/model-<weights>`) without training again.
    """
    if weights not in ("online", "target"):
        raise ValueError(f"weights: {weights!r} is not 'online' or 'target'")
    run_dir = Path(run_dir)
    source = load_model_folder(run_dir / "model")
    if source.kind != "student":
        raise ValueError(f"{run_dir / 'model'}: expected a student model folder, found {source.kind!r}")
    ckpt_path = run_dir / "checkpoints" / checkpoint
    if not ckpt_path.is_file():
        raise ValueError(f"{ckpt_path}: checkpoint not found")
    ckpt = check_checkpoint(ckpt_path)
    prefix = "student." if weights == "online" else "target."
    source.denoiser.load_state_dict(
        {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}, strict=True
    )
    meta = {**source.meta, "steps": int(ckpt["global_step"])}
    meta["sampling"] = {**meta.get("sampling", {}), "exported": weights}
    return save_model_folder(
        output or run_dir / f"model-{weights}",
        vae=source.vae,
        denoiser=source.denoiser,
        mean=source.mean,
        std=source.std,
        text_encoder=source.text_encoder,
        meta=meta,
        overwrite=True,
    )


def export_teacher_checkpoint(
    run_dir: str | Path, checkpoint: str = "last.ckpt", output: str | Path | None = None
) -> Path:
    """Write the denoiser of a teacher run's checkpoint (its EMA average when the run keeps one) as a model folder
    (default `<run_dir>/model-<checkpoint stem>`), e.g. to evaluate an intermediate checkpoint while the run goes
    on."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    state = check_checkpoint(run_dir / "checkpoints" / checkpoint)
    folder = _load_trained_folder(config.get("vae_dir"), ("vae", "teacher", "student"), "vae_dir", "vae")
    text_encoder = TextEncoder(**_text_encoder_args(config))
    denoiser = LatentDenoiser(_teacher_denoiser_config(config, folder, text_encoder.dim))
    weights = state["state_dict"]
    prefix = "ema.average." if any(k.startswith("ema.average.") for k in weights) else "denoiser."
    denoiser.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}, strict=True)
    root = (config.get("data") or {}).get("root")
    normalizer = Normalizer(folder.mean, folder.std) if folder.mean is not None else Normalizer.from_dir(root)
    meta = {"trained_by": "motionlcm train teacher", "config": str(run_dir / "config.yaml"), "dataset": str(root),
            "steps": int(state["global_step"])}  # fmt: skip
    rewrites = dataset_prompt_rewrites(root)
    if rewrites:
        meta["prompt_rewrites"] = rewrites.to_list()
    return save_model_folder(
        output or run_dir / f"model-{Path(checkpoint).stem}",
        vae=folder.vae,
        denoiser=denoiser,
        mean=normalizer.mean,
        std=normalizer.std,
        text_encoder=text_encoder.reference(),
        meta=meta,
        overwrite=True,
    )


def export_control_checkpoint(
    run_dir: str | Path, checkpoint: str = "last.ckpt", output: str | Path | None = None
) -> Path:
    """Write the controller of a ControlNet run's checkpoint as a controller folder (default
    `<run_dir>/model-<checkpoint stem>`), e.g. to evaluate an intermediate checkpoint while the run goes on."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    folder = _load_trained_folder(config.get("model_dir"), ("student",), "model_dir", "student")
    ckpt = check_checkpoint(run_dir / "checkpoints" / checkpoint)
    state = ckpt["state_dict"]
    student = folder.denoiser.float()
    encoder = _trajectory_encoder(config, folder)
    controlnet = controlnet_from_denoiser(student, (config.get("system") or {}).get("cond_act", "silu"))
    for module, prefix in ((controlnet, "controlnet."), (encoder, "trajectory_encoder.")):
        module.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    return save_control_folder(
        output or run_dir / f"model-{Path(checkpoint).stem}",
        controlnet=controlnet,
        trajectory_encoder=encoder,
        hint_normalizer=HintNormalizer(state["hint_mean"].numpy(), state["hint_std"].numpy()),
        **control_modes(control_spec(config)),
        base=student,
        meta={
            "trained_by": "motionlcm train control",
            "config": str(run_dir / "config.yaml"),
            "steps": int(ckpt["global_step"]),
            "model_dir": str(config.get("model_dir")),
        },
        overwrite=True,
    )
