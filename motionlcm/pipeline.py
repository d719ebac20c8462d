"""Text -> motion with a trained model folder: text encoding, latent sampling, VAE decoding, joints.

Teacher (MLD) folders sample with DDIM and classifier-free guidance (50 steps, scale 7.5 by default, as the
official `configs/modules/scheduler_ddim.yaml` and `configs/mld_t2m.yaml`); student (LCM) folders with the
multistep consistency sampler (1 step by default; V2 guidance 8.0 / 12.5 / 13.5 for 1 / 2 / 4 steps, V1 7.5;
official `configs/modules/scheduler_lcm.yaml`, `configs_v1/motionlcm_t2m.yaml`).
"""

from __future__ import annotations

import hashlib
import math
import operator
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motionlcm import presets
from motionlcm.data.captions import PromptRewrites
from motionlcm.data.cleanup import clean_continuation, clean_joints
from motionlcm.data.continuation import BLEND_FRAMES, PlanarFrame, check_prefix, prefix_hints
from motionlcm.data.features import FOOT_CONTACT, features_to_joints
from motionlcm.data.hints import Hints, control_record, hints_from_array, joint_set, point_errors
from motionlcm.data.humanml3d import MAX_LENGTH
from motionlcm.data.motion_warp import warp_to_hints
from motionlcm.data.skeleton import FPS
from motionlcm.diffusion.clt import STEPS as CLT_STEPS
from motionlcm.diffusion.clt import consistency_latent_tuning
from motionlcm.diffusion.ddim import DDIMScheduler
from motionlcm.diffusion.guidance import guidance_scale_embedding
from motionlcm.diffusion.lcm import LCMScheduler, embedded_guidance
from motionlcm.diffusion.lcm_sampling import lcm_sample
from motionlcm.diffusion.sampling import ddim_sample
from motionlcm.models.control_folder import ControlFolder, denoiser_fingerprint, find_controllers, load_control_folder
from motionlcm.models.controlnet import controlled_denoiser
from motionlcm.models.folder import load_model_folder
from motionlcm.models.text_encoder import TextEncoder
from motionlcm.motion import Motion
from motionlcm.runtime.device import resolve_device
from motionlcm.runtime.fast_paths import FastPaths, apply_fast_paths, autocast_context, bucket_frames

DEFAULT_MODEL = "bandai-namco"  # checkpoints/<name>: the shipped model (checkpoints/README.md)
MAX_STEPS = 1000  # sampling steps: the training schedule's timesteps
MAX_FRAMES = MAX_LENGTH  # HumanML3D's longest training crop (9.8 s at 20 fps)
DEFAULTS = {"teacher": {"steps": 50, "guidance": 7.5}, "student": {"steps": 1, "guidance": None}}
CONTROL_METHODS = ("controlnet", "clt", "both")  # ControlNet, consistency latent tuning (V2), or both


def _tuned_guidance(folder: Any) -> dict[int, float]:
    """`meta.sampling.guidance` of a model folder: {step count: CFG scale} tuned for this model (or the range it
    was distilled for); {} when absent. A malformed entry is a ValueError naming the field."""
    table = ((folder.meta or {}).get("sampling") or {}).get("guidance") or {}
    return presets.guidance_table(table, f"{folder.path}: meta.sampling.guidance", MAX_STEPS)


def _distilled_scales(folder: Any) -> tuple[float, float] | None:
    """(lowest, highest) CFG scale a student was distilled on, from `meta.sampling.w_range` (LCM form
    w = scale - 1, written by `motionlcm train student`); None when the folder records none."""
    value = ((folder.meta or {}).get("sampling") or {}).get("w_range")
    w_range = presets.w_range_of(value, f"{folder.path}: meta.sampling.w_range")
    return None if w_range is None else (w_range[0] + 1.0, w_range[1] + 1.0)


def resolve_lengths(count: int, seconds: Any = None, frames: Any = None) -> list[int]:
    """Frame counts for `count` prompts from seconds or frames (a number or one per prompt)."""
    if (seconds is None) == (frames is None):
        raise ValueError("give exactly one of seconds= or frames=")
    values = frames if frames is not None else seconds
    values = list(values) if isinstance(values, (list, tuple)) else [values] * count
    if len(values) != count:
        raise ValueError(f"got {len(values)} lengths for {count} prompts")
    if frames is None and not all(math.isfinite(float(v)) for v in values):
        raise ValueError(f"seconds: must be finite, got {values}")
    lengths = [int(v) if frames is not None else int(round(float(v) * FPS)) for v in values]
    for value in lengths:
        if not 1 <= value <= MAX_FRAMES:
            raise ValueError(
                f"length {value} frames is outside 1..{MAX_FRAMES} ({MAX_FRAMES / FPS:.1f} s at {FPS} fps)"
            )
    return lengths


