"""HumanML3D text-motion dataset: split files, `caption#tokens#from#to` texts, length filters and crops.

Follows the T2M/MLD `Text2MotionDataset` (official `mld/data/humanml/dataset.py`; docs/datasets.md).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from motionlcm.data.features import FEATURE_DIM
from motionlcm.data.normalizer import Normalizer
from motionlcm.io.text import read_text_file

log = logging.getLogger(__name__)

# T2M Text2MotionDataset / MLD get_data.py constants.
MIN_LENGTH = 40  # keep motions with 40 <= rows < 200
MAX_LENGTH = 196  # longest sample after rounding to unit_length (HumanML3D pads to 196)
UNIT_LENGTH = 4  # sample lengths are multiples of 4
FPS = 20  # caption spans are in seconds; rows = int(seconds * 20)
CROP_PREFIXES = "ABCDEFGHIJKLMNOPQRSTUVW"  # T2M names span items "<letter A-W>_<id>"

MOTION_DIR = "new_joint_vecs"
JOINTS_DIR = "new_joints"
TEXT_DIR = "texts"


@dataclass(frozen=True)
class Caption:
    """One line of `texts/<name>.txt`: `caption#tokens#from#to`, times in seconds (0, 0 = whole clip)."""

    text: str
    tokens: str
    start: float
    end: float

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0


@dataclass(frozen=True)
class MotionItem:
    """A dataset item: raw (un-normalised) features (L, 263) float32 and the captions that describe them."""

    name: str
    motion: np.ndarray
    captions: tuple[Caption, ...]


def parse_caption_line(line: str) -> Caption:
    """Parse one `caption#tokens#from#to` line; NaN times become 0 (T2M).

    Raises:
        ValueError: not 4 '#'-separated fields, unparseable times, or from > to.
    """
    fields = line.rstrip("\r\n").split("#")
    if len(fields) != 4:
        raise ValueError(f"expected 4 '#'-separated fields (caption#tokens#from#to), got {len(fields)}")
    text, tokens, start_s, end_s = fields
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        raise ValueError(f"from/to must be numbers, got {start_s!r}/{end_s!r}") from None
    start = 0.0 if np.isnan(start) else start
    end = 0.0 if np.isnan(end) else end
    if not text.strip():
        raise ValueError("empty caption")
    if start > end:
        raise ValueError(f"from {start} > to {end}")
    return Caption(text.strip(), tokens.strip(), start, end)


def read_split(path: Path) -> list[str]:
    """Names listed in a split file (one per line, blank lines ignored, order kept, duplicates removed).

    Raises:
        ValueError: the file does not exist.
    """
    if not path.is_file():
        raise ValueError(f"{path}: split file not found")
    names = [line.strip() for line in read_text_file(path, "split file").splitlines()]
    return list(dict.fromkeys(name for name in names if name))


def length_status(rows: int, min_length: int, max_length: int, unit_length: int) -> str | None:
    """Why a motion of `rows` rows fails the length filter ("too_short"/"too_long"), or None if it passes.

    T2M keeps 40 <= rows < 200 and then rounds samples down to a multiple of 4 (<= 196). Here the upper
    bound is stated through the sample length: keep if floor(rows / unit) * unit <= max_length, which for
    max_length=196, unit=4 is exactly rows < 200.
    """
    if rows < min_length:
        return "too_short"
    if rows // unit_length * unit_length > max_length:
        return "too_long"
    return None


class HumanML3DDataset(Dataset):
    """Text-motion pairs from a HumanML3D-layout folder (also our BVH importer's output).

    Layout: `<root>/{split}.txt`, `<root>/new_joint_vecs/<name>.npy` (T, 263), `<root>/texts/<name>.txt`,
    `<root>/Mean.npy`, `<root>/Std.npy`; other files (e.g. `manifest.json`) are ignored.

    Loading (T2M `Text2MotionDataset`): a clip is kept if `length_status` passes; its whole-clip captions
    (from = to = 0) make one item named after the clip; every caption with a span becomes its own item with
    the rows `[int(from * fps), int(to * fps))` (Python slice, as T2M), named `<letter>_<name>` (letters
    A, B, ... in caption order, deterministic instead of T2M's random letter), if the crop passes the length
    filter too. Items are sorted by length, ascending, as in T2M (so unshuffled batches are homogeneous).
    Problem clips are skipped and counted in `dropped`; those that point at broken data also log a warning.

    Sampling (`__getitem__`, T2M semantics): a random caption of the item; length L rounded down to a
    multiple of `unit_length` ("single"), or one unit shorter ("double") with probability 1/3 when
    unit_length < 10; a uniform random start in [0, L - length]; then normalisation. "double" falls back to
    "single" when it would leave less than one unit. With `random_crop=False` the length is always "single"
    and the crop starts at row 0 (the caption is still drawn at random).

    Randomness: with `seed=None` each call draws fresh OS entropy (safe with DataLoader workers). With a
    seed, item `index` uses `np.random.default_rng([seed, epoch, index])`, so results depend only on
    (seed, epoch, index) - not on worker count or call order; `set_epoch` changes the draws per epoch.

    Args:
        root: dataset folder.
        split: split name; reads `<root>/<split>.txt` unless `split_file` is given.
        normalizer: feature normaliser; default `Normalizer.from_dir(root)`.
        min_length: shortest kept motion, in rows (T2M: 40; use e.g. 20 for short BVH clips).
        max_length: longest sample, in rows (T2M: 196; motions with rows // unit * unit > max_length drop).
        unit_length: sample lengths are multiples of this (T2M: 4).
        random_crop: T2M random length coin and crop start; False = deterministic crop (see above).
        fps: frame rate used to convert caption spans in seconds to rows (T2M: 20).
        split_file: explicit path of the split file.
        max_items: stop loading once this many items exist (for tiny debug sets).
        seed: makes sampling deterministic (see above).

    Attributes:
        items: list of `MotionItem`, sorted by length.
        dropped: counts of what was skipped and why: per clip `missing_motion`, `bad_shape`, `nonfinite`,
            `missing_text`, `no_caption`, `too_short`, `too_long`; per caption `bad_caption`,
            `span_too_short`, `span_too_long`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        normalizer: Normalizer | None = None,
        min_length: int = MIN_LENGTH,
        max_length: int = MAX_LENGTH,
        unit_length: int = UNIT_LENGTH,
        random_crop: bool = True,
        fps: float = FPS,
        split_file: str | Path | None = None,
        max_items: int | None = None,
        seed: int | None = None,
    ) -> None:
        if not 1 <= unit_length <= min_length <= max_length:
            raise ValueError(
                f"need 1 <= unit_length <= min_length <= max_length, got {unit_length}, {min_length}, {max_length}"
            )
        if seed is not None and seed < 0:
            raise ValueError(f"seed: must be >= 0, got {seed}")
        self.root = Path(root)
        self.split = split
        self.split_file = Path(split_file) if split_file is not None else self.root / f"{split}.txt"
        self.min_length, self.max_length, self.unit_length = min_length, max_length, unit_length
        self.random_crop, self.fps, self.seed = random_crop, fps, seed
        self.epoch = 0
        names = read_split(self.split_file)
        self.normalizer = normalizer if normalizer is not None else Normalizer.from_dir(self.root)
        self._dropped: Counter[str] = Counter()
        self.items = self._load(names, max_items)
        self.items.sort(key=lambda item: item.motion.shape[0])
        log.info(
            "%s: %d items from %d listed clips; dropped %s",
            self.split_file, len(self.items), len(names), self.dropped or "nothing",
        )  # fmt: skip

    @property
    def dropped(self) -> dict[str, int]:
        return dict(self._dropped)

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int raw item lengths in rows (before rounding to unit_length)."""
        return np.array([item.motion.shape[0] for item in self.items], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of `epoch` (only matters when `seed` is set)."""
        self.epoch = int(epoch)

    # ---- loading -------------------------------------------------------------------------------------

    def _load(self, names: list[str], max_items: int | None) -> list[MotionItem]:
        items: list[MotionItem] = []
        for name in names:
            if max_items is not None and len(items) >= max_items:
                break
            motion = self._load_motion(name)
            if motion is None:
                continue
            captions = self._load_captions(name)
            if captions is None:
                continue
            items.extend(self._clip_items(name, motion, captions))
        return items[:max_items] if max_items is not None else items

    def _drop(self, reason: str, message: str | None = None) -> None:
        self._dropped[reason] += 1
        if message is not None:
            log.warning(message)

    def _load_motion(self, name: str) -> np.ndarray | None:
        path = self.root / MOTION_DIR / f"{name}.npy"
        if not path.is_file():
            self._drop("missing_motion", f"{path}: motion file missing; skipping clip {name}")
            return None
        motion = np.load(path)
        if motion.ndim != 2 or motion.shape[1] != FEATURE_DIM:
            self._drop("bad_shape", f"{path}: shape {motion.shape}, expected (T, {FEATURE_DIM}); skipping")
            return None
        if not np.isfinite(motion).all():
            # HumanML3D's cal_mean_variance skips such clips (007975); a NaN sample would poison the loss.
            self._drop("nonfinite", f"{path}: non-finite values; skipping clip {name}")
            return None
        status = length_status(motion.shape[0], self.min_length, self.max_length, self.unit_length)
        if status is not None:
            self._drop(status)
            return None
        return motion.astype(np.float32, copy=False)

    def _load_captions(self, name: str) -> list[Caption] | None:
        path = self.root / TEXT_DIR / f"{name}.txt"
        if not path.is_file():
            self._drop("missing_text", f"{path}: text file missing; skipping clip {name}")
            return None
        try:
            text = read_text_file(path, "caption file")
        except ValueError as err:
            self._drop("missing_text", f"{err}; skipping clip {name}")
            return None
        captions = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                captions.append(parse_caption_line(line))
            except ValueError as err:
                self._drop("bad_caption", f"{path}:{number}: {err}; skipping caption")
        if not captions:
            self._drop("no_caption", f"{path}: no usable caption; skipping clip {name}")
            return None
        return captions

    def _clip_items(self, name: str, motion: np.ndarray, captions: list[Caption]) -> list[MotionItem]:
        items = []
        whole = tuple(caption for caption in captions if caption.whole_clip)
        if whole:
            items.append(MotionItem(name, motion, whole))
        for caption in captions:
            if caption.whole_clip:
                continue
            crop = motion[int(caption.start * self.fps) : int(caption.end * self.fps)]
            status = length_status(crop.shape[0], self.min_length, self.max_length, self.unit_length)
            if status is not None:
                self._drop(f"span_{status}")
                continue
            span_index = len(items) - (1 if whole else 0)
            items.append(MotionItem(self._span_name(name, span_index), crop, (caption,)))
        return items

    @staticmethod
    def _span_name(name: str, k: int) -> str:
        prefix = CROP_PREFIXES[k] if k < len(CROP_PREFIXES) else f"{CROP_PREFIXES[-1]}{k}"
        return f"{prefix}_{name}"

    # ---- sampling ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index])

    def _sample_length(self, rows: int, rng: np.random.Generator) -> int:
        single = rows // self.unit_length * self.unit_length
        if not self.random_crop:
            return single
        # T2M: coin2 from ["single", "single", "double"] when unit_length < 10; "double" is one unit shorter.
        if self.unit_length < 10 and rng.integers(3) == 2 and single - self.unit_length >= self.unit_length:
            return single - self.unit_length
        return single

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One training sample.

        Returns:
            dict with `features` (T, 263) float32 normalised tensor, `length` int (T, a multiple of
            unit_length, <= max_length), `text` str (the caption), `tokens` str (the file's space-separated
            `word/POS` tokens), `name` str (item name).
        """
        item = self.items[index]
        rng = self._rng(index)
        caption = item.captions[int(rng.integers(len(item.captions)))]
        rows = item.motion.shape[0]
        length = self._sample_length(rows, rng)
        start = int(rng.integers(rows - length + 1)) if self.random_crop else 0
        motion = self.normalizer.normalize(item.motion[start : start + length])
        return {
            "features": torch.from_numpy(np.ascontiguousarray(motion, dtype=np.float32)),
            "length": length,
            "text": caption.text,
            "tokens": caption.tokens,
            "name": item.name,
        }
