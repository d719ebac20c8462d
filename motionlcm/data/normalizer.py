"""Mean/std normalisation of 263-d HumanML3D features, with HumanML3D's per-block std averaging.

See docs/representation.md, "The 263 columns" (layout), and HumanML3D's `cal_mean_variance.ipynb`
(github.com/EricGuo5513/HumanML3D; how the released Mean.npy/Std.npy were made).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from motionlcm.data.features import FEATURE_BLOCKS, FEATURE_DIM

log = logging.getLogger(__name__)

MEAN_FILE = "Mean.npy"
STD_FILE = "Std.npy"

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _check_clip(clip: np.ndarray, index: int) -> np.ndarray:
    clip = np.asarray(clip)
    if clip.ndim != 2 or clip.shape[1] != FEATURE_DIM:
        raise ValueError(f"clip #{index}: expected shape (T, {FEATURE_DIM}), got {clip.shape}")
    if not np.isfinite(clip).all():
        raise ValueError(f"clip #{index}: contains non-finite values")
    return clip.astype(np.float64, copy=False)


def block_average(std: np.ndarray) -> np.ndarray:
    """Replace each feature block of a per-dim std by the block's mean (HumanML3D `cal_mean_variance`).

    Args:
        std: per-dimension std, shape (263,).

    Returns:
        Block-averaged std, shape (263,), same dtype as the input.
    """
    out = np.array(std, copy=True)
    for block in FEATURE_BLOCKS.values():
        out[block] = std[block].mean()
    return out


def compute_mean_std(feature_arrays: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and block-averaged std of a corpus of 263-d feature clips, as HumanML3D computes them.

    The mean and the (population, ddof=0) std are taken per dimension over all rows of all clips, as if
    the clips were concatenated; they are accumulated clip by clip (Chan et al. merge) in float64, so the
    corpus never has to fit in memory. The std is then replaced by its average within each of the 7 blocks
    of `FEATURE_BLOCKS`. A block whose average std is 0 (a constant block) gets std 1.0, so normalising it
    only subtracts the mean.

    Args:
        feature_arrays: clips of shape (T_i, 263), float32 or float64; empty clips are skipped.

    Returns:
        (mean, std), each float32 of shape (263,).

    Raises:
        ValueError: a clip has the wrong shape or non-finite values, or there are no rows at all.
    """
    count = 0
    mean = np.zeros(FEATURE_DIM, dtype=np.float64)
    m2 = np.zeros(FEATURE_DIM, dtype=np.float64)
    for index, clip in enumerate(feature_arrays):
        clip = _check_clip(clip, index)
        n = clip.shape[0]
        if n == 0:
            continue
        clip_mean = clip.mean(axis=0)
        clip_m2 = ((clip - clip_mean) ** 2).sum(axis=0)
        delta = clip_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + clip_m2 + delta**2 * (count * n / total)
        count = total
    if count == 0:
        raise ValueError("compute_mean_std: no feature rows given")
    std = block_average(np.sqrt(m2 / count))
    for name, block in FEATURE_BLOCKS.items():
        if not std[block][0] > 0:
            log.warning("feature block %s has zero std; using std 1.0 for it", name)
            std[block] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _as_vector(values: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, np.float32)
    if array.shape != (FEATURE_DIM,):
        raise ValueError(f"{what}: expected shape ({FEATURE_DIM},), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: contains non-finite values")
    return array


class Normalizer:
    """Z-normalisation `(x - mean) / std` of 263-d features, for numpy arrays and torch tensors.

    Args:
        mean: shape (263,).
        std: shape (263,), all entries > 0.
    """

    def __init__(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        self.mean = _as_vector(mean, "mean")
        self.std = _as_vector(std, "std")
        if not (self.std > 0).all():
            bad = np.flatnonzero(self.std <= 0)
            raise ValueError(f"std: must be > 0 everywhere, got {self.std[bad[0]]} at dim {bad[0]}")
        self._torch_cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_dir(cls, path: str | Path) -> Normalizer:
        """Load `Mean.npy` and `Std.npy` from a dataset folder.

        Raises:
            ValueError: a file is missing or has the wrong shape/values; the message names the file.
        """
        path = Path(path)
        arrays = []
        for file_name in (MEAN_FILE, STD_FILE):
            file = path / file_name
            if not file.is_file():
                raise ValueError(f"{file}: file not found (needed for feature normalisation)")
            arrays.append(_as_vector(np.load(file), str(file)))
        return cls(*arrays)

    @classmethod
    def from_features(cls, feature_arrays: Iterable[np.ndarray]) -> Normalizer:
        """Build a normalizer from a corpus of (T_i, 263) clips with `compute_mean_std`."""
        return cls(*compute_mean_std(feature_arrays))

    def save(self, path: str | Path) -> None:
        """Write `Mean.npy` and `Std.npy` (float32, (263,)) into the folder `path`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / MEAN_FILE, self.mean)
        np.save(path / STD_FILE, self.std)

    def _stats_like(self, x: ArrayT) -> tuple[ArrayT, ArrayT]:
        if isinstance(x, torch.Tensor):
            key = (x.device, x.dtype)
            if key not in self._torch_cache:
                self._torch_cache[key] = (
                    torch.as_tensor(self.mean, dtype=x.dtype, device=x.device),
                    torch.as_tensor(self.std, dtype=x.dtype, device=x.device),
                )
            return self._torch_cache[key]
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return self.mean.astype(dtype), self.std.astype(dtype)

    def _check_last_dim(self, x: np.ndarray | torch.Tensor) -> None:
        if x.shape[-1] != FEATURE_DIM:
            raise ValueError(f"features: expected last dim {FEATURE_DIM}, got shape {tuple(x.shape)}")

    def normalize(self, x: ArrayT) -> ArrayT:
        """`(x - mean) / std`.

        Args:
            x: features (..., 263), numpy array or torch tensor (any device, floating dtype).

        Returns:
            Normalised features of the same type, shape, dtype and device.
        """
        self._check_last_dim(x)
        mean, std = self._stats_like(x)
        return (x - mean) / std

    def denormalize(self, x: ArrayT) -> ArrayT:
        """`x * std + mean`, the inverse of `normalize`; same contract."""
        self._check_last_dim(x)
        mean, std = self._stats_like(x)
        return x * std + mean
