"""Lightning data module over a HumanML3D-layout folder: train/val/test datasets and loaders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from motionlcm.data.collate import collate_motion
from motionlcm.data.humanml3d import MAX_LENGTH, MIN_LENGTH, UNIT_LENGTH, HumanML3DDataset
from motionlcm.data.normalizer import Normalizer

BUCKET_GROUP_BATCHES = 16  # batches sorted together: wide enough to match lengths, small enough to mix


def bucket_by_length(order: list[int], lengths: np.ndarray, batch_size: int, generator: torch.Generator) -> list[int]:
    """Reorder a shuffled `order` so that each consecutive `batch_size` items have similar lengths.

    Groups of `BUCKET_GROUP_BATCHES` batches are sorted by length and cut into batches; the batches of a
    group are shuffled. Every index keeps appearing exactly once; a short last batch stays last.
    """
    group = batch_size * BUCKET_GROUP_BATCHES
    batches = []
    for start in range(0, len(order), group):
        part = sorted(order[start : start + group], key=lambda i: int(lengths[i]))
        chunk = [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        full = [b for b in chunk if len(b) == batch_size]
        batches += [full[j] for j in torch.randperm(len(full), generator=generator).tolist()]
        batches += [b for b in chunk if len(b) < batch_size]
    return [i for batch in batches for i in batch]


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation that is a function of (seed, epoch) alone, and can start mid-epoch.

    `set_epoch` (called by Lightning every epoch) also reaches the dataset, so random crops change per
    epoch. With `bucket_batch_size` the permutation is reordered by `bucket_by_length` so that each run
    of that many items has similar lengths (less padding: batches pad to their longest clip). `skip_next(n)` drops the first n items of the next iteration: a resumed run continues with
    exactly the batches the interrupted run had not yet seen.
    """

    def __init__(self, dataset: HumanML3DDataset, seed: int, bucket_batch_size: int = 0) -> None:
        self.dataset, self.seed = dataset, seed
        self.bucket_batch_size = bucket_batch_size
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def skip_next(self, items: int) -> None:
        self._skip = items

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        if self.bucket_batch_size:
            order = bucket_by_length(order, self.dataset.lengths, self.bucket_batch_size, generator)
        skip, self._skip = self._skip, 0
        return iter(order[skip:])


class HumanML3DDataModule(pl.LightningDataModule):
    """Train/val/test `HumanML3DDataset`s of one folder, batched with `collate_motion`.

    The normaliser is the folder's Mean.npy/Std.npy, shared by all splits. The train loader shuffles
    (a permutation per (seed, epoch)) and advances the dataset's epoch so random crops change per epoch; its
    position inside the epoch is saved with checkpoints, so a resumed run sees the same batches;
    val/test keep the dataset order (sorted by length) and their epoch-0 draws. Workers are not persistent,
    so the epoch set in the main process reaches them when each epoch's iterator starts.

    Args:
        root: dataset folder.
        batch_size: items per batch, all loaders.
        num_workers: DataLoader worker processes.
        min_length, max_length, unit_length: length filter and rounding (see `HumanML3DDataset`).
        seed: makes shuffling and crops reproducible.
        train_split, val_split, test_split: split names (`<root>/<name>.txt`). MotionLCM validates on
            "test" (`VAL.SPLIT: 'test'` in the official configs); the default here is "val".
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 64,
        num_workers: int = 0,
        min_length: int = MIN_LENGTH,
        max_length: int = MAX_LENGTH,
        unit_length: int = UNIT_LENGTH,
        seed: int | None = None,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        bucket_by_length: bool = False,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.min_length, self.max_length, self.unit_length = min_length, max_length, unit_length
        self.seed, self.bucket_by_length = seed, bucket_by_length
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.normalizer: Normalizer | None = None
        self.datasets: dict[str, HumanML3DDataset] = {}
        self._resume: tuple[int, int] | None = None

    def _dataset(self, role: str) -> HumanML3DDataset:
        if role not in self.datasets:
            if self.normalizer is None:
                self.normalizer = Normalizer.from_dir(self.root)
            self.datasets[role] = HumanML3DDataset(
                self.root,
                split=self.splits[role],
                normalizer=self.normalizer,
                min_length=self.min_length,
                max_length=self.max_length,
                unit_length=self.unit_length,
                seed=self.seed,
            )
        return self.datasets[role]

    def set_normalizer(self, normalizer: Normalizer) -> None:
        """Use other statistics than the folder's (e.g. those a pretrained VAE was trained with)."""
        self.normalizer = normalizer
        for dataset in self.datasets.values():
            dataset.normalizer = normalizer

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs: fit -> train+val, validate -> val, test -> test, None -> all."""
        roles = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for role in roles.get(stage, ("train", "val", "test")):
            self._dataset(role)

    def _loader(self, role: str, sampler: torch.utils.data.Sampler | None = None) -> DataLoader:
        return DataLoader(
            self._dataset(role),
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_motion,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        seed = self.seed if self.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        self._train_sampler = EpochShuffleSampler(dataset, seed, self.batch_size if self.bucket_by_length else 0)
        if self._resume is not None:
            epoch, batches = self._resume
            self._train_sampler.set_epoch(epoch)
            self._train_sampler.skip_next(batches * self.batch_size)
            self._resume = None
        return self._loader("train", self._train_sampler)

    def state_dict(self) -> dict[str, Any]:
        """Where the training loop is inside its epoch, so a resumed run skips the batches already seen."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._resume = (int(state["epoch"]), int(state["batches_done"]))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
