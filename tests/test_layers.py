"""The import graph of the package is a stack (docs/architecture.md): a module may import its own
sub-package and any layer below, never one above. New upward imports or cycles fail here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import motionlcm

PACKAGE = Path(motionlcm.__file__).parent

# bottom to top; a name is a sub-package or a top-level module of motionlcm
LAYERS = [
    {"__version__", "presets", "io"},  # constants, files
    {"data", "config"},  # features, skeletons, datasets; YAML configs
    {"export", "render"},  # motion -> BVH / images / movies (no models)
    {"motion"},  # the Motion type: files in, BVH / renders out
    {"models", "diffusion"},  # nn.Modules; schedulers and distillation math
    {"runtime"},  # devices and fast paths
    {"pipeline", "timeline"},  # text -> motion; a timeline of prompts -> one take (drives a pipeline)
    {"train", "eval"},  # Lightning systems; metrics and the evaluation protocol
    {"bench"},  # benchmarks that build training systems and pipelines
    {"generate", "studio"},  # the generate command's request handling; the web studio (server, API, page)
    {"cli", "__init__"},  # commands; the public package surface
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}

# train/ builds the evaluator of eval/ (its Lightning system); eval/ must never import train/ back. The
# speed benchmark, which needs both, lives in bench/ above them.
KNOWN: set[tuple[str, str]] = set()


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("motionlcm"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("motionlcm.")}
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = _unit(path)
        edges.setdefault(source, set()).update(d for d in _imports(path) if d != source)
    return edges


def test_every_unit_has_a_layer():
    assert set(graph()) - {"_checkpoints"} <= set(LEVEL), set(graph()) - set(LEVEL)


def test_no_upward_import():
    upward = sorted(
        (s, d) for s, targets in graph().items() for d in targets if LEVEL[d] > LEVEL[s] and (s, d) not in KNOWN
    )
    assert not upward, f"upward imports (docs/architecture.md): {upward}"


def test_no_cycle_between_units():
    edges = graph()
    cycles = sorted((s, d) for s, targets in edges.items() for d in targets if s in edges.get(d, set()) and s < d)
    assert set(cycles) <= KNOWN, cycles


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "motionlcm"
    (fake / "io").mkdir(parents=True)
    (fake / "io" / "bad.py").write_text("from motionlcm.pipeline import MotionLCM\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert graph() == {"io": {"pipeline"}}
    assert LEVEL["pipeline"] > LEVEL["io"]
