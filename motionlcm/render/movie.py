"""Movie writers for the stick-figure renderer: MP4 through ffmpeg, GIF through Pillow with exact frame
durations and one shared palette, both fed from the canvas as already drawn (a blitting loop, no
`savefig` per frame). See docs/rendering.md."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.animation import FFMpegWriter, PillowWriter

# ----------------------------------------------------------------------------- ffmpeg


def find_ffmpeg() -> str | None:
    """Path of an ffmpeg binary: imageio-ffmpeg's bundled one if installed, else ``ffmpeg`` on PATH."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
            return str(exe)
    except Exception:  # not installed, or no binary for this platform
        pass
    return shutil.which("ffmpeg")


# ----------------------------------------------------------------------------- writers


def _canvas_rgba(writer: Any) -> memoryview:
    """The figure's current Agg buffer (drawn by the blitting loop), checked against the movie size."""
    buf = writer.fig.canvas.buffer_rgba()
    if (buf.shape[1], buf.shape[0]) != tuple(writer.frame_size):
        raise RuntimeError(f"frame is {buf.shape[1]}x{buf.shape[0]} pixels, the movie {writer.frame_size}")
    return buf


def _pack(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]


def _frequent_colors(rgb: np.ndarray, size: int = 256) -> np.ndarray:
    """The ``size`` most frequent colours of ``rgb`` (..., 3) as a (size, 3) uint8 table (padded)."""
    colors, counts = np.unique(_pack(rgb).ravel(), return_counts=True)
    top = colors[np.argsort(-counts, kind="stable")[:size]]
    table = np.zeros((size, 3), dtype=np.uint8)
    table[: len(top)] = np.stack(((top >> 16) & 255, (top >> 8) & 255, top & 255), axis=-1)
    table[len(top) :] = table[0]
    return table


class _PaletteMapper:
    """Map RGB frames to the nearest colour of a fixed table (exact for colours in the table), without
    dithering; a 24-bit lookup table, filled lazily, makes it a gather per frame after the first."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.lut = np.full(1 << 24, -1, dtype=np.int16)

    def __call__(self, rgb: np.ndarray) -> Any:
        from PIL import Image

        packed = _pack(rgb)
        index = self.lut[packed]
        missing = index < 0
        if missing.any():
            new = np.unique(packed[missing])
            cols = np.stack(((new >> 16) & 255, (new >> 8) & 255, new & 255), axis=-1).astype(np.int32)
            dist = ((cols[:, None, :] - self.table[None].astype(np.int32)) ** 2).sum(-1)
            self.lut[new] = dist.argmin(1)
            index = self.lut[packed]
        im = Image.frombytes("P", (rgb.shape[1], rgb.shape[0]), index.astype(np.uint8).tobytes())
        im.putpalette(self.table.ravel().tolist())
        return im


class Mp4Writer(FFMpegWriter):
    """FFMpegWriter whose frames are the canvas buffer as already drawn (no ``savefig`` per frame)."""

    def grab_frame(self, **savefig_kwargs: Any) -> None:
        self._proc.stdin.write(_canvas_rgba(self))


class GifWriter(PillowWriter):
    """PillowWriter with exact per-frame durations, one shared palette and frames from the drawn canvas.

    GIF delays are in 10 ms units: frame i lasts round(100 (i+1) / fps) - round(100 i / fps) centiseconds,
    so 20 fps gives 50 ms per frame exactly and any other rate keeps the total duration right to within
    10 ms. Frames are quantized without dithering to one palette, the most frequent colours of a few
    frames: a global colour table, exact flat colours, fast, small and without flicker.
    """

    def grab_frame(self, **savefig_kwargs: Any) -> None:
        self._frames.append(np.array(_canvas_rgba(self))[..., :3])  # a copy: the canvas is reused

    def finish(self) -> None:
        frames = self._frames
        if not frames:
            raise RuntimeError("no frames to write")
        picks = sorted({0, len(frames) // 3, 2 * len(frames) // 3, len(frames) - 1})
        table = _frequent_colors(np.stack([frames[i] for i in picks]))
        to_palette = _PaletteMapper(table)
        quant = [to_palette(f) for f in frames]
        cs = np.round(np.arange(len(quant) + 1) * 100.0 / self.fps).astype(int)
        durations = [int(d) * 10 for d in np.maximum(np.diff(cs), 1)]
        quant[0].save(self.outfile, format="GIF", save_all=True, append_images=quant[1:],
                      duration=durations, loop=0, optimize=False)  # fmt: skip


def write_movie(fig: Any, animated: Sequence[Any], update: Callable[[int], None], frames: Sequence[int],
                 out_fps: float, tmp: Path, fmt: str, ffmpeg: str | None, metadata: dict[str, str]) -> None:  # fmt: skip
    """Blitting loop: the static parts (title) are drawn once; each frame restores them and draws only the
    ``animated`` artists (the 3-D axes and the clock) before handing the canvas to the writer."""
    if fmt == ".mp4":
        writer = Mp4Writer(fps=out_fps, codec="h264", metadata=metadata,
                           extra_args=["-pix_fmt", "yuv420p", "-crf", "23", "-preset", "veryfast",
                                       "-movflags", "+faststart"])  # fmt: skip
        rc = {"animation.ffmpeg_path": ffmpeg}
    else:
        writer = GifWriter(fps=out_fps)
        rc = {}
    for artist in animated:
        artist.set_animated(True)
    canvas = fig.canvas
    try:
        with mpl.rc_context(rc), writer.saving(fig, str(tmp), fig.dpi):
            canvas.draw()  # after setup(): the writer may have nudged the size to even pixels
            background = canvas.copy_from_bbox(fig.bbox)
            for i in frames:
                canvas.restore_region(background)
                update(i)
                for artist in animated:
                    fig.draw_artist(artist)
                writer.grab_frame()
    finally:
        _stop_encoder(writer)


def _stop_encoder(writer: Any) -> None:
    """Kill and reap the writer's ffmpeg process if a failure (a full disk while finishing) left it running,
    and close its pipes; a finished process is only reaped."""
    proc = getattr(writer, "_proc", None)
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