def shipped_checkpoints_dirs() -> list[Path]:
    """Where the shipped model folders can be, in order: the checkout's checkpoints/ (a source tree or an
    editable install), then the copy a built package carries (motionlcm/_checkpoints, see setup.py)."""
    package = Path(__file__).resolve().parent
    checkout = package.parent
    dirs = [checkout / "checkpoints"] if (checkout / "pyproject.toml").is_file() else []
    return [*dirs, package / "_checkpoints"]


def resolve_model_dir(model: str | Path) -> Path:
    """`model` itself when it exists; else, for a bare name such as "bandai-namco-teacher" or
    "bandai-namco-evaluator", the shipped folder of that name (a checkout's checkpoints/ or an installed
    package's copy); else `model` unchanged, for the loader to report."""
    path = Path(model)
    if path.exists() or len(path.parts) != 1:
        return path
    return next((root / path for root in shipped_checkpoints_dirs() if (root / path).is_dir()), path)


def default_model_dir() -> Path:
    """$MOTIONLCM_MODEL, else the shipped model (the first of `shipped_checkpoints_dirs()` that has it)."""
    if os.environ.get("MOTIONLCM_MODEL"):
        return Path(os.environ["MOTIONLCM_MODEL"])
    places = [root / DEFAULT_MODEL for root in shipped_checkpoints_dirs()]
    for path in places:
        if path.is_dir():
            return path
    raise ValueError(
        f"{places[-1]}: the default model is not there (nor in a source checkout); "
        "pass --model MODEL_DIR or set MOTIONLCM_MODEL"
    )


