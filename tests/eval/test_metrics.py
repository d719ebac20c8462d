"""Text-to-motion metrics (motionlcm.eval.metrics): properties, constructed cases and brute-force checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motionlcm.eval import metrics as M

# ---------------------------------------------------------------------------------------------
# Helpers written independently of the module under test
# ---------------------------------------------------------------------------------------------


def _closed_form_fd(mu1, s1, mu2, s2):
    """Frechet distance through eigendecompositions: Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2)."""
    w1, v1 = np.linalg.eigh(s1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    inner = root1 @ s2 @ root1
    w = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(w, 0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def _brute_force_rp(text, motion, perm, group_size, top_k):
    """Loop version of the protocol: explicit norms, rank = count of strictly nearer candidates
    plus ties at a lower index."""
    n_groups = len(perm) // group_size
    hits = [0] * top_k
    total_dist = 0.0
    count = 0
    for g in range(n_groups):
        members = perm[g * group_size : (g + 1) * group_size]
        for i, ti in enumerate(members):
            dists = [math.dist(text[ti], motion[mj]) for mj in members]
            own = dists[i]
            rank = sum(1 for j, d in enumerate(dists) if d < own or (d == own and j < i))
            for k in range(top_k):
                if rank <= k:
                    hits[k] += 1
            total_dist += own
            count += 1
    out = {f"top{k + 1}": hits[k] / count for k in range(top_k)}
    out["matching_score"] = total_dist / count
    return out


# ---------------------------------------------------------------------------------------------
# Euclidean distance matrix
# ---------------------------------------------------------------------------------------------


def test_distance_matrix_matches_direct_norms_and_is_safe():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5)) * 100
    b = rng.normal(size=(4, 5)) * 100
    direct = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    np.testing.assert_allclose(M.euclidean_distance_matrix(a, b), direct, rtol=1e-10)
    # Identical large rows: the expansion can round below 0; must be clipped, never NaN.
    big = np.full((3, 512), 1234.5678) + rng.normal(size=(3, 512)) * 1e-9
    d = M.euclidean_distance_matrix(big, big)
    assert np.isfinite(d).all() and (d >= 0).all()
    assert np.abs(np.diagonal(d)).max() < 1e-3
    # Batched form agrees with the 2-D form group by group.
    ga, gb = rng.normal(size=(3, 6, 4)), rng.normal(size=(3, 5, 4))
    batched = M.euclidean_distance_matrix(ga, gb)
    for g in range(3):
        np.testing.assert_allclose(batched[g], M.euclidean_distance_matrix(ga[g], gb[g]))
    with pytest.raises(ValueError):
        M.euclidean_distance_matrix(a, rng.normal(size=(4, 6)))


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


def test_gaussian_stats_is_mean_and_unbiased_cov():
    x = np.array([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    mu, sigma = M.gaussian_stats(x)
    np.testing.assert_allclose(mu, [3.0, 2.0])
    centred = x - mu
    np.testing.assert_allclose(sigma, centred.T @ centred / 2)
    with pytest.raises(ValueError):
        M.gaussian_stats(x[:1])


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(1000, 32)) * np.linspace(0.5, 3.0, 32)
    _, sigma = M.gaussian_stats(x)
    assert abs(M.fid(x, x)) < 1e-6 * np.trace(sigma)


def test_frechet_distance_closed_form_diagonal_exact():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 4.0, size=6), rng.uniform(0.1, 4.0, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = M.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_frechet_distance_closed_form_full_covariances():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    got = M.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(_closed_form_fd(mu1, s1, mu2, s2), rel=1e-9)
    assert got == pytest.approx(M.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)


def test_fid_of_samples_matches_closed_form_of_their_gaussians():
    rng = np.random.default_rng(4)
    d = 4
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.5 * np.eye(d)
    mu1, mu2 = np.zeros(d), np.full(d, 0.7)
    n = 200_000
    gen = rng.multivariate_normal(mu1, s1, size=n)
    real = rng.multivariate_normal(mu2, s2, size=n)
    expected = _closed_form_fd(mu2, s2, mu1, s1)
    assert expected > 1.0
    assert M.fid(gen, real) == pytest.approx(expected, rel=0.02)
    assert M.fid(gen, real) == pytest.approx(M.fid(real, gen), rel=1e-8)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fid_rank_deficient_covariance_is_finite():
    rng = np.random.default_rng(5)
    gen = rng.normal(size=(10, 32))  # 10 samples in 32-D: covariance of rank 9
    real = rng.normal(size=(12, 32)) + 1.0
    value = M.fid(gen, real)
    assert math.isfinite(value) and value > 0


def test_frechet_distance_jitter_fallback(monkeypatch):
    """A non-finite first square root triggers the eps * I retry on both covariances."""
    calls = []
    real_sqrtm = M._matrix_sqrt

    def fake(mat):
        calls.append(mat.copy())
        if len(calls) == 1:
            return np.full_like(mat, np.inf)
        return real_sqrtm(mat)

    monkeypatch.setattr(M, "_matrix_sqrt", fake)
    s1, s2 = np.diag([1.0, 0.0, 4.0]), np.diag([0.0, 9.0, 1.0])  # singular product
    mu = np.zeros(3)
    eps = 1e-6
    with pytest.warns(RuntimeWarning, match="singular product"):
        got = M.frechet_distance(mu, s1, mu, s2, eps=eps)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + eps * np.eye(3)) @ (s2 + eps * np.eye(3)))
    d1, d2 = np.diag(s1), np.diag(s2)
    expected = np.sum(d1 + d2) - 2 * np.sum(np.sqrt((d1 + eps) * (d2 + eps)))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_imaginary_component(monkeypatch):
    s = np.eye(2)
    mu = np.zeros(2)
    # Small imaginary noise is dropped.
    monkeypatch.setattr(M, "_matrix_sqrt", lambda m: np.eye(2) + 1e-6j)
    assert M.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-12)
    # Large imaginary diagonal: ValueError, as the reference.
    monkeypatch.setattr(M, "_matrix_sqrt", lambda m: np.eye(2) + 0.5j * np.eye(2))
    with pytest.raises(ValueError, match="Imaginary component"):
        M.frechet_distance(mu, s, mu, s)
    # The reference only checks the diagonal: a large off-diagonal imaginary part is tolerated.
    monkeypatch.setattr(M, "_matrix_sqrt", lambda m: np.eye(2) + 0.5j * (1 - np.eye(2)))
    assert M.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# R-precision and MM-Dist
# ---------------------------------------------------------------------------------------------


def test_identical_embeddings_give_perfect_r_precision_and_zero_matching():
    emb = np.random.default_rng(6).normal(size=(32 * 5 + 7, 64)) * 3
    out = M.r_precision_and_matching(emb, emb.copy(), rng=np.random.default_rng(0))
    assert out["top1"] == out["top2"] == out["top3"] == 1.0
    assert out["matching_score"] == pytest.approx(0.0, abs=1e-5)
    assert set(out) == {"top1", "top2", "top3", "matching_score"}


def test_random_embeddings_give_chance_level():
    rng = np.random.default_rng(7)
    n = 32 * 200
    text, motion = rng.normal(size=(n, 16)), rng.normal(size=(n, 16))
    out = M.r_precision(text, motion, rng=np.random.default_rng(1))
    for k in (1, 2, 3):
        p = k / 32
        std = math.sqrt(p * (1 - p) / n)
        assert abs(out[f"top{k}"] - p) < 5 * std, (k, out)
    # MM-Dist of independent N(0, I_16) pairs: E||x - y|| = 2 Gamma(8.5) / Gamma(8) ~ sqrt(2 * 16)
    expected = 2 * math.exp(math.lgamma(8.5) - math.lgamma(8))
    assert M.matching_score(text, motion, rng=np.random.default_rng(1)) == pytest.approx(expected, rel=0.02)


def _second_nearest_case(n):
    """Text i = e_i; motion i = 0.6 e_i + 0.9 e_{i-1} (cyclic). Text i is at distance^2 0.37 from
    motion i+1, 0.97 from its own motion i, and 2.17 from every other motion."""
    eye = np.eye(n)
    text = eye
    motion = 0.6 * eye + 0.9 * np.roll(eye, -1, axis=1)  # row i: 0.6 at i, 0.9 at i-1
    return text, motion


def test_match_always_second_nearest():
    # One group of 32: any permutation keeps each decoy in its text's group.
    text, motion = _second_nearest_case(32)
    for seed in range(3):
        out = M.r_precision_and_matching(text, motion, rng=np.random.default_rng(seed))
        assert out["top1"] == 0.0 and out["top2"] == 1.0 and out["top3"] == 1.0
        assert out["matching_score"] == pytest.approx(math.sqrt(0.97))
    # Several groups, identity permutation: the cyclic decoy structure within each block of 32.
    blocks = [_second_nearest_case(32) for _ in range(3)]
    text = np.zeros((96, 96))
    motion = np.zeros((96, 96))
    for b, (t, m) in enumerate(blocks):
        text[b * 32 : (b + 1) * 32, b * 32 : (b + 1) * 32] = t * (1 + b)
        motion[b * 32 : (b + 1) * 32, b * 32 : (b + 1) * 32] = m * (1 + b)
    out = M.r_precision_and_matching(text, motion, perm=np.arange(96))
    assert out["top1"] == 0.0 and out["top2"] == 1.0


def test_remainder_is_dropped():
    rng = np.random.default_rng(8)
    n = 70  # 2 groups of 32 = 64 items used, 6 dropped
    text = rng.normal(size=(n, 8))
    motion = text.copy()
    perm = rng.permutation(n)
    dropped = perm[64:]
    motion[dropped] = text[dropped] + 1000.0  # would be misses and huge distances if counted
    out = M.r_precision_and_matching(text, motion, perm=perm)
    assert out["top1"] == 1.0  # 64 hits / 64, not 64 / 70 and not fewer hits
    assert out["matching_score"] == pytest.approx(0.0, abs=1e-5)
    # Put a bad item in the used part instead: exactly one miss out of 64.
    motion = text.copy()
    motion[perm[0]] = text[perm[0]] + 1000.0
    out = M.r_precision_and_matching(text, motion, perm=perm)
    assert out["top1"] == pytest.approx(63 / 64)


def test_vectorized_matches_brute_force_for_same_permutation():
    rng = np.random.default_rng(9)
    n = 32 * 4 + 13
    text = rng.normal(size=(n, 12))
    motion = text + rng.normal(size=(n, 12)) * 1.5  # informative but imperfect
    perm = np.random.default_rng(123).permutation(n)
    expected = _brute_force_rp(text, motion, perm, 32, 5)
    got = M.r_precision_and_matching(text, motion, perm=perm, top_k=5)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), key
    assert 0 < got["top1"] < got["top3"] < got["top5"] < 1
    # Default permutation is rng.permutation(N) from the given generator.
    assert M.r_precision_and_matching(text, motion, rng=np.random.default_rng(123), top_k=5) == got
    # Other group sizes too.
    expected8 = _brute_force_rp(text, motion, perm, 8, 3)
    got8 = M.r_precision_and_matching(text, motion, perm=perm, group_size=8)
    for key in expected8:
        assert got8[key] == pytest.approx(expected8[key], rel=1e-12, abs=1e-12), key


def test_ties_go_to_the_lower_index_and_nan_distances_count_as_zero():
    # Integer embeddings keep the distance expansion exact, so the ties below are exact.
    rng = np.random.default_rng(10)
    base = rng.integers(-50, 50, size=(32, 4)).astype(float)
    assert len({tuple(r) for r in base}) == 32
    # Duplicate pair: text 1 = text 0 and motion 1 = motion 0, so text 1 is 0 away from motions 0 and 1.
    text = base.copy()
    text[1] = text[0]
    motion = text.copy()
    out = M.r_precision_and_matching(text, motion, perm=np.arange(32))
    assert out["top1"] == pytest.approx(31 / 32)  # text 1 loses the tie to motion 0
    assert out["top2"] == 1.0
    assert out["matching_score"] == 0.0
    # A NaN motion: its distances become 0 (nan_to_num), tying with every exact own match.
    text = base.copy()
    motion = text.copy()
    motion[5] = np.nan
    out = M.r_precision_and_matching(text, motion, perm=np.arange(32))
    assert out["matching_score"] == 0.0
    # Texts 0..4 keep their own (lower) index first, text 5 matches itself; texts 6.. lose to motion 5.
    assert out["top1"] == pytest.approx(6 / 32)
    assert out["top2"] == 1.0


def test_r_precision_errors_and_wrappers():
    rng = np.random.default_rng(11)
    text, motion = rng.normal(size=(31, 4)), rng.normal(size=(31, 4))
    with pytest.raises(ValueError, match="at least one full group"):
        M.r_precision(text, motion)
    with pytest.raises(ValueError):
        M.r_precision_and_matching(text, motion[:30], group_size=8)
    with pytest.raises(ValueError):
        M.r_precision_and_matching(text, motion, group_size=8, top_k=9)
    with pytest.raises(ValueError):
        M.r_precision_and_matching(text, motion, group_size=8, perm=np.zeros(31, dtype=int))
    full = M.r_precision_and_matching(text, motion, rng=np.random.default_rng(3), group_size=8, top_k=4)
    rp = M.r_precision(text, motion, top_k=4, group_size=8, rng=np.random.default_rng(3))
    assert rp == {k: v for k, v in full.items() if k != "matching_score"}
    ms = M.matching_score(text, motion, group_size=8, rng=np.random.default_rng(3))
    assert ms == full["matching_score"]
    assert all(isinstance(v, float) for v in full.values())


def test_seeds_repeat_and_differ():
    rng = np.random.default_rng(12)
    n = 32 * 3 + 20
    text, motion = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    a = M.r_precision_and_matching(text, motion, rng=np.random.default_rng(5))
    b = M.r_precision_and_matching(text, motion, rng=np.random.default_rng(5))
    c = M.r_precision_and_matching(text, motion, rng=np.random.default_rng(6))
    assert a == b
    assert a["matching_score"] != c["matching_score"]  # a different subset of 96 out of 116
    emb = rng.normal(size=(500, 8))
    assert M.diversity(emb, 300, rng=np.random.default_rng(1)) == M.diversity(emb, 300, rng=1)
    assert M.diversity(emb, 300, rng=np.random.default_rng(1)) != M.diversity(emb, 300, rng=2)
    mm = rng.normal(size=(20, 30, 8))
    assert M.multimodality(mm, rng=np.random.default_rng(1)) == M.multimodality(mm, rng=np.random.default_rng(1))
    assert M.multimodality(mm, rng=np.random.default_rng(1)) != M.multimodality(mm, rng=np.random.default_rng(2))


# ---------------------------------------------------------------------------------------------
# Diversity and MultiModality
# ---------------------------------------------------------------------------------------------


def test_diversity_identical_points_is_zero():
    emb = np.tile(np.arange(5.0), (400, 1))
    assert M.diversity(emb, rng=np.random.default_rng(0)) == 0.0


def test_diversity_two_clusters():
    d, n, times = 6.0, 20_000, 300
    emb = np.zeros((n, 3))
    emb[n // 2 :, 0] = d
    # Independent draws: a pair crosses clusters with probability 1/2, so E = d / 2.
    p = 0.5
    tol = 5 * d * math.sqrt(p * (1 - p) / times)
    assert abs(M.diversity(emb, times, rng=np.random.default_rng(1)) - d / 2) < tol
    # Exact value for the drawn indices, reproduced from the same generator.
    g = np.random.default_rng(2)
    first = g.choice(n, times, replace=False)
    second = g.choice(n, times, replace=False)
    crossing = np.count_nonzero((first >= n // 2) != (second >= n // 2))
    assert M.diversity(emb, times, rng=np.random.default_rng(2)) == pytest.approx(d * crossing / times)


def test_diversity_size_checks():
    emb = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(ValueError, match="smaller `times`"):
        M.diversity(emb, 300)
    assert math.isfinite(M.diversity(emb, 50, rng=0))  # N == times is allowed (reference asserts >=)
    with pytest.raises(ValueError):
        M.diversity(emb[0], 1)


def test_multimodality_identical_repeats_is_zero():
    base = np.random.default_rng(0).normal(size=(100, 1, 16))
    emb = np.repeat(base, 30, axis=1)
    assert M.multimodality(emb, rng=np.random.default_rng(0)) == pytest.approx(0.0, abs=1e-12)


def test_multimodality_known_offsets():
    """Repeat r of text t is base_t + s_t * e_r: distinct repeats are s_t * sqrt(2) apart."""
    rng = np.random.default_rng(1)
    num_texts, repeats, times = 7, 30, 10
    scales = rng.uniform(0.5, 3.0, size=num_texts)
    base = rng.normal(size=(num_texts, 1, repeats)) * 5
    emb = base + scales[:, None, None] * np.eye(repeats)[None]
    g = np.random.default_rng(3)
    first = g.choice(repeats, times, replace=False)
    second = g.choice(repeats, times, replace=False)
    frac_distinct = np.count_nonzero(first != second) / times
    expected = scales.mean() * math.sqrt(2) * frac_distinct
    assert M.multimodality(emb, times, rng=np.random.default_rng(3)) == pytest.approx(expected, rel=1e-12)
    # Averaged over many seeds: E = mean(s) * sqrt(2) * (1 - 1 / repeats).
    values = [M.multimodality(emb, times, rng=s) for s in range(400)]
    assert np.mean(values) == pytest.approx(scales.mean() * math.sqrt(2) * (1 - 1 / repeats), rel=0.02)


def test_multimodality_index_sets_are_shared_across_texts():
    """Text 1 is a copy of text 0: shared pairs give both texts the same mean distance."""
    rng = np.random.default_rng(2)
    one = rng.normal(size=(1, 30, 8))
    both = np.concatenate([one, one], axis=0)
    for seed in range(5):
        assert M.multimodality(both, rng=seed) == pytest.approx(M.multimodality(one, rng=seed), rel=1e-12)


def test_multimodality_shape_checks():
    with pytest.raises(ValueError, match="smaller `times`"):
        M.multimodality(np.zeros((4, 10, 3)), times=10)  # reference asserts repeats > times
    with pytest.raises(ValueError):
        M.multimodality(np.zeros((4, 30)))


# ---------------------------------------------------------------------------------------------
# Replications
# ---------------------------------------------------------------------------------------------


def test_confidence_interval_population_std():
    values = [1.0, 2.0, 3.0, 4.0]
    mean, ci = M.confidence_interval(values)
    # population variance = ((1.5^2 + 0.5^2) * 2) / 4 = 1.25
    assert mean == 2.5
    assert ci == pytest.approx(1.96 * math.sqrt(1.25) / 2, rel=1e-12)
    assert M.confidence_interval([0.3]) == (0.3, 0.0)
    with pytest.raises(ValueError):
        M.confidence_interval([])


def test_summarize_replications():
    reps = [{"FID": 0.1, "top1": 0.5}, {"FID": 0.3, "top1": 0.5}]
    out = M.summarize_replications(reps)
    assert out["FID"]["values"] == [0.1, 0.3]
    assert out["FID"]["mean"] == pytest.approx(0.2)
    assert out["FID"]["conf_interval"] == pytest.approx(1.96 * 0.1 / math.sqrt(2))
    assert out["top1"] == {"mean": 0.5, "conf_interval": 0.0, "values": [0.5, 0.5]}
    with pytest.raises(ValueError):
        M.summarize_replications([{"FID": 0.1}, {"FID": 0.2, "top1": 0.5}])
    with pytest.raises(ValueError):
        M.summarize_replications([])


def test_tm2t_metrics_one_replication():
    rng = np.random.default_rng(13)
    n = 32 * 10 + 5
    text = rng.normal(size=(n, 16))
    real = text + rng.normal(size=(n, 16)) * 0.3
    gen = text + rng.normal(size=(n, 16)) * 2.0
    out = M.tm2t_metrics(text, gen, real, rng=np.random.default_rng(4))
    assert out == M.tm2t_metrics(text, gen, real, rng=np.random.default_rng(4))
    g = np.random.default_rng(4)
    perm = g.permutation(n)
    gen_rm = M.r_precision_and_matching(text, gen, perm=perm)
    real_rm = M.r_precision_and_matching(text, real, perm=perm)
    assert out["R_precision_top_2"] == gen_rm["top2"] and out["gt_R_precision_top_3"] == real_rm["top3"]
    assert out["Matching_score"] == gen_rm["matching_score"]
    assert out["gt_Matching_score"] == real_rm["matching_score"]
    assert out["FID"] == pytest.approx(M.fid(gen, real), rel=1e-12)
    assert out["Diversity"] == M.diversity(gen, 300, rng=g)
    assert out["gt_Diversity"] == M.diversity(real, 300, rng=g)
    assert out["gt_R_precision_top_1"] > out["R_precision_top_1"]


def test_protocol_constants():
    assert (M.R_PRECISION_GROUP_SIZE, M.R_PRECISION_TOP_K, M.DIVERSITY_TIMES) == (32, 3, 300)
    assert (M.MM_NUM_SAMPLES, M.MM_NUM_REPEATS, M.MM_NUM_TIMES, M.REPLICATION_TIMES) == (100, 30, 10, 20)
