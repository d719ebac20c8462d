"""Rendering of motions: stick-figure animations (MP4/GIF) and frame strips (PNG). See docs/rendering.md."""

from motionlcm.render.stick import (
    SMPL_CHAIN_COLORS,
    Motion,
    chains_from_parents,
    find_ffmpeg,
    load_motion,
    render_animation,
    render_file,
    render_frames,
)

__all__ = [
    "SMPL_CHAIN_COLORS",
    "Motion",
    "chains_from_parents",
    "find_ffmpeg",
    "load_motion",
    "render_animation",
    "render_file",
    "render_frames",
]
