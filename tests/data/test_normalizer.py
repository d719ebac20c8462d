"""Tests for motionlcm.data.normalizer: block layout, HumanML3D mean/std, normalise round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionlcm.data.normalizer import FEATURE_BLOCKS, FEATURE_DIM, Normalizer, compute_mean_std

# The released HumanML3D Std.npy (block-averaged by HumanML3D's cal_mean_variance.ipynb), one value per block.
RELEASED_BLOCK_STD = {
    "root_rot_vel": 0.012826,
    "root_lin_vel": 0.016927,
    "root_y": 0.153766,
    "ric": 0.122244,
    "rot6d": 0.299692,
    "local_vel": 0.019470,
    "foot_contact": 0.355933,
}


def _reference_mean_std(clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Straight HumanML3D recipe: concatenate, per-dim mean/std, then block-average the std."""
    data = np.concatenate([np.asarray(c, np.float64) for c in clips])
    std = data.std(axis=0)
    for block in FEATURE_BLOCKS.values():
        std[block] = std[block].mean()
    return data.mean(axis=0), std


@pytest.fixture(scope="module")
def sample_clips(humanml3d_sample_dir) -> list[np.ndarray]:
    return [np.load(humanml3d_sample_dir / "new_joint_vecs" / f"{n}.npy") for n in ("000000", "012314")]


def test_feature_blocks_tile_263_dims_in_order() -> None:
    sizes = [block.stop - block.start for block in FEATURE_BLOCKS.values()]
    assert sizes == [1, 2, 1, 63, 126, 66, 4]
    starts = [block.start for block in FEATURE_BLOCKS.values()]
    stops = [block.stop for block in FEATURE_BLOCKS.values()]
    assert starts[0] == 0 and stops[-1] == FEATURE_DIM and starts[1:] == stops[:-1]


def test_released_std_is_block_constant_with_documented_values(humanml3d_sample_dir) -> None:
    std = np.load(humanml3d_sample_dir / "Std.npy")
    for name, block in FEATURE_BLOCKS.items():
        np.testing.assert_allclose(std[block], std[block][0], rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(std[block][0], RELEASED_BLOCK_STD[name], rtol=1e-4, err_msg=name)


def test_compute_mean_std_matches_numpy_recipe_on_real_clips(sample_clips) -> None:
    mean, std = compute_mean_std(sample_clips)
    ref_mean, ref_std = _reference_mean_std(sample_clips)
    assert mean.dtype == np.float32 and std.dtype == np.float32
    assert mean.shape == std.shape == (FEATURE_DIM,)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(std, ref_std, rtol=1e-5)


def test_std_is_block_average_of_per_dim_std(sample_clips) -> None:
    _, std = compute_mean_std(sample_clips)
    per_dim = np.concatenate(sample_clips).astype(np.float64).std(axis=0)
    assert np.ptp(per_dim[FEATURE_BLOCKS["ric"]]) > 0.01  # the averaging really changes something
    for name, block in FEATURE_BLOCKS.items():
        assert np.ptp(std[block]) == 0, name
        np.testing.assert_allclose(std[block][0], per_dim[block].mean(), rtol=1e-5, err_msg=name)


def test_streaming_merge_is_exact_for_uneven_clips_with_large_offset() -> None:
    rng = np.random.default_rng(0)
    clips = [1000.0 + 0.01 * rng.standard_normal((n, FEATURE_DIM)) * rng.uniform(0.5, 2, FEATURE_DIM)
             for n in (1, 7, 50, 3, 200)]  # fmt: skip
    clips.append(np.zeros((0, FEATURE_DIM)))  # empty clips are skipped
    mean, std = compute_mean_std(iter(clips))  # any iterable, consumed once
    ref_mean, ref_std = _reference_mean_std(clips[:-1])
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-7)
    np.testing.assert_allclose(std, ref_std, rtol=1e-4)


