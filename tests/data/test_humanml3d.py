"""Tests for HumanML3DDataset and collate_motion on folders built from the real HumanML3D sample."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from motionlcm.data.collate import collate_motion, lengths_to_mask
from motionlcm.data.humanml3d import HumanML3DDataset, length_status, parse_caption_line
from motionlcm.data.normalizer import Normalizer

TEXT_012314 = [
    "a person serves a tennis ball.#a/DET person/NOUN serve/VERB a/DET tennis/NOUN ball/NOUN#0.0#0.0",
    "someone swings a racket overhead.#someone/PRON swing/VERB a/DET racket/NOUN overhead/ADV#0.0#0.0",
    "a person tosses a ball up.#a/DET person/NOUN toss/VERB a/DET ball/NOUN up/ADP#1.0#4.5",  # rows 20:90
    "a person stands.#a/DET person/NOUN stand/VERB#0.5#1.5",  # 20 rows: too short at min_length 40
]
WHOLE_012314 = {line.split("#")[0] for line in TEXT_012314[:2]}
TOKENS_012314 = {line.split("#")[0]: line.split("#")[1] for line in TEXT_012314}
SPAN_012314 = TEXT_012314[2].split("#")[0]


def add_clip(root: Path, name: str, motion: np.ndarray, captions: Sequence[str], joints=None) -> None:
    """Write one clip (features, optional joints, captions) into a HumanML3D-layout folder."""
    np.save(root / "new_joint_vecs" / f"{name}.npy", motion)
    if joints is not None:
        np.save(root / "new_joints" / f"{name}.npy", joints)
    (root / "texts" / f"{name}.txt").write_text("".join(f"{line}\n" for line in captions))


def caption(text: str, start: float = 0.0, end: float = 0.0) -> str:
    return f"{text}#{' '.join(w + '/NOUN' for w in text.split())}#{start}#{end}"


def make_dataset_dir(tmp_path: Path, sample_dir: Path) -> Path:
    """A clean HumanML3D-layout folder: the two real clips plus small synthetic ones cut from them.

    train: 000000 (116 rows), 012314 (170 rows, 2 whole captions + spans 20:90 and 10:30), short_00 (30
    rows, too short); val: val_000 (012314[:100]); test: test_000 (000000[:60]).
    """
    root = tmp_path / "humanml3d"
    for folder in ("new_joint_vecs", "new_joints", "texts"):
        (root / folder).mkdir(parents=True)
    for file_name in ("Mean.npy", "Std.npy", "texts/000000.txt"):
        shutil.copy(sample_dir / file_name, root / file_name)
    for name in ("000000", "012314"):
        for folder in ("new_joint_vecs", "new_joints"):
            shutil.copy(sample_dir / folder / f"{name}.npy", root / folder / f"{name}.npy")
    (root / "texts" / "012314.txt").write_text("\n".join(TEXT_012314) + "\n")
    feats = {n: np.load(sample_dir / "new_joint_vecs" / f"{n}.npy") for n in ("000000", "012314")}
    joints = {n: np.load(sample_dir / "new_joints" / f"{n}.npy") for n in ("000000", "012314")}
    add_clip(root, "short_00", feats["000000"][:30], [caption("a short kick")], joints["000000"][:30])
    add_clip(root, "val_000", feats["012314"][:100], [caption("a tennis serve")], joints["012314"][:100])
    add_clip(root, "test_000", feats["000000"][:60], [caption("a man kicks")], joints["000000"][:60])
    (root / "train.txt").write_text("000000\n012314\nshort_00\n")
    (root / "val.txt").write_text("val_000\n")
    (root / "test.txt").write_text("test_000\n")
    return root


@pytest.fixture
def dataset_dir(tmp_path, humanml3d_sample_dir) -> Path:
    return make_dataset_dir(tmp_path, humanml3d_sample_dir)


def _raw(root: Path, name: str) -> np.ndarray:
    return np.load(root / "new_joint_vecs" / f"{name}.npy").astype(np.float32)


def _find_window(clip: np.ndarray, window: np.ndarray) -> int:
    """Start row of `window` inside `clip` (asserts it is an exact contiguous slice, up to float error)."""
    starts = [s for s in range(len(clip) - len(window) + 1)
              if np.allclose(clip[s : s + len(window)], window, atol=1e-4)]  # fmt: skip
    assert len(starts) == 1, f"window found at {starts}"
    return starts[0]


# ---- captions and filters -----------------------------------------------------------------------------


def test_parse_caption_line() -> None:
    cap = parse_caption_line("a man walks.#a/DET man/NOUN walk/VERB#1.5#3.0\n")
    assert (cap.text, cap.tokens, cap.start, cap.end, cap.whole_clip) == (
        "a man walks.", "a/DET man/NOUN walk/VERB", 1.5, 3.0, False,
    )  # fmt: skip
    assert parse_caption_line("x#x/NOUN#nan#nan").whole_clip  # T2M: NaN tags become 0
    for bad, match in (
        ("x#x/NOUN#0.0", "4 '#'"),
        ("x#x/NOUN#a#0", "numbers"),
        ("x#x/NOUN#3#1", "from 3.0 > to"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_caption_line(bad)


def test_length_filter_matches_t2m_bounds() -> None:
    # T2M keeps 40 <= rows < 200; samples are rounded down to multiples of 4, hence <= 196.
    assert [length_status(n, 40, 196, 4) for n in (39, 40, 199, 200)] == ["too_short", None, None, "too_long"]
    assert length_status(20, 20, 196, 4) is None


# ---- loading ------------------------------------------------------------------------------------------


def test_loads_split_with_span_items_and_drop_counts(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train")
    assert sorted(ds.names) == ["000000", "012314", "A_012314"]
    assert ds.dropped == {"too_short": 1, "span_too_short": 1}
    assert list(ds.lengths) == sorted(ds.lengths)  # T2M sorts items by length
    span = ds.items[ds.names.index("A_012314")]
    np.testing.assert_array_equal(span.motion, _raw(dataset_dir, "012314")[20:90])  # int(1.0*20):int(4.5*20)
    assert [c.text for c in span.captions] == [SPAN_012314]
    whole = ds.items[ds.names.index("012314")]
    assert {c.text for c in whole.captions} == WHOLE_012314  # span captions do not describe the whole clip
    assert all(item.motion.dtype == np.float32 for item in ds.items)  # 000000 is stored as float64


def test_min_length_is_configurable(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", min_length=20)
    assert sorted(ds.names) == ["000000", "012314", "A_012314", "B_012314", "short_00"]
    assert ds.items[ds.names.index("B_012314")].motion.shape[0] == 20  # rows 10:30
    assert ds.dropped == {}


def test_upper_length_bound_is_t2m_200(dataset_dir) -> None:
    tiled = np.concatenate([_raw(dataset_dir, "012314")] * 2)
    add_clip(dataset_dir, "len_199", tiled[:199], [caption("long")])
    add_clip(dataset_dir, "len_200", tiled[:200], [caption("too long")])
    (dataset_dir / "long.txt").write_text("len_199\nlen_200\n")
    ds = HumanML3DDataset(dataset_dir, "long", seed=0)
    assert ds.names == ["len_199"] and ds.dropped == {"too_long": 1}
    lengths = set()
    for epoch in range(20):
        ds.set_epoch(epoch)
        lengths.add(ds[0]["length"])
    assert lengths == {196, 192}  # floor(199 / 4) * 4 and one unit less


def test_missing_text_is_skipped_with_warning(dataset_dir, caplog) -> None:
    (dataset_dir / "texts" / "000000.txt").unlink()
    (dataset_dir / "train.txt").write_text("000000\n012314\nno_such_clip\n")
    with caplog.at_level(logging.WARNING, logger="motionlcm.data.humanml3d"):
        ds = HumanML3DDataset(dataset_dir, "train")
    assert "000000" not in ds.names
    assert ds.dropped == {"missing_text": 1, "missing_motion": 1, "span_too_short": 1}
    assert "texts/000000.txt: text file missing" in caplog.text
    assert "no_such_clip.npy: motion file missing" in caplog.text


def test_bad_caption_lines_and_nan_clips_are_skipped(dataset_dir) -> None:
    with open(dataset_dir / "texts" / "012314.txt", "a") as f:
        f.write("broken line without fields\n")
    motion = _raw(dataset_dir, "000000")
    motion[5, 7] = np.nan
    np.save(dataset_dir / "new_joint_vecs" / "000000.npy", motion)
    ds = HumanML3DDataset(dataset_dir, "train")
    assert sorted(ds.names) == ["012314", "A_012314"]
    assert ds.dropped == {"bad_caption": 1, "nonfinite": 1, "too_short": 1, "span_too_short": 1}


def test_missing_split_or_stats_raise_naming_the_file(dataset_dir) -> None:
    with pytest.raises(ValueError, match=r"nope\.txt: split file not found"):
        HumanML3DDataset(dataset_dir, "nope")
    (dataset_dir / "Mean.npy").unlink()
    with pytest.raises(ValueError, match=r"Mean\.npy: file not found"):
        HumanML3DDataset(dataset_dir, "train")


def test_split_file_and_max_items(dataset_dir, tmp_path) -> None:
    split_file = tmp_path / "custom.txt"
    split_file.write_text("012314\n000000\n")
    ds = HumanML3DDataset(dataset_dir, split_file=split_file, max_items=2)
    assert sorted(ds.names) == ["012314", "A_012314"]  # stops after the items of the first clip


# ---- sampling -----------------------------------------------------------------------------------------


def test_items_are_normalised_crops_of_valid_length(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", seed=3)
    norm = Normalizer.from_dir(dataset_dir)
    seen_lengths: dict[str, set[int]] = {}
    for epoch in range(40):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            item = ds[index]
            feats, length = item["features"], item["length"]
            assert feats.dtype == torch.float32 and feats.shape == (length, 263)
            assert length % 4 == 0 and 0 < length <= 196
            raw = ds.items[index].motion
            single = len(raw) // 4 * 4
            assert length in (single, single - 4)  # T2M coin: "single" or "double"
            seen_lengths.setdefault(item["name"], set()).add(length)
            if epoch < 3:  # the exact-window search is slow; a few epochs suffice
                _find_window(raw, norm.denormalize(feats.numpy()))
    assert seen_lengths["A_012314"] == {68, 64}  # 70 rows: single 68, double 64
    assert seen_lengths["000000"] == {116, 112}


def test_double_coin_has_probability_one_third(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", seed=0)
    index = ds.names.index("012314")  # 170 rows -> single 168, double 164
    doubles = 0
    for epoch in range(600):
        ds.set_epoch(epoch)
        doubles += ds[index]["length"] == 164
    assert 0.27 < doubles / 600 < 0.40


def test_crop_starts_cover_the_clip(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", seed=1)
    index = ds.names.index("A_012314")
    span = ds.items[index].motion
    starts = set()
    for epoch in range(300):
        ds.set_epoch(epoch)
        item = ds[index]
        starts.add(_find_window(span, ds.normalizer.denormalize(item["features"].numpy())))
        if len(starts) == 7:
            break
    assert starts == set(range(7))  # 70 rows: single 68 -> starts 0..2; double 64 -> starts 0..6


def test_captions_are_drawn_from_the_item(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", seed=0)
    index = ds.names.index("012314")
    texts = set()
    for epoch in range(30):
        ds.set_epoch(epoch)
        item = ds[index]
        texts.add(item["text"])
        assert item["tokens"] == TOKENS_012314[item["text"]]
    assert texts == WHOLE_012314


def test_no_random_crop_is_deterministic_prefix(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", random_crop=False)
    index = ds.names.index("A_012314")
    item = ds[index]
    assert item["length"] == 68
    np.testing.assert_allclose(
        ds.normalizer.denormalize(item["features"].numpy()), _raw(dataset_dir, "012314")[20:88], atol=1e-5
    )


def test_seed_makes_items_reproducible(dataset_dir) -> None:
    a = HumanML3DDataset(dataset_dir, "train", seed=7)
    b = HumanML3DDataset(dataset_dir, "train", seed=7)
    for index in range(len(a)):
        x, y = a[index], b[index]
        assert x["text"] == y["text"] and torch.equal(x["features"], y["features"])
        torch.testing.assert_close(a[index]["features"], x["features"])  # same call, same draw
    per_epoch = []
    for epoch in range(8):
        a.set_epoch(epoch)
        per_epoch.append(tuple(a[i]["features"].shape[0] for i in range(len(a))) + (a[0]["text"],))
    assert len(set(per_epoch)) > 1


# ---- collate ------------------------------------------------------------------------------------------


def test_lengths_to_mask() -> None:
    mask = lengths_to_mask(torch.tensor([3, 1, 0]), max_len=4)
    expected = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    assert lengths_to_mask([2, 5]).shape == (2, 5)
    with pytest.raises(ValueError, match="max_len"):
        lengths_to_mask([2, 5], max_len=4)


def test_collate_pads_and_masks_in_input_order(dataset_dir) -> None:
    ds = HumanML3DDataset(dataset_dir, "train", seed=0)
    items = [ds[i] for i in reversed(range(len(ds)))]  # longest first: order must be kept
    batch = collate_motion(items)
    lengths = [item["length"] for item in items]
    assert set(batch) == {"features", "lengths", "mask", "texts", "tokens", "names"}
    assert batch["features"].shape == (3, max(lengths), 263) and batch["features"].dtype == torch.float32
    assert batch["lengths"].dtype == torch.long and batch["lengths"].tolist() == lengths
    assert batch["names"] == [item["name"] for item in items]
    assert batch["texts"] == [item["text"] for item in items]
    assert batch["tokens"] == [item["tokens"] for item in items]
    for b, item in enumerate(items):
        n = item["length"]
        assert torch.equal(batch["features"][b, :n], item["features"])
        assert torch.count_nonzero(batch["features"][b, n:]) == 0
        assert batch["mask"][b].tolist() == [True] * n + [False] * (max(lengths) - n)


def test_collate_rejects_inconsistent_length() -> None:
    item = {"features": torch.zeros(4, 263), "length": 5, "text": "t", "tokens": "", "name": "x"}
    with pytest.raises(ValueError, match="'x': length 5"):
        collate_motion([item])
