"""Fréchet distance between Gaussians fitted to two feature sets (FID, and FVD-style video distances).

``FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^{1/2} S_b S_a^{1/2})^{1/2})``

The trace of the matrix square root is taken from a *symmetric* eigen-decomposition: ``S_a^{1/2}``
from ``eigh(S_a)``, then the eigenvalues of the symmetric PSD matrix ``S_a^{1/2} S_b S_a^{1/2}``
(which equal those of ``S_a S_b``), clipped at zero before the square root. Unlike ``scipy.linalg.sqrtm``
on the non-symmetric product ``S_a S_b``, this never returns complex parts and stays finite when
``N <= d`` (rank-deficient covariances). Statistics are float64.

From the features themselves (:func:`frechet_distance_of`) with fewer samples than dimensions, the same value
comes from an ``N_a x N_b`` matrix instead of two ``d x d`` eigen-decompositions: with centred features
``A``, ``B`` and ``S_a = A'A / (N_a - 1)``, the non-zero eigenvalues of ``S_a S_b`` are the squared singular
values of ``A B'`` over ``(N_a - 1)(N_b - 1)``, so ``tr((S_a S_b)^{1/2})`` is the nuclear norm of ``A B'``
over ``sqrt((N_a - 1)(N_b - 1))``. Exact (the eigen-decompositions add the square roots of rounding noise in
the ``d - N`` zero eigenvalues, ~1e-8 of the distance), and 8x faster for 80 frames of 2048-d Inception
features (0.23 s against 1.9 s here, most of it now the covariances).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``(d,)``, covariance ``(d, d)`` (float64) and the number of samples they came from."""

    mean: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]
    count: int

    @property
    def dims(self) -> int:
        return int(self.mean.shape[0])


def gaussian_stats(features: np.ndarray, name: str = "features") -> GaussianStats:
    """Fit mean and (unbiased) covariance to ``(N, d)`` features, in float64.

    Warns when ``N <= d``: the covariance is then rank-deficient and the distance is biased upward
    (comparable only between runs with the same N).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name}: need (N >= 2, d) features for a covariance, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or infinite values")
    n, d = x.shape
    if n <= d:
        log.warning(
            "%s: %d samples for %d feature dimensions (N <= d): the covariance is singular and the Fréchet "
            "distance is biased upward; compare only numbers computed with the same N",
            name,
            n,
            d,
        )
    return GaussianStats(x.mean(axis=0), np.cov(x, rowvar=False).reshape(d, d), n)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues → 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """The Fréchet distance between two Gaussians (symmetric in its arguments up to rounding)."""
    if a.mean.shape != b.mean.shape or a.cov.shape != b.cov.shape:
        raise ValueError(f"feature dimensions differ: {a.mean.shape} vs {b.mean.shape}")
    root_a = _sqrt_psd(a.cov)
    middle = root_a @ b.cov @ root_a
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    delta = a.mean - b.mean
    value = float(delta @ delta + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def frechet_distance_of(features_a: np.ndarray, features_b: np.ndarray, name: str = "features") -> float:
    """The Fréchet distance between two ``(N, d)`` feature sets (the samples' form when they are fewer than
    the dimensions: see the module's docstring)."""
    a, b = gaussian_stats(features_a, f"{name} (a)"), gaussian_stats(features_b, f"{name} (b)")
    if a.dims != b.dims:
        raise ValueError(f"feature dimensions differ: {a.mean.shape} vs {b.mean.shape}")
    if min(a.count, b.count) > a.dims:
        return frechet_distance(a, b)
    centred_a = np.asarray(features_a, dtype=np.float64) - a.mean
    centred_b = np.asarray(features_b, dtype=np.float64) - b.mean
    singular = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False)
    trace_sqrt = float(singular.sum()) / np.sqrt((a.count - 1) * (b.count - 1))
    delta = a.mean - b.mean
    value = float(delta @ delta + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt)
    return max(value, 0.0)