def test_constant_block_gets_unit_std_and_normalises_finitely(sample_clips) -> None:
    clips = [c.copy() for c in sample_clips]
    for clip in clips:
        clip[:, FEATURE_BLOCKS["foot_contact"]] = 1.0
    mean, std = compute_mean_std(clips)
    np.testing.assert_array_equal(std[FEATURE_BLOCKS["foot_contact"]], 1.0)
    assert np.isfinite(Normalizer(mean, std).normalize(clips[0])).all()


@pytest.mark.parametrize(
    "clips, match",
    [
        ([np.zeros((5, 262))], r"clip #0: expected shape"),
        ([np.zeros((5, FEATURE_DIM)), np.full((2, FEATURE_DIM), np.nan)], r"clip #1: contains non-finite"),
        ([], "no feature rows"),
    ],
)
def test_compute_mean_std_rejects_bad_input(clips, match) -> None:
    with pytest.raises(ValueError, match=match):
        compute_mean_std(clips)


def test_round_trip_numpy_and_torch(humanml3d_sample_dir, sample_clips) -> None:
    norm = Normalizer.from_dir(humanml3d_sample_dir)
    clip64 = sample_clips[0]  # the 000000 sample is float64
    assert clip64.dtype == np.float64
    z64 = norm.normalize(clip64)
    assert z64.dtype == np.float64
    np.testing.assert_allclose(norm.denormalize(z64), clip64, atol=1e-9)

    batch = torch.from_numpy(np.stack([sample_clips[1][:40], sample_clips[1][40:80]]))  # (2, 40, 263) f32
    z = norm.normalize(batch)
    assert z.dtype == torch.float32 and z.shape == batch.shape
    torch.testing.assert_close(norm.denormalize(z), batch, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(z.numpy(), norm.normalize(batch.numpy()), rtol=1e-6)
    np.testing.assert_allclose(norm.normalize(norm.mean), 0.0)
    expected = (sample_clips[1][0] - np.load(humanml3d_sample_dir / "Mean.npy")) / np.load(
        humanml3d_sample_dir / "Std.npy"
    )
    np.testing.assert_allclose(z[0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_normalize_rejects_wrong_feature_dim(humanml3d_sample_dir) -> None:
    with pytest.raises(ValueError, match="last dim 263"):
        Normalizer.from_dir(humanml3d_sample_dir).normalize(torch.zeros(2, 251))


def test_from_dir_names_missing_file(tmp_path, humanml3d_sample_dir) -> None:
    np.save(tmp_path / "Mean.npy", np.load(humanml3d_sample_dir / "Mean.npy"))
    with pytest.raises(ValueError, match=r"Std\.npy: file not found"):
        Normalizer.from_dir(tmp_path)
    with pytest.raises(ValueError, match=r"Mean\.npy: file not found"):
        Normalizer.from_dir(tmp_path / "nowhere")


def test_from_dir_rejects_bad_shape_and_zero_std(tmp_path) -> None:
    np.save(tmp_path / "Mean.npy", np.zeros(FEATURE_DIM, np.float32))
    np.save(tmp_path / "Std.npy", np.ones(FEATURE_DIM - 1, np.float32))
    with pytest.raises(ValueError, match=r"Std\.npy: expected shape \(263,\)"):
        Normalizer.from_dir(tmp_path)
    std = np.ones(FEATURE_DIM, np.float32)
    std[5] = 0.0
    with pytest.raises(ValueError, match="at dim 5"):
        Normalizer(np.zeros(FEATURE_DIM), std)


def test_save_then_from_dir_round_trips(tmp_path, sample_clips) -> None:
    norm = Normalizer.from_features(sample_clips)
    norm.save(tmp_path / "stats")
    loaded = Normalizer.from_dir(tmp_path / "stats")
    np.testing.assert_array_equal(loaded.mean, norm.mean)
    np.testing.assert_array_equal(loaded.std, norm.std)
