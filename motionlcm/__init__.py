"""motionlcm: real-time text-to-motion with latent consistency models."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from motionlcm import MotionLCM` without importing torch for `motionlcm --help`."""
    if name in ("MotionLCM", "Motion"):
        from motionlcm import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'motionlcm' has no attribute {name!r}")
