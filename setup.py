"""Packaging beyond pyproject.toml: the shipped model folders travel inside the package.

The repository keeps them in the top-level checkpoints/ folder; the wheel installs them as
motionlcm/_checkpoints (found by `motionlcm.pipeline.shipped_checkpoints_dirs`). Only the released
folders (with their installed controllers) and their model card are carried: checkpoints/wip and everything
outside motionlcm/ stay out.
"""

from setuptools import find_packages, setup

SHIPPED_MODELS = ("bandai-namco", "bandai-namco-teacher", "bandai-namco-evaluator")

setup(
    packages=[*find_packages(include=["motionlcm", "motionlcm.*"]), "motionlcm._checkpoints"],
    package_dir={"motionlcm._checkpoints": "checkpoints"},
    package_data={
        "motionlcm.studio": ["static/*", "static/vendor/*"],  # the studio's page and vendored three.js
        "motionlcm._checkpoints": [
            "README.md",
            *(f"{name}/*" for name in SHIPPED_MODELS),
            *(f"{name}/control/*/*" for name in SHIPPED_MODELS),  # installed controllers (docs/control.md)
        ]
    },
)
