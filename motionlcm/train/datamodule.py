"""Lightning data module over a HumanML3D-layout folder: train/val/test datasets and loaders."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, RandomSampler

from motionlcm.data.collate import collate_motion
from motionlcm.data.humanml3d import MAX_LENGTH, MIN_LENGTH, UNIT_LENGTH, HumanML3DDataset
from motionlcm.data.normalizer import Normalizer


class _EpochRandomSampler(RandomSampler):
    """RandomSampler whose `set_epoch` (called by Lightning each epoch) also reaches the dataset."""

    def set_epoch(self, epoch: int) -> None:
        self.data_source.set_epoch(epoch)


class HumanML3DDataModule(pl.LightningDataModule):
    """Train/val/test `HumanML3DDataset`s of one folder, batched with `collate_motion`.

    The normaliser is the folder's Mean.npy/Std.npy, shared by all splits. The train loader shuffles
    (deterministically when `seed` is set) and advances the dataset's epoch so random crops change per epoch;
    val/test keep the dataset order (sorted by length) and their epoch-0 draws. Workers are not persistent,
    so the epoch set in the main process reaches them when each epoch's iterator starts.

    Args:
        root: dataset folder.
        batch_size: items per batch, all loaders.
        num_workers: DataLoader worker processes.
        min_length, max_length, unit_length: length filter and rounding (see `HumanML3DDataset`).
        seed: makes shuffling and crops reproducible.
        train_split, val_split, test_split: split names (`<root>/<name>.txt`). MotionLCM validates on
            "test" (motionlcm-reference §1.4); the default here is "val".
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
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.min_length, self.max_length, self.unit_length = min_length, max_length, unit_length
        self.seed = seed
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.normalizer: Normalizer | None = None
        self.datasets: dict[str, HumanML3DDataset] = {}

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
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        return self._loader("train", _EpochRandomSampler(dataset, generator=generator))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
