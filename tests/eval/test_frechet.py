"""Fréchet distance: exact identities, closed forms, agreement with pytorch-fid, and the N <= d regime."""

import logging

import numpy as np
import pytest

from v2v.eval.frechet import GaussianStats, frechet_distance, frechet_distance_of, gaussian_stats


def random_stats(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> GaussianStats:
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return gaussian_stats(rng.normal(size=(n, d)) @ mixing + shift)


def test_distance_to_itself_is_zero_and_distance_is_symmetric() -> None:
    rng = np.random.default_rng(0)
    a, b = random_stats(rng, 500, 64), random_stats(rng, 500, 64, shift=0.3)
    assert frechet_distance(a, a) <= 1e-9 * np.trace(a.cov)
    assert frechet_distance(a, b) > 1.0
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_diagonal_covariances_match_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    d = 32
    var_a, var_b = rng.uniform(0.1, 4.0, d), rng.uniform(0.1, 4.0, d)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    a, b = GaussianStats(mu_a, np.diag(var_a), 100), GaussianStats(mu_b, np.diag(var_b), 100)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    "n, d", [(600, 256), pytest.param(4000, 2048, marks=pytest.mark.slow, id="full-scale")]
)  # full scale: Inception's 2048 dimensions (~40 s for the matrix square roots)
def test_agrees_with_pytorch_fid(n: int, d: int) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (rng.normal(size=(n, d)) * 1.1 + 0.05).astype(np.float32)
    a, b = gaussian_stats(x), gaussian_stats(y)
    ours = frechet_distance(a, b)
    theirs = calculate_frechet_distance(a.mean, a.cov, b.mean, b.cov)
    assert ours == pytest.approx(float(theirs), rel=1e-6)


def test_fewer_samples_than_dimensions_is_finite_correct_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 100)), rng.normal(size=(20, 100)) + 1.0
    with caplog.at_level(logging.WARNING):
        value = frechet_distance_of(x, y)
    assert np.isfinite(value) and value > 0
    assert "N <= d" in caplog.text
    # rank-deficient but exact: against a direct computation through the product's eigenvalues
    a, b = gaussian_stats(x), gaussian_stats(y)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvals(a.cov @ b.cov).real, 0, None)).sum()
    direct = np.sum((a.mean - b.mean) ** 2) + np.trace(a.cov) + np.trace(b.cov) - 2 * trace_sqrt
    assert value == pytest.approx(direct, rel=1e-6)
    assert frechet_distance_of(x, x) == pytest.approx(0.0, abs=1e-9 * np.trace(a.cov))


def test_the_samples_form_equals_the_covariance_form() -> None:
    """Fewer samples than dimensions (different counts on each side): the nuclear norm of A B' gives the same
    distance as the d x d eigen-decompositions (which add the square roots of the rounding noise in the d - N
    zero eigenvalues: ~1e-8 of the distance)."""
    rng = np.random.default_rng(5)
    mixing = rng.normal(size=(300, 300)) / 10
    x, y = rng.normal(size=(40, 300)) @ mixing, rng.normal(size=(25, 300)) @ mixing + 0.3
    by_covariance = frechet_distance(gaussian_stats(x), gaussian_stats(y))
    assert frechet_distance_of(x, y) == pytest.approx(by_covariance, rel=1e-6)
    assert frechet_distance_of(y, x) == pytest.approx(by_covariance, rel=1e-6)


def test_bad_features_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        gaussian_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(gaussian_stats(np.eye(3)), gaussian_stats(np.eye(4)))
