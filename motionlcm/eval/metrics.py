"""Text-to-motion metrics on evaluator embeddings: R-precision, MM-Dist, FID, Diversity, MultiModality.

Every function here is pure: numpy arrays in, Python floats (or small dicts of floats) out. All
randomness goes through an explicit ``rng`` argument (a ``np.random.Generator``, an int seed, or
``None`` for a fresh unseeded generator), so a fixed seed makes every result repeatable.

The protocol is the one used by T2M (Guo et al. 2022, ``utils/metrics.py``), MLD and MotionLCM
(``mld/models/metrics/tm2t.py``, ``mm.py``, ``utils.py``; ``test.py::get_metric_statistics``).
See ``docs/evaluation-metrics.md`` for the definitions, the protocol constants and the sources.

Deliberate differences from the reference code (the official MotionLCM ``mld/models/metrics/tm2t.py`` and
``utils.py``), none of which changes a result beyond rounding:

* distances and statistics are computed in float64 (the reference works in the evaluator's
  float32 for R-precision and MM-Dist);
* negative squared distances (rounding) are clipped to 0 before the square root; the reference
  takes the square root of the negative and maps the resulting NaN to 0, which gives the same 0;
* ranking uses a stable argsort, so exact distance ties go to the lower index inside the group;
  the reference's ``torch.argsort`` (``stable=False``) leaves the order of exact ties unspecified.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.linalg

__all__ = [
    "DIVERSITY_TIMES",
    "FID_EPS",
    "MM_NUM_REPEATS",
    "MM_NUM_SAMPLES",
    "MM_NUM_TIMES",
    "R_PRECISION_GROUP_SIZE",
    "R_PRECISION_TOP_K",
    "REPLICATION_TIMES",
    "confidence_interval",
    "diversity",
    "euclidean_distance_matrix",
    "fid",
    "frechet_distance",
    "gaussian_stats",
    "matching_score",
    "multimodality",
    "r_precision",
    "r_precision_and_matching",
    "summarize_replications",
    "tm2t_metrics",
]

# Protocol constants (MotionLCM configs: METRIC.*, TEST.*; T2M final_evaluations.py).
R_PRECISION_GROUP_SIZE = 32  # R_size: texts ranked against 32 motions (1 match + 31 distractors)
R_PRECISION_TOP_K = 3  # R@1, R@2, R@3
DIVERSITY_TIMES = 300  # DIVERSITY_TIMES: random pairs for Diversity
MM_NUM_SAMPLES = 100  # MM_NUM_SAMPLES: texts drawn for MultiModality
MM_NUM_REPEATS = 30  # MM_NUM_REPEATS: generations per text
MM_NUM_TIMES = 10  # MM_NUM_TIMES: random pairs among the repeats
REPLICATION_TIMES = 20  # REPLICATION_TIMES: whole evaluation repeated, reported as mean +- 95% CI
FID_EPS = 1e-6  # diagonal jitter of the singular-product fallback in the Frechet distance
CI_Z = 1.96  # two-sided 95% normal quantile used by get_metric_statistics


RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    """``np.random.default_rng`` returns a Generator unchanged, seeds an int, and makes a fresh one for None."""
    return np.random.default_rng(rng)


def _as_2d(name: str, x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_items, dim), got shape {arr.shape}")
    return arr


def _paired(text_emb: np.ndarray, motion_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    text = _as_2d("text_emb", text_emb)
    motion = _as_2d("motion_emb", motion_emb)
    if text.shape != motion.shape:
        raise ValueError(
            f"text_emb and motion_emb must be paired row by row with the same shape, "
            f"got {text.shape} and {motion.shape}"
        )
    return text, motion


# ---------------------------------------------------------------------------------------------
# Distances
# ---------------------------------------------------------------------------------------------


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances: ``out[..., i, j] = ||a[..., i, :] - b[..., j, :]||_2``.

    Shapes ``(N, D)`` and ``(M, D)`` give ``(N, M)``; leading batch dimensions, if any, broadcast
    (``(G, N, D)`` and ``(G, M, D)`` give ``(G, N, M)``).

    Computed, as in T2M/MLD ``euclidean_distance_matrix``, through the expansion
    ``||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2`` in float64. Rounding can make that expansion
    slightly negative for (near-)identical rows, so it is clipped at 0 before the square root
    (the reference instead takes ``sqrt`` of the negative and later maps the NaN to 0). NaN inputs
    still give NaN distances.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"expected (..., N, D) and (..., M, D) arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"feature dimensions differ: {a.shape[-1]} vs {b.shape[-1]}")
    sq_a = np.sum(a * a, axis=-1)[..., :, None]
    sq_b = np.sum(b * b, axis=-1)[..., None, :]
    sq = sq_a + sq_b - 2.0 * np.matmul(a, np.swapaxes(b, -1, -2))
    np.maximum(sq, 0.0, out=sq)  # NaN propagates through np.maximum, as it should
    return np.sqrt(sq)


# ---------------------------------------------------------------------------------------------
# R-precision and MM-Dist (matching score)
# ---------------------------------------------------------------------------------------------


def r_precision_and_matching(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    rng: RngLike = None,
    group_size: int = R_PRECISION_GROUP_SIZE,
    top_k: int = R_PRECISION_TOP_K,
    perm: np.ndarray | None = None,
) -> dict[str, float]:
    """R-precision (top-1..top-k) and MM-Dist from one shared random grouping of the N pairs.

    Protocol (MLD/MotionLCM ``TM2TMetrics.compute``, ``mld/models/metrics/tm2t.py``):

    1. permute the N (text, motion) pairs at random (``perm``, by default ``rng.permutation(N)``);
    2. cut the permuted list into ``G = N // group_size`` consecutive groups of ``group_size``
       and drop the ``N - G * group_size`` remaining pairs;
    3. in each group take the ``group_size x group_size`` Euclidean distance matrix texts x
       motions (NaN -> 0) and argsort each row; text i scores a hit at k when its own motion
       (the diagonal entry) is among the first k of that ordering;
    4. ``top{k}`` = hits at k / (G * group_size); ``matching_score`` (MM-Dist) = the sum of the
       diagonal (matched) distances / (G * group_size).

    The real-motion ("gt_") variants of the reference use the same permutation as the generated
    ones: draw ``perm = rng.permutation(N)`` once and pass it to both calls.

    Args:
        text_emb: ``(N, D)`` text embeddings.
        motion_emb: ``(N, D)`` motion embeddings, row i paired with text row i.
        rng: the generator that draws the permutation (ignored when ``perm`` is given).
        group_size: R_size, 32 in the protocol.
        top_k: largest k reported, 3 in the protocol.
        perm: an explicit permutation of ``range(N)`` to use instead of drawing one.

    Returns:
        ``{"top1": ..., ..., f"top{top_k}": ..., "matching_score": ...}`` as Python floats.

    Raises:
        ValueError: if the shapes do not pair up, if ``N < group_size`` (no complete group), if
            ``top_k`` is not in ``[1, group_size]``, or if ``perm`` is not a permutation of range(N).
    """
    text, motion = _paired(text_emb, motion_emb)
    n = text.shape[0]
    if group_size < 1:
        raise ValueError(f"group_size must be positive, got {group_size}")
    if not 1 <= top_k <= group_size:
        raise ValueError(f"top_k must be in [1, group_size={group_size}], got {top_k}")
    if n < group_size:
        raise ValueError(f"R-precision needs at least one full group: got N={n} pairs, group_size={group_size}")
    if perm is None:
        perm = _rng(rng).permutation(n)
    else:
        perm = np.asarray(perm)
        if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
            raise ValueError(f"perm must be a permutation of range({n})")

    num_groups = n // group_size
    used = num_groups * group_size
    idx = perm[:used].reshape(num_groups, group_size)
    dist = np.nan_to_num(euclidean_distance_matrix(text[idx], motion[idx]))  # (G, g, g)

    order = np.argsort(dist, axis=-1, kind="stable")  # (G, g, g): motion indices, nearest first
    # Position of the matching motion (index i in row i) in each row's ordering.
    rank = np.argmax(order == np.arange(group_size)[None, :, None], axis=-1)  # (G, g)

    out = {f"top{k}": float(np.count_nonzero(rank < k)) / used for k in range(1, top_k + 1)}
    out["matching_score"] = float(np.trace(dist, axis1=-2, axis2=-1).sum()) / used
    return out


def r_precision(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    top_k: int = R_PRECISION_TOP_K,
    group_size: int = R_PRECISION_GROUP_SIZE,
    rng: RngLike = None,
) -> dict[str, float]:
    """R-precision ``{"top1": ..., f"top{top_k}": ...}``: the share of texts whose own motion is among
    the k nearest (Euclidean) of ``group_size`` candidates; see :func:`r_precision_and_matching`
    for the grouping protocol (MLD ``tm2t.py``, T2M ``calculate_R_precision``)."""
    out = r_precision_and_matching(text_emb, motion_emb, rng=rng, group_size=group_size, top_k=top_k)
    del out["matching_score"]
    return out


def matching_score(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    group_size: int = R_PRECISION_GROUP_SIZE,
    rng: RngLike = None,
) -> float:
    """MM-Dist ("Matching Score"): the mean Euclidean distance between each text and its own motion,
    averaged over the ``N // group_size * group_size`` pairs kept by the R-precision grouping
    (MLD ``tm2t.py``: trace of each group's distance matrix / R_count). See
    :func:`r_precision_and_matching`."""
    out = r_precision_and_matching(text_emb, motion_emb, rng=rng, group_size=group_size, top_k=1)
    return out["matching_score"]


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


def gaussian_stats(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian fit of embeddings ``(N, D)``: mean ``(D,)`` and ``np.cov(emb, rowvar=False)``
    ``(D, D)`` (unbiased, ddof=1), as T2M/MLD ``calculate_activation_statistics``. Needs N >= 2."""
    x = _as_2d("emb", emb)
    if x.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {x.shape[0]}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _matrix_sqrt(a: np.ndarray) -> np.ndarray:
    """Principal matrix square root (``scipy.linalg.sqrtm``); a seam so tests can force the fallbacks."""
    return scipy.linalg.sqrtm(a)


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = FID_EPS,
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)::

        d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 @ sigma2))

    Follows ``calculate_frechet_distance_np`` (MLD ``mld/models/metrics/utils.py``; the
    Dougal J. Sutherland version used by pytorch-fid/TTUR):

    * ``covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)``;
    * if it has non-finite entries (singular product), add ``eps * I`` to both covariances and
      recompute (a warning is issued, where the reference prints a message);
    * if the result is complex: raise ``ValueError`` when the imaginary parts of its *diagonal*
      are not all within ``atol=1e-3`` of 0 (``np.allclose``; the message reports the largest
      imaginary magnitude of the whole matrix), otherwise keep the real part.

    The value is returned as is (it can be a tiny negative number for identical inputs).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different shapes: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(
            f"covariances must both be ({mu1.shape[0]}, {mu1.shape[0]}), got {sigma1.shape} and {sigma2.shape}"
        )

    diff = mu1 - mu2
    covmean = _matrix_sqrt(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _matrix_sqrt((sigma1 + offset) @ (sigma2 + offset))

    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real

    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(gen: np.ndarray, real: np.ndarray, eps: float = FID_EPS) -> float:
    """FID between generated and real embeddings ``(N1, D)``, ``(N2, D)``: the Frechet distance
    (:func:`frechet_distance`) between their Gaussian fits (:func:`gaussian_stats`).

    Argument order inside follows MLD ``tm2t.py``, which calls
    ``calculate_frechet_distance_np(gt_mu, gt_cov, mu, cov)`` (real first); the distance is
    symmetric up to rounding."""
    gen = _as_2d("gen", gen)
    real = _as_2d("real", real)
    if gen.shape[1] != real.shape[1]:
        raise ValueError(f"feature dimensions differ: {gen.shape[1]} vs {real.shape[1]}")
    mu_gen, sigma_gen = gaussian_stats(gen)
    mu_real, sigma_real = gaussian_stats(real)
    return frechet_distance(mu_real, sigma_real, mu_gen, sigma_gen, eps=eps)


# ---------------------------------------------------------------------------------------------
# Diversity and MultiModality
# ---------------------------------------------------------------------------------------------


def diversity(emb: np.ndarray, times: int = DIVERSITY_TIMES, rng: RngLike = None) -> float:
    """Diversity: mean L2 distance between ``times`` random pairs of embeddings ``(N, D)``.

    Two index sets are drawn independently, each ``rng.choice(N, times, replace=False)``, and
    paired position by position (an item can be paired with itself). MLD
    ``calculate_diversity_np`` / T2M ``calculate_diversity``; ``times`` = 300 in the protocol.

    Raises:
        ValueError: if ``N < times``; pass a smaller ``times`` for small evaluation sets.
    """
    x = _as_2d("emb", emb)
    n = x.shape[0]
    if times < 1:
        raise ValueError(f"times must be positive, got {times}")
    if n < times:
        raise ValueError(
            f"diversity draws {times} distinct items per index set but only N={n} embeddings were given; "
            f"pass a smaller `times` (at most {n})"
        )
    gen = _rng(rng)
    first = gen.choice(n, times, replace=False)
    second = gen.choice(n, times, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def multimodality(emb: np.ndarray, times: int = MM_NUM_TIMES, rng: RngLike = None) -> float:
    """MultiModality: mean L2 distance between pairs of generations for the same text.

    ``emb`` is ``(num_texts, repeats, D)`` (100 x 30 x 512 in the protocol). Two index sets of
    size ``times`` (10) are drawn from ``range(repeats)``, each ``rng.choice(repeats, times,
    replace=False)``, shared by every text; the result is the mean over texts and pairs of
    ``||emb[t, first[p]] - emb[t, second[p]]||``. MLD ``calculate_multimodality_np`` / T2M
    ``calculate_multimodality``.

    Raises:
        ValueError: if ``emb`` is not 3-D or ``repeats <= times`` (the reference asserts
            ``repeats > times``).
    """
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"emb must be (num_texts, repeats, dim), got shape {x.shape}")
    repeats = x.shape[1]
    if times < 1:
        raise ValueError(f"times must be positive, got {times}")
    if repeats <= times:
        raise ValueError(
            f"multimodality needs more repeats per text than pairs: repeats={repeats}, times={times}; "
            f"pass a smaller `times` (at most {repeats - 1})"
        )
    if x.shape[0] < 1:
        raise ValueError("multimodality needs at least one text")
    gen = _rng(rng)
    first = gen.choice(repeats, times, replace=False)
    second = gen.choice(repeats, times, replace=False)
    return float(np.linalg.norm(x[:, first] - x[:, second], axis=-1).mean())


# ---------------------------------------------------------------------------------------------
# One replication, and statistics over replications
# ---------------------------------------------------------------------------------------------


def tm2t_metrics(
    text_emb: np.ndarray,
    gen_emb: np.ndarray,
    real_emb: np.ndarray,
    rng: RngLike = None,
    group_size: int = R_PRECISION_GROUP_SIZE,
    top_k: int = R_PRECISION_TOP_K,
    diversity_times: int = DIVERSITY_TIMES,
) -> dict[str, float]:
    """All per-replication text-to-motion metrics, named and drawn as MLD ``TM2TMetrics.compute``.

    One permutation serves both the generated and the real R-precision/MM-Dist; then FID of
    generated vs real; then Diversity of generated, then of real (in that order from ``rng``).

    Returns keys ``Matching_score``, ``gt_Matching_score``, ``R_precision_top_{k}``,
    ``gt_R_precision_top_{k}`` (k = 1..top_k), ``FID``, ``Diversity``, ``gt_Diversity``.
    """
    text, gen = _paired(text_emb, gen_emb)
    _, real = _paired(text_emb, real_emb)
    g = _rng(rng)
    perm = g.permutation(text.shape[0])
    gen_rm = r_precision_and_matching(text, gen, group_size=group_size, top_k=top_k, perm=perm)
    real_rm = r_precision_and_matching(text, real, group_size=group_size, top_k=top_k, perm=perm)
    out = {"Matching_score": gen_rm["matching_score"], "gt_Matching_score": real_rm["matching_score"]}
    for k in range(1, top_k + 1):
        out[f"R_precision_top_{k}"] = gen_rm[f"top{k}"]
    for k in range(1, top_k + 1):
        out[f"gt_R_precision_top_{k}"] = real_rm[f"top{k}"]
    out["FID"] = fid(gen, real)
    out["Diversity"] = diversity(gen, diversity_times, rng=g)
    out["gt_Diversity"] = diversity(real, diversity_times, rng=g)
    return out


def confidence_interval(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% confidence half-width over replications: ``(mean, 1.96 * std / sqrt(n))`` with
    the population standard deviation (``np.std``, ddof=0), exactly as MotionLCM/T2M
    ``get_metric_statistics`` (there n = REPLICATION_TIMES = 20)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError("confidence_interval needs at least one value")
    return float(arr.mean()), float(CI_Z * arr.std() / math.sqrt(arr.size))


def summarize_replications(
    replications: Sequence[Mapping[str, float]],
) -> dict[str, dict[str, float | list[float]]]:
    """Per-metric statistics over replications: ``{name: {"mean", "conf_interval", "values"}}``.

    ``replications`` is one ``{metric: value}`` dict per replication; every dict must have the same
    keys. ``mean`` and ``conf_interval`` come from :func:`confidence_interval`; ``values`` keeps the
    per-replication values (MotionLCM's ``metrics.json`` stores them with ``/mean`` and
    ``/conf_interval``).
    """
    if len(replications) == 0:
        raise ValueError("summarize_replications needs at least one replication")
    names = list(replications[0].keys())
    for i, rep in enumerate(replications):
        if set(rep.keys()) != set(names):
            raise ValueError(f"replication {i} has metrics {sorted(rep.keys())}, replication 0 has {sorted(names)}")
    out: dict[str, dict[str, float | list[float]]] = {}
    for name in names:
        values = [float(rep[name]) for rep in replications]
        mean, ci = confidence_interval(values)
        out[name] = {"mean": mean, "conf_interval": ci, "values": values}
    return out
