"""Inference runtime: fast paths over the same weights (fused attention, lean text encoder, prompt cache,
torch.compile, CUDA graphs, autocast, frame buckets); see fast_paths.py."""

from motionlcm.runtime.fast_paths import FastPaths, apply_fast_paths, bucket_frames

__all__ = ["FastPaths", "apply_fast_paths", "bucket_frames"]