class MotionLCM:
    """A text-to-motion pipeline over one model folder.

    Exposes `vae`, `denoiser`, `text_encoder` and `sample_latents` for reproducibility studies. `fast_paths`
    (runtime/fast_paths.py) chooses how they run: fused attention, lean text encoder and prompt cache by
    default; `FastPaths.eager()` for the plain path, `.replace(compile=True, ...)` for more.
    """

    def __init__(
        self,
        folder: Any,
        text_encoder: TextEncoder | None,
        device: str | torch.device = "cpu",
        fast_paths: FastPaths | None = None,
    ) -> None:
        if folder.denoiser is None or folder.vae is None:
            raise ValueError(f"{folder.path}: a generation model folder needs a VAE and a denoiser")
        if folder.kind not in DEFAULTS:
            raise ValueError(f"{folder.path}: model kind {folder.kind!r} cannot generate yet")
        self.folder, self.kind, self.device = folder, folder.kind, torch.device(device)
        self.vae = folder.vae.to(self.device).eval()
        self.denoiser = folder.denoiser.to(self.device).eval()
        self.text_encoder = text_encoder.to(self.device) if text_encoder is not None else None
        preset = (folder.meta or {}).get("sampling", {}).get("scheduler", presets.DEFAULT)
        self.lcm_preset = presets.check_version(preset, f"{folder.path}: meta.sampling.scheduler")
        self.tuned_guidance = _tuned_guidance(folder)
        self.distilled_scales = _distilled_scales(folder)
        # how this model reads prompts (`read_prompt`); `rewrite_prompts = False` encodes them as typed
        rewrites = (folder.meta or {}).get("prompt_rewrites")
        self.prompt_rewrites = PromptRewrites.from_list(rewrites, f"{folder.path}: meta.prompt_rewrites")
        self.rewrite_prompts = True
        if self.kind == "student":
            self.scheduler = LCMScheduler.from_preset(self.lcm_preset)
        else:
            self.scheduler = DDIMScheduler()
        self.mean = self.std = None
        if folder.mean is not None:
            self.mean = torch.as_tensor(folder.mean, dtype=torch.float32, device=self.device)
            self.std = torch.as_tensor(folder.std, dtype=torch.float32, device=self.device)
        # what `set_fast_paths` (runtime/fast_paths.py) chooses: the callables sampling and decoding run
        self.fast_paths: FastPaths = FastPaths.eager()
        self.denoiser_fn: Callable[..., Tensor] = self.denoiser
        self.decode_fn: Callable[..., Tensor] = self.vae.decode_masked
        self.onnx: Any = None  # the onnxruntime backend's graphs (runtime/onnx_backend.py), when chosen
        self.set_fast_paths(fast_paths or FastPaths())

    def set_fast_paths(self, paths: FastPaths) -> MotionLCM:
        """Run with `paths` from now on (see runtime/fast_paths.py); returns the pipeline."""
        return apply_fast_paths(self, paths)

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path | None = None,
        device: str | None = None,
        text_encoder_path: str | None = None,
        fast_paths: FastPaths | None = None,
        backend: str | None = None,
        onnx_dir: str | Path | None = None,
        precision: str | None = None,
    ) -> MotionLCM:
        """Load a model folder (default: the shipped model, `default_model_dir()`; a shipped folder's bare name
        works too, `resolve_model_dir`) and the text encoder it references (`text_encoder_path` overrides its path).

        `backend="onnxruntime"` runs text encoding, sampling and decoding as the model's ONNX graphs
        (runtime/onnx_backend.py; `onnx_dir` from `motionlcm export onnx`, else exported once into the cache;
        `precision` "fp32" or "int8"); needs `pip install 'motionlcm[onnx]'`.

        A converted official folder that names no local text encoder (and no `text_encoder_path`) still
        loads: `sample_latents` works from given embeddings; encoding prompts then raises.
        """
        device = resolve_device(device)
        folder = load_model_folder(
            resolve_model_dir(model_dir) if model_dir is not None else default_model_dir(), device="cpu"
        )
        ref = folder.text_encoder or {}
        encoder = None
        if text_encoder_path or ref.get("source") or ref.get("path"):
            encoder = TextEncoder.from_reference(ref, path_override=text_encoder_path)
        paths = fast_paths or FastPaths()
        if backend is not None or onnx_dir is not None or precision is not None:
            paths = paths.replace(
                backend=backend or "onnxruntime",
                onnx_dir=None if onnx_dir is None else str(onnx_dir),
                precision=precision or "fp32",
            )
        return cls(folder, encoder, device, paths)

    def controllers(self) -> list[ControlFolder]:
        """The controllers installed in the model folder (`<model>/control/*`, models/control_folder.py), loaded
        once; a controller trained on another denoiser is an error naming it."""
        if getattr(self, "_controllers", None) is None:
            loaded, fingerprint = [], denoiser_fingerprint(self.denoiser)
            for path in find_controllers(self.folder.path):
                controller = load_control_folder(path, device=self.device)
                if controller.base_fingerprint != fingerprint:
                    raise ValueError(f"{path}: trained on another denoiser than {self.folder.path}'s")
                loaded.append(controller)
            self._controllers = loaded
        return self._controllers

    def controller_for(
        self, joints: set[int], temporal: bool = False, spatial: set[int] = frozenset()
    ) -> ControlFolder:
        """The installed controller trained for hints on `joints` (at any frames, or on a prefix when
        `temporal`; with a prefix, also on the `spatial` joints at any frames), the most specialised first
        (fewest joints)."""
        from motionlcm.data.skeleton import JOINT_NAMES

        found = [
            c for c in self.controllers() if c.covers(joints, temporal) and (not spatial or c.covers(spatial, False))
        ]
        if not found:
            names = ", ".join(JOINT_NAMES[j] for j in sorted(joints))
            if spatial:
                names += " and any frames of " + ", ".join(JOINT_NAMES[j] for j in sorted(spatial))
            kind = "a prefix of" if temporal else "any frames of"
            have = "; ".join(_controller_summary(c) for c in self.controllers())
            raise ValueError(
                f"{self.folder.path}: no controller controls {kind} {names} (installed: {have or 'none'}); "
                "train one with `motionlcm train control --install NAME`, or use --control-method clt"
            )
        return min(found, key=lambda c: (len(c.prefix_joints) if temporal else len(c.joints), c.name))

    def padded_hints(self, hints: list[Hints], num_frames: int) -> tuple[Tensor, Tensor]:
        """Per-motion hints as one batch on the pipeline's device: values (B, T, 22, 3) and a bool mask of the same
        shape, zero / False past each motion's frames."""
        values = torch.zeros(len(hints), num_frames, *hints[0].values.shape[1:], device=self.device)
        mask = torch.zeros(values.shape, dtype=torch.bool, device=self.device)
        for i, h in enumerate(hints):
            values[i, : h.num_frames] = torch.as_tensor(h.values, device=self.device)
            mask[i, : h.num_frames] = torch.as_tensor(h.mask, device=self.device)
        return values, mask

    def control_condition(self, controller: ControlFolder, hints: list[Hints], num_frames: int) -> Tensor:
        """The trajectory encoder's condition (B, L, D) for per-motion hints padded to `num_frames`."""
        values, mask = self.padded_hints(hints, num_frames)
        encoder = controller.trajectory_encoder
        return encoder(controller.hint_normalizer.normalize(values), mask)

    def read_prompt(self, text: str) -> str:
        """The prompt as this model reads it: the model folder's rewrites (`meta.prompt_rewrites`, recorded from
        the caption rules of its training data: e.g. gendered subjects, which those captions never use, become
        "the person") applied, unless `rewrite_prompts` is False. Most folders have none: the text unchanged."""
        return self.prompt_rewrites(text) if self.rewrite_prompts else text

    def encode_text(self, texts: list[str]) -> Tensor:
        """Text embeddings for the denoiser, (B, tokens, C) on the pipeline's device ("" is the unconditional
        prompt of classifier-free guidance) of the prompts as the model reads them (`read_prompt`); the
        model's text encoder with its prompt cache."""
        if self.text_encoder is None:
            raise ValueError(f"{self.folder.path}: no text encoder: pass text_encoder_path= (e.g. sentence-t5-large)")
        return self.text_encoder([self.read_prompt(t) for t in texts]).to(self.device)

    def default_guidance(self, steps: int) -> float:
        """The model folder's tuned scale for this step count (`meta.sampling.guidance`, e.g. {"1": 6.5}) if it
        records one; else teacher 7.5, V2 students the per-step-count map (8.0 / 12.5 / 13.5), V1 students 7.5,
        brought inside the scales the student was distilled on when its folder records them
        (`meta.sampling.w_range`, LCM form w = scale - 1): a student knows nothing of scales outside them."""
        if steps in self.tuned_guidance:
            return self.tuned_guidance[steps]
        if self.kind == "student":
            scale = presets.sampling_guidance(self.lcm_preset, steps)
            if self.distilled_scales is not None:
                scale = min(max(scale, self.distilled_scales[0]), self.distilled_scales[1])
            return scale
        return DEFAULTS["teacher"]["guidance"]

    @torch.no_grad()
    def sample_latents(
        self,
        text_emb: Tensor,
        noise: Tensor,
        steps: int,
        guidance: float,
        generator: torch.Generator | None = None,
        lengths: list[int] | None = None,
        control: tuple[ControlFolder, Tensor] | None = None,
    ) -> Tensor:
        """Run only the sampler from text embeddings (B, S, C) and initial noise (B, L, D). With a VAE of
        segment latents, `lengths` (frames per motion) masks the tokens past each motion's end. `control`
        (a controller and its condition, `control_condition`) steers a student with its ControlNet."""
        text_emb, noise = text_emb.to(self.device), noise.to(self.device)
        if self.onnx is not None and control is None and steps in self.onnx.samplers:
            return self._sample_onnx(text_emb, noise, steps, guidance, generator, lengths)
        base = self.denoiser_fn
        if control is not None:
            if self.kind != "student":
                raise ValueError(f"{self.folder.path}: control needs a student model (ControlNets steer students)")
            base = controlled_denoiser(self.denoiser, control[0].controlnet, control[1])
        denoiser = self._masked_denoiser(lengths, base)
        with autocast_context(self.device, self.fast_paths.autocast):
            if self.kind == "student":
                latents = lcm_sample(
                    denoiser,
                    self.scheduler,
                    text_emb,
                    noise,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=generator,
                )
            else:
                latents = ddim_sample(
                    denoiser,
                    self.scheduler,
                    text_emb,
                    self.encode_text([""]),
                    noise,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                )
        return latents.float()

    def _sample_onnx(
        self, text_emb: Tensor, noise: Tensor, steps: int, guidance: float, generator: torch.Generator | None,
        lengths: list[int] | None,
    ) -> Tensor:  # fmt: skip
        """`sample_latents` in the exported sampler graph; the noise between steps is drawn as `lcm_sample` draws
        it (same generator, shapes and order), so a seed gives the torch backend's latents."""
        shape = tuple(noise.shape)
        drawn = [torch.randn(shape, generator=generator, device=noise.device) for _ in range(steps - 1)]
        step_noise = torch.stack(drawn) if drawn else torch.zeros((1, *shape))
        mask = self.vae.latent_mask(lengths) if lengths is not None else None
        if mask is None:
            mask = torch.ones(shape[:2], dtype=torch.bool)
        guidance_scales = np.full(shape[0], guidance, dtype=np.float32)
        latents = self.onnx.sample(
            steps, text_emb.float().cpu().numpy(), noise.float().cpu().numpy(), guidance_scales,
            mask.cpu().numpy(), step_noise.float().cpu().numpy(),
        )  # fmt: skip
        return torch.from_numpy(latents)

    def _masked_denoiser(self, lengths: list[int] | None, base: Callable[..., Tensor] | None = None) -> Any:
        """`base` (default `denoiser_fn`), or for segment latents a wrapper passing the token mask of `lengths`
        (repeated when the sampler doubles the batch for classifier-free guidance)."""
        base = self.denoiser_fn if base is None else base
        mask = self.vae.latent_mask(lengths) if lengths is not None else None
        if mask is None:
            return base
        mask = mask.to(self.device)

        def denoiser(sample: Tensor, timestep: Tensor, text: Tensor, **kwargs: Any) -> Tensor:
            repeats = sample.shape[0] // mask.shape[0]
            return base(sample, timestep, text, latent_mask=mask.repeat(repeats, 1), **kwargs)

        return denoiser

    def tune_noise(
        self,
        text_emb: Tensor,
        noise: Tensor,
        guidance: float,
        lengths: list[int],
        hints: list[Hints],
        control: tuple[ControlFolder, Tensor] | None,
        steps: int,
    ) -> Tensor:
        """Consistency latent tuning: the 1-step noise whose motion meets `hints` (masked squared error in
        metres plus DNO's noise penalty, `diffusion/clt.py`), through the ControlNet when `control` is given."""
        if self.kind != "student":
            raise ValueError(f"{self.folder.path}: consistency latent tuning needs a student model")
        frames = max(lengths)
        values, mask = self.padded_hints(hints, frames)
        mask = mask.float()
        base = (
            self.denoiser if control is None else controlled_denoiser(self.denoiser, control[0].controlnet, control[1])
        )
        denoiser = self._masked_denoiser(lengths, base)
        valid = torch.arange(frames, device=self.device)[None, :] < torch.tensor(lengths, device=self.device)[:, None]
        w = torch.full((len(hints),), embedded_guidance(guidance), device=self.device)
        guidance_emb = guidance_scale_embedding(w, self.denoiser.config.time_cond_proj_dim)
        scheduler = LCMScheduler.from_preset(self.lcm_preset)

        def render(z: Tensor) -> Tensor:
            scheduler.set_timesteps(1, device=self.device)
            t = scheduler.timesteps[0]
            eps = denoiser(scheduler.scale_model_input(z, t), t.expand(len(z)), text_emb, guidance_emb=guidance_emb)
            latents = scheduler.step(eps, t, z).prev_sample
            return features_to_joints(self.vae.decode_masked(latents, valid) * self.std + self.mean)

        def loss(joints: Tensor) -> Tensor:
            return ((joints - values) ** 2 * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)

        return consistency_latent_tuning(render, loss, noise, steps=steps)

    @torch.no_grad()
    def decode(self, latents: Tensor, lengths: list[int]) -> Tensor:
        """Normalised features (B, max(lengths), 263) from latents, zero past each length; decodes at the
        fast paths' frame bucket and crops."""
        num_frames = max(lengths)
        if self.onnx is not None:
            mask = torch.arange(num_frames)[None, :] < torch.tensor(lengths)[:, None]
            features, _ = self.onnx.decode(latents.float().cpu().numpy(), mask.numpy())
            return (torch.from_numpy(features) - self.mean) / self.std * mask[:, :, None]
        padded = bucket_frames(num_frames, self.fast_paths.frame_bucket, self.vae.config.max_len)
        mask = torch.arange(padded, device=self.device)[None, :] < torch.tensor(lengths, device=self.device)[:, None]
        with autocast_context(self.device, self.fast_paths.autocast):
            features = self.decode_fn(latents, mask)
        return features[:, :num_frames].float()

    def resolve_sampling(self, steps: int | None, guidance: float | None) -> tuple[int, float]:
        """Step count and guidance scale, the model kind's defaults where None; a step count outside
        1..MAX_STEPS or a non-finite guidance is a ValueError naming the option."""
        steps = DEFAULTS[self.kind]["steps"] if steps is None else steps
        try:
            steps = operator.index(steps)
        except TypeError:
            steps = None
        if steps is None or not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"--steps: must be an integer in 1..{MAX_STEPS}")
        if guidance is not None and not math.isfinite(guidance):
            raise ValueError(f"--guidance: must be a finite number, got {guidance}")
        return steps, self.default_guidance(steps) if guidance is None else float(guidance)

    @torch.no_grad()
    def generate_features(
        self,
        texts: list[str],
        lengths: list[int] | Tensor,
        steps: int,
        guidance: float,
        generator: torch.Generator,
        hints: list[Hints] | None = None,
        control_method: str = "controlnet",
        clt_steps: int = CLT_STEPS,
        temporal: bool = False,
        spatial: set[int] = frozenset(),
    ) -> Tensor:
        """Un-normalised features (B, max(lengths), 263), zero beyond each motion's length; `hints` (one per
        motion, `Hints`) steer it: "controlnet" through the installed controller that covers their joints,
        "clt" by tuning the initial noise (`consistency_latent_tuning`, `clt_steps` steps, any joints, no
        controller needed), "both" by tuning the noise of the ControlNet-steered student. `temporal`: the
        hints are a prefix (the first frames), served by a controller trained on prefixes, plus targets of the
        `spatial` joints after it (a controller trained for both)."""
        lengths = [int(n) for n in lengths]
        if not lengths or min(lengths) < 1 or max(lengths) > self.vae.config.max_len:
            raise ValueError(f"lengths: each must lie in [1, {self.vae.config.max_len}], got {lengths}")
        cfg = self.vae.config
        noise = torch.randn(len(texts), cfg.latent_size, cfg.latent_dim, generator=generator, device=self.device)
        text_emb = self.encode_text(list(texts))
        if self.mean is None:
            raise ValueError(f"{self.folder.path}: the model folder has no Mean.npy/Std.npy to de-normalise with")
        control = None
        if hints is not None and control_method not in CONTROL_METHODS:
            raise ValueError(f"--control-method: {control_method!r} is not one of {', '.join(CONTROL_METHODS)}")
        if hints is not None and control_method != "clt":
            joints = {j for h in hints for j in h.joints}
            controller = self.controller_for(joints - set(spatial) if temporal else joints, temporal, spatial)
            control = (controller, self.control_condition(controller, hints, max(lengths)))
        if hints is not None and control_method != "controlnet":
            if steps != 1:
                raise ValueError("--control-method clt/both: tunes the noise of 1-step sampling (use --steps 1)")
            noise = self.tune_noise(text_emb, noise, guidance, lengths, hints, control, clt_steps)
        latents = self.sample_latents(text_emb, noise, steps, guidance, generator, lengths, control)
        features = self.decode(latents, lengths) * self.std + self.mean
        valid = (
            torch.arange(features.shape[1], device=self.device)[None, :]
            < torch.tensor(lengths, device=self.device)[:, None]
        )
        return features * valid[:, :, None]

    def _generate_checked(
        self,
        prompts: list[str],
        lengths: list[int],
        steps: int,
        guidance: float,
        seed: int | None,
        hints: list[Hints] | None,
        control_method: str,
        clt_steps: int,
        temporal: bool = False,
        spatial: set[int] = frozenset(),
    ) -> Tensor:
        """`generate_features` from `seed` (a fresh one when None), refusing non-finite output."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
        features = self.generate_features(
            prompts, lengths, steps, guidance, generator, hints, control_method, clt_steps, temporal, spatial
        )
        if not torch.isfinite(features).all():
            raise ValueError(f"{self.folder.path}: the model produced NaN or infinite values (broken weights?)")
        return features

    def _prompt_record(self, prompt: str) -> dict:
        """{"prompt_read_as": ...} for `Motion.settings` when the model read `prompt` otherwise than typed
        (`read_prompt`), else {}."""
        read = self.read_prompt(prompt)
        return {"prompt_read_as": read} if read != prompt else {}

    def _settings(self, steps: int, guidance: float, seed: int | None, conform: bool, foot_lock: bool) -> dict:
        """What every generated motion records of how it was made (`Motion.settings`)."""
        settings = {
            "steps": steps,
            "guidance": guidance,
            "seed": seed,
            "kind": self.kind,
            "conformed": conform,
            "foot_lock": foot_lock,
        }
        if self.onnx is not None:  # the onnxruntime backend (runtime/onnx_backend.py): which graphs ran
            settings["backend"] = {
                "name": "onnxruntime",
                "precision": self.onnx.precision,
                "graphs": self.onnx.fingerprint,
            }
        return settings

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | list[str],
        seconds: Any = None,
        frames: Any = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        conform: bool = True,
        foot_lock: bool = True,
        control: Any = None,
        warp: bool = True,
        control_method: str = "controlnet",
        clt_steps: int = CLT_STEPS,
    ) -> list[Motion]:
        """Generate one motion per prompt (prompts of different lengths batch together).

        `control`: joint hints, float (T, 22, 3) in metres (numpy or torch; NaN where a joint or an axis is
        free) for every prompt, a list of them (one per prompt) or `Hints`; the motion's frame count is the
        hints' when neither `seconds` nor `frames` is given. The installed controller covering the hinted
        joints steers the student; each `Motion.settings["control"]` records the hints' sha256 and the
        measured error (m) at the controlled points. `warp` (default) then bends the joints the last
        centimetres onto the targets (`motion_warp.warp_to_hints`: the pelvis exactly, wrists and feet by
        limb IK) before `conform` and `foot_lock`; `warp=False` shows the ControlNet's own result.
        `control_method`: "controlnet" (default), "clt" (consistency latent tuning of the 1-step noise,
        `clt_steps` steps: any joints, no controller, slower) or "both".

        `conform` (default) places the decoded joints on the dataset's uniform skeleton
        (`conform_to_skeleton`: fixed bone lengths, ankles and wrists where they were generated), so that
        exports and renders show one rigid body; `foot_lock` (default) then holds each foot still while the
        model's own contact labels say it is planted (`lock_feet`). `Motion.features` are always the model's
        own output."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        hints = _hints_per_prompt(control, len(prompts))
        if frames is None and seconds is None:
            if hints is not None:
                frames = [h.num_frames for h in hints]
            else:
                seconds = 4.0
        lengths = resolve_lengths(len(prompts), seconds, frames)
        for i, (h, n) in enumerate(zip(hints or [], lengths, strict=False)):
            if h.num_frames != n:
                raise ValueError(f"control[{i}]: hints have {h.num_frames} frames, the motion {n}")
        steps, guidance = self.resolve_sampling(steps, guidance)
        features = self._generate_checked(prompts, lengths, steps, guidance, seed, hints, control_method, clt_steps)
        joints = [j[:n] for j, n in zip(features_to_joints(features).cpu().numpy(), lengths, strict=True)]
        if hints is not None and warp:
            joints = [warp_to_hints(j, h.values, h.mask) for j, h in zip(joints, hints, strict=True)]
        contacts = features[..., FOOT_CONTACT].cpu().numpy()
        joints = [
            clean_joints(j, c[: len(j)], conform, foot_lock).astype(np.float32)
            for j, c in zip(joints, contacts, strict=True)
        ]
        settings = self._settings(steps, guidance, seed, conform, foot_lock)
        if hints is not None:
            settings.update(warp=warp, control_method=control_method)
            if control_method != "controlnet":
                settings["clt_steps"] = clt_steps
        motions = [
            Motion(joints[i], FPS, text, features[i, :n].cpu().numpy(), settings | self._prompt_record(text))
            for i, (text, n) in enumerate(zip(prompts, lengths, strict=False))
        ]
        if hints is not None:
            joints_needed = {j for h in hints for j in h.joints}
            controller = self.controller_for(joints_needed).name if control_method != "clt" else None
            for motion, h in zip(motions, hints, strict=True):
                motion.hints = h.to_array()
                motion.settings["control"] = control_record(motion.joints, h, controller)
        return motions

    @torch.no_grad()
    def continue_motion(
        self,
        prompts: str | list[str],
        prefix: Any,
        seconds: Any = None,
        frames: Any = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        prefix_joints: str | tuple[int, ...] = "body",
        control_method: str = "controlnet",
        clt_steps: int = CLT_STEPS,
        blend_frames: int = BLEND_FRAMES,
        conform: bool = True,
        foot_lock: bool = True,
        control: Any = None,
        warp: bool = True,
    ) -> list[Motion]:
        """Continue a motion from its first frames (temporal control; `data/continuation.py`).

        `prefix`: the first frames, (K, 22, 3) joints in metres, y up, in any world frame (numpy, torch or an
        SMPL-22 `Motion`), or a list of them, one per prompt. Each returned motion has `seconds` / `frames` in
        all (prefix included; default 4 s), lies in the prefix's world frame, and its first K frames are the
        prefix exactly; the generated rest takes over without a jump in position or velocity. The model sees
        the prefix's `prefix_joints` ("body": all 22, "all": the OmniControl six, or a joint name) as hints
        through an installed controller trained on prefixes (`control_method` "controlnet"), by consistency
        latent tuning ("clt": no controller needed, seconds per motion) or both. Trained on prefixes of up to
        25 % of the motion; longer ones work, with less freedom left to the prompt. `settings["continuation"]`
        records the prefix's sha256 and how far the model's own attempt at it was from it (m).

        `control`: spatial targets after the prefix as in `__call__` ((T, 22, 3) per motion, NaN where free, in
        the prefix's world frame; targets on prefix frames are ignored), served by a controller trained for
        prefixes and those joints, and met by motion warping from the last prefix frame on (`warp`)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        prefixes = _prefixes_per_prompt(prefix, len(prompts))
        lengths = resolve_lengths(len(prompts), 4.0 if seconds is None and frames is None else seconds, frames)
        for i, (p, n) in enumerate(zip(prefixes, lengths, strict=True)):
            if len(p) >= n:
                where = "prefix" if len(prefixes) == 1 else f"prefix[{i}]"
                raise ValueError(f"{where}: {len(p)} frames leave nothing to generate in a {n}-frame motion")
        joint_ids = joint_set(prefix_joints) if isinstance(prefix_joints, str) else tuple(prefix_joints)
        steps, guidance = self.resolve_sampling(steps, guidance)
        frames_of = [PlanarFrame.of_pose(p[0]) for p in prefixes]
        local = [f.to_local(p) for f, p in zip(frames_of, prefixes, strict=True)]
        targets = _local_targets(control, frames_of, [len(p) for p in prefixes], lengths)
        hints = [
            _merged_hints(prefix_hints(p, n, joint_ids), t) for p, n, t in zip(local, lengths, targets, strict=True)
        ]
        spatial = {j for t in targets if t is not None for j in t.joints}
        features = self._generate_checked(
            prompts, lengths, steps, guidance, seed, hints, control_method, clt_steps, temporal=True, spatial=spatial
        )
        controller = None
        if control_method != "clt":
            controller = self.controller_for(set(joint_ids), temporal=True, spatial=spatial).name
        contacts = features[..., FOOT_CONTACT].cpu().numpy()
        motions = []
        for i, (text, n) in enumerate(zip(prompts, lengths, strict=True)):
            generated = features_to_joints(features[i, :n]).cpu().numpy()
            k = len(prefixes[i])
            attempt = point_errors(generated[:k], hints[i].values[:k], hints[i].mask[:k])
            target = None if targets[i] is None or not warp else (targets[i].values, targets[i].mask)
            cleaned = clean_continuation(local[i], generated, contacts[i, :n], blend_frames, conform, foot_lock, target)
            joints = frames_of[i].to_world(cleaned).astype(np.float32)
            joints[:k] = prefixes[i]  # exactly the given frames (no round trip through float64)
            settings = self._settings(steps, guidance, seed, conform, foot_lock) | self._prompt_record(text)
            settings["control_method"] = control_method
            settings["continuation"] = {
                "prefix_frames": len(prefixes[i]),
                "prefix_joints": prefix_joints if isinstance(prefix_joints, str) else list(joint_ids),
                "controller": controller,
                "prefix_sha256": hashlib.sha256(np.ascontiguousarray(prefixes[i], np.float32).tobytes()).hexdigest(),
                "model_prefix_err_m": float(attempt.mean()),
                "model_prefix_max_err_m": float(attempt.max()),
                "blend_frames": blend_frames,
            }
            motion = Motion(joints, FPS, text, features[i, :n].cpu().numpy(), settings)
            if targets[i] is not None:
                world = Hints(frames_of[i].to_world(targets[i].values).astype(np.float32), targets[i].mask)
                motion.hints = world.to_array()
                motion.settings["control"] = control_record(joints, world, controller)
                motion.settings["warp"] = warp
            motions.append(motion)
        return motions

    def generate_timeline(self, segments: Any, seed: int = 0, start: Any = None, **options: Any) -> Motion:
        """One continuous motion from (prompt, seconds) segments of any length, e.g.
        `pipe.generate_timeline([("walk forward", 3.0), ("turn left", 2.0)], seed=0)`; `start`: (K, 22, 3) joints
        (or an SMPL-22 `Motion`) the take continues, kept exactly as its first frames. Options: `steps`,
        `guidance`, `method` ("controlnet", "clt", "both" or "splice"), `max_seconds` (`motionlcm.timeline`)."""
        from motionlcm.timeline import generate_timeline

        return generate_timeline(self, segments, seed, _start_joints(start), **options)

    def stream(self, segments: Any, seed: int = 0, start: Any = None, **options: Any) -> Any:
        """Frames (`motionlcm.timeline.StreamFrame`) of the take as they are made, segment by segment; the
        iterable `segments` is read only when the next segment is due, so it may still change while earlier
        ones play. Options as `generate_timeline` (no total limit)."""
        from motionlcm.timeline import stream

        return stream(self, segments, seed=seed, start=_start_joints(start), **options)


def _one_per_prompt(value: Any, count: int, name: str, plural: str, convert: Callable[[Any, str], Any]) -> list:
    """`value` (one for every prompt, or a list or tuple with one per prompt) as `count` converted items;
    `convert(item, where)` names the item in its errors (`name` or `name[i]`)."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name}: got {len(value)} {plural} for {count} prompts")
        return [convert(v, f"{name}[{i}]") for i, v in enumerate(value)]
    return [convert(value, name)] * count


