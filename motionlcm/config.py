"""Training configs: YAML files whose sections are constructor arguments, plus dotted command-line overrides.

A config has the sections `model` (VAEConfig / DenoiserConfig fields, or `preset: v1|v2|tiny` plus
overrides), `system` (VAESystem / TeacherSystem arguments), `data` (HumanML3DDataModule arguments),
`trainer` (Lightning Trainer arguments), `checkpoint` and top-level `seed`, `output_dir`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from motionlcm import presets
from motionlcm.io.atomic import write_text_atomic
from motionlcm.io.text import read_text_file

SECTIONS = {"seed", "output_dir", "model", "system", "data", "trainer", "checkpoint", "text_encoder", "scheduler",
            "vae_dir", "teacher_dir", "init_dir", "preset", "description",
            "model_dir", "install_as", "control", "trajectory_encoder", "sampling_guidance"}  # fmt: skip

DEFAULTS: dict[str, Any] = {
    "seed": 1234,  # SEED_VALUE in MotionLCM's configs
    "trainer": {
        "max_steps": 100_000,
        "accelerator": "auto",
        "devices": "auto",
        "num_nodes": 1,
        "strategy": "auto",
        "precision": "auto",  # bf16-mixed on CUDA, 32 on CPU
        "gradient_clip_val": 1.0,  # MotionLCM: grad-clip 1.0
        "log_every_n_steps": 50,
    },
    "checkpoint": {"every_n_steps": 1000, "save_top_k": 3, "monitor": "val/loss"},
}


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a", "b", "c"], value parsed as YAML, so 3 is an int and [1,2] a list)."""
    if "=" not in text:
        raise ValueError(f"override {text!r}: expected KEY=VALUE, e.g. trainer.max_steps=1000")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ValueError(f"override {text!r}: empty key part")
    return parts, yaml.safe_load(value) if value.strip() else None


def set_dotted(config: dict, parts: list[str], value: Any) -> None:
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {'.'.join(parts)}: {part} is not a section")
    node[parts[-1]] = value


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(read_text_file(path, "config")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: cannot read config: {str(exc).splitlines()[0]}") from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Read a YAML config (None: the defaults only), apply the defaults and `KEY=VALUE` overrides, and
    check the sections."""
    data = _read_yaml(Path(path)) if path is not None else {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping of sections")
    config = _merge(DEFAULTS, data)
    for text in overrides:
        set_dotted(config, *parse_override(text))
    unknown = sorted(set(config) - SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {', '.join(unknown)}; expected {', '.join(sorted(SECTIONS))}")
    return config


def save_config(config: dict, path: str | Path) -> None:
    """Write the fully resolved config (atomically) beside the checkpoints."""
    write_text_atomic(path, yaml.safe_dump(config, sort_keys=False))


def build_dataclass(cls: type, section: dict | None, where: str) -> Any:
    """Build a config dataclass from `{preset: name, **fields}`; unknown fields are a ValueError."""
    section = dict(section or {})
    preset = section.pop("preset", None)
    if preset is not None and preset not in (*presets.VERSIONS, "tiny"):
        raise ValueError(f"{where}.preset: unknown preset {preset!r}; expected {', '.join(presets.VERSIONS)} or tiny")
    base = getattr(cls, preset)() if preset else cls()
    fields = set(base.to_dict())
    unknown = sorted(set(section) - fields)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(fields))}")
    return cls.from_dict({**base.to_dict(), **section})
