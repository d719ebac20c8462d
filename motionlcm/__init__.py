"""motionlcm: real-time text-to-motion with latent consistency models."""

__version__ = "0.1.0"