def _local_targets(control: Any, frames_of: list[PlanarFrame], prefix_frames: list[int], lengths: list[int]) -> list:
    """Per motion, its spatial `Hints` after the prefix, turned into the prefix's frame (None where none)."""
    if control is None:
        return [None] * len(lengths)
    out = []
    for i, h in enumerate(_hints_per_prompt(control, len(lengths))):
        if h.num_frames != lengths[i]:
            raise ValueError(f"control[{i}]: hints have {h.num_frames} frames, the motion {lengths[i]}")
        mask = h.mask.copy()
        mask[: prefix_frames[i]] = False  # the prefix's frames are given
        if (mask[..., 0] != mask[..., 2]).any():
            raise ValueError(f"control[{i}]: a target sets x or z alone; turned into the prefix's frame they mix")
        local = frames_of[i].to_local(np.where(mask, h.values, 0.0)).astype(np.float32)
        out.append(Hints(np.where(mask, local, 0.0).astype(np.float32), mask) if mask.any() else None)
    return out


def _merged_hints(prefix: tuple[np.ndarray, np.ndarray], targets: Hints | None) -> Hints:
    """Prefix hints (values, mask) with spatial targets after the prefix added."""
    values, mask = prefix
    if targets is None:
        return Hints(values, mask)
    return Hints(np.where(targets.mask, targets.values, values).astype(np.float32), mask | targets.mask)


