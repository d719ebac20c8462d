"""Tests for HumanML3DDataModule: datasets per stage, batch contents, shuffling and per-epoch crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.train.datamodule import HumanML3DDataModule
from tests.data.test_humanml3d import make_dataset_dir

BATCH_KEYS = {"features", "lengths", "mask", "texts", "tokens", "names"}


@pytest.fixture
def dataset_dir(tmp_path, humanml3d_sample_dir) -> Path:
    return make_dataset_dir(tmp_path, humanml3d_sample_dir)


def _check_batch(batch: dict, batch_size: int) -> None:
    assert set(batch) == BATCH_KEYS
    features, lengths, mask = batch["features"], batch["lengths"], batch["mask"]
    assert features.dtype == torch.float32 and features.shape[0] == batch_size and features.shape[2] == 263
    assert features.shape[1] == int(lengths.max())
    assert lengths.dtype == torch.long and bool((lengths % 4 == 0).all()) and int(lengths.max()) <= 196
    assert torch.equal(mask.sum(dim=1), lengths)
    assert len(batch["texts"]) == len(batch["tokens"]) == len(batch["names"]) == batch_size


def test_setup_builds_the_datasets_of_each_stage(dataset_dir) -> None:
    dm = HumanML3DDataModule(dataset_dir, batch_size=2)
    dm.setup("test")
    assert set(dm.datasets) == {"test"}
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "val", "test"}
    assert dm.datasets["train"].normalizer is dm.datasets["test"].normalizer is dm.normalizer
    np.testing.assert_array_equal(dm.normalizer.std, np.load(dataset_dir / "Std.npy"))


def test_loaders_yield_padded_batches(dataset_dir) -> None:
    dm = HumanML3DDataModule(dataset_dir, batch_size=2, seed=0)
    dm.setup("fit")
    train = list(dm.train_dataloader())
    assert [len(b["names"]) for b in train] == [2, 1]  # 3 train items; short_00 is filtered out
    for batch in train:
        _check_batch(batch, len(batch["names"]))
    assert sorted(n for b in train for n in b["names"]) == ["000000", "012314", "A_012314"]
    (val,) = list(dm.val_dataloader())
    _check_batch(val, 1)
    assert val["names"] == ["val_000"]
    dm.setup("test")
    (test,) = list(dm.test_dataloader())
    assert test["names"] == ["test_000"] and test["lengths"].item() in (56, 60)


def test_train_shuffles_and_val_keeps_order(dataset_dir) -> None:
    (dataset_dir / "val.txt").write_text("val_000\n000000\n012314\n")  # overlap is fine for the loader
    dm = HumanML3DDataModule(dataset_dir, batch_size=1, seed=0)
    dm.setup("fit")
    val_orders = {tuple(b["names"][0] for b in dm.val_dataloader()) for _ in range(3)}
    assert val_orders == {("A_012314", "val_000", "000000", "012314")}  # sorted by length, ascending

    def orders(loader):  # Lightning builds the loader once and calls set_epoch before every epoch
        result = []
        for epoch in range(12):
            loader.sampler.set_epoch(epoch)
            result.append(tuple(b["names"][0] for b in loader))
        return result

    train_orders = orders(dm.train_dataloader())
    assert len(set(train_orders)) > 1
    assert orders(dm.train_dataloader()) == train_orders  # a function of (seed, epoch) only


def test_resumed_loader_continues_mid_epoch(dataset_dir) -> None:
    dm = HumanML3DDataModule(dataset_dir, batch_size=1, seed=3)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(4)
    full = [b["names"][0] for b in loader]
    resumed = HumanML3DDataModule(dataset_dir, batch_size=1, seed=3)
    resumed.load_state_dict({"epoch": 4, "batches_done": 1})  # what a checkpoint after 1 batch holds
    resumed.setup("fit")
    assert [b["names"][0] for b in resumed.train_dataloader()] == full[1:]


def test_seeded_loaders_are_reproducible_and_crops_change_per_epoch(dataset_dir) -> None:
    def epoch_lengths(dm: HumanML3DDataModule, epoch: int) -> list[tuple[str, int]]:
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)  # what Lightning's fit loop calls at each epoch start
        return sorted((n, int(t)) for b in loader for n, t in zip(b["names"], b["lengths"], strict=True))

    first, second = (HumanML3DDataModule(dataset_dir, batch_size=2, seed=5) for _ in range(2))
    first.setup("fit")
    second.setup("fit")
    assert epoch_lengths(first, 0) == epoch_lengths(second, 0)
    assert len({tuple(epoch_lengths(first, epoch)) for epoch in range(10)}) > 1
    assert first.datasets["train"].epoch == 9 and first.datasets["val"].epoch == 0


def test_missing_stats_raise(dataset_dir) -> None:
    (dataset_dir / "Std.npy").unlink()
    with pytest.raises(ValueError, match=r"Std\.npy"):
        HumanML3DDataModule(dataset_dir).setup("fit")
