"""Rendering of motion arrays: stick-figure animations (MP4/GIF) and frame strips (PNG). See docs/rendering.md.
Files and the `Motion` type: `motionlcm.motion` (`Motion.load(path).render(out)`)."""

from motionlcm.render.stick import (
    SMPL_CHAIN_COLORS,
    chains_from_parents,
    find_ffmpeg,
    render_animation,
    render_frames,
)

__all__ = [
    "SMPL_CHAIN_COLORS",
    "chains_from_parents",
    "find_ffmpeg",
    "render_animation",
    "render_frames",
]