def _start_joints(start: Any) -> np.ndarray | None:
    """A timeline's start clip as checked (K, 22, 3) joints (None stays None)."""
    return None if start is None else _prefixes_per_prompt(start, 1)[0]


def _prefixes_per_prompt(prefix: Any, count: int) -> list[np.ndarray]:
    """`prefix` as one checked (K, 22, 3) float array per prompt."""

    def one(value: Any, where: str) -> np.ndarray:
        if isinstance(value, Motion):
            if not value.is_smpl:
                raise ValueError(
                    f"{where}: a motion on the 22-joint SMPL skeleton is needed, got {value.joints.shape[1]} joints"
                )
            value = value.joints
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        return check_prefix(value, where)

    return _one_per_prompt(prefix, count, "prefix", "prefixes", one)


def _controller_summary(controller: ControlFolder) -> str:
    from motionlcm.data.skeleton import JOINT_NAMES

    parts = []
    if controller.spatial:
        parts.append(", ".join(JOINT_NAMES[j] for j in controller.joints))
    if controller.temporal:
        parts.append(f"prefixes of {len(controller.prefix_joints)} joints")
    return f"{controller.name}: {'; '.join(parts)}"


def _hints_per_prompt(control: Any, count: int) -> list[Hints] | None:
    """`control` as one validated `Hints` per prompt (None: no control)."""
    if control is None:
        return None

    def one(value: Any, where: str) -> Hints:
        return value if isinstance(value, Hints) else hints_from_array(value, where)

    return _one_per_prompt(control, count, "control", "hint arrays", one)
