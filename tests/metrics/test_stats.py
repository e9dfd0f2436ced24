"""FID/KID/PR/JS: parity with references (scipy sqrtm, explicit MMD, brute-force k-NN, scipy JS) and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gan3dkit.metrics.stats import (
    fid_from_features,
    fid_from_stats,
    histogram2d,
    js_divergence,
    kid,
    mean_cov,
    precision_recall,
)


def _features(rng, n, d=32, shift=0.0, scale=1.0):
    mix = rng.normal(size=(d, d)) / math.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix) * scale + shift


def _fid_scipy(a, b):
    """StyleGAN3's frechet_inception_distance.compute_fid formula (scipy sqrtm of the product)."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = np.cov(a, rowvar=False, bias=True)
    s2 = np.cov(b, rowvar=False, bias=True)
    covmean = scipy_linalg.sqrtm(s1 @ s2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - covmean * 2)))


@pytest.mark.parametrize("method", ["cov", "gram"])
@pytest.mark.parametrize("shift,scale,n,m", [(0.0, 1.0, 400, 300), (0.3, 1.0, 400, 300), (0.0, 1.7, 20, 300),
                                             (1.0, 0.5, 12, 9)])
def test_fid_matches_scipy_sqrtm_reference(shift, scale, n, m, method):
    rng = np.random.default_rng(0)
    a, b = _features(rng, n), _features(rng, m, shift=shift, scale=scale)
    ours, ref = fid_from_features(a, b, method=method), _fid_scipy(a, b)
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-8)
    assert fid_from_stats(*mean_cov(a), *mean_cov(b)) == pytest.approx(ref, rel=1e-6, abs=1e-8)


def test_mean_cov_is_population_covariance():
    x = np.random.default_rng(1).normal(size=(50, 4))
    mu, cov = mean_cov(x)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, bias=True), atol=1e-12)
    np.testing.assert_allclose(mu, x.mean(0))


def test_fid_zero_on_identical_sets_and_rises_with_noise():
    rng = np.random.default_rng(2)
    a = _features(rng, 500)
    assert abs(fid_from_features(a, a)) < 1e-8 and abs(fid_from_features(a, a, method="cov")) < 1e-8
    values = [fid_from_features(a, a + rng.normal(size=a.shape) * s) for s in (0.1, 0.3, 1.0)]
    assert 0 < values[0] < values[1] < values[2]


def test_fid_rejects_mismatched_stats():
    with pytest.raises(ValueError):
        fid_from_stats(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def _mmd2_unbiased(x, y):
    n, d = x.shape
    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) - 2 * kxy.mean()


def test_kid_single_full_subset_equals_explicit_unbiased_mmd():
    rng = np.random.default_rng(3)
    real, fake = _features(rng, 60), _features(rng, 60, shift=0.2)
    mean, std = kid(real, fake, num_subsets=1, max_subset_size=60)  # the subset is a permutation: MMD unchanged
    assert mean == pytest.approx(_mmd2_unbiased(fake, real), rel=1e-9)
    assert std == 0.0


def test_kid_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(4)
    a, b, c = _features(rng, 300), _features(rng, 300), _features(rng, 300, shift=0.5)
    same, _ = kid(a, b, num_subsets=20, max_subset_size=200)
    diff, _ = kid(a, c, num_subsets=20, max_subset_size=200)
    assert abs(same) < 0.2 * diff and diff > 0


def _pr_bruteforce(real, fake, k):
    def radii(m):
        d = np.linalg.norm(m[:, None] - m[None], axis=-1)
        return np.sort(d, axis=1)[:, k]

    def cover(m, r, probes):
        d = np.linalg.norm(probes[:, None] - m[None], axis=-1)
        return float((d <= r[None]).any(1).mean())

    return cover(real, radii(real), fake), cover(fake, radii(fake), real)


def test_precision_recall_matches_bruteforce_knn():
    rng = np.random.default_rng(5)
    real, fake = _features(rng, 80, d=8), _features(rng, 70, d=8, shift=0.4, scale=0.7)
    p, r = precision_recall(real, fake, k=3, batch=17)
    bp, br = _pr_bruteforce(real, fake, 3)
    assert (p, r) == pytest.approx((bp, br), abs=1e-12)
    assert 0 < p < 1 and 0 < r < 1


def test_precision_recall_extremes():
    rng = np.random.default_rng(6)
    a = _features(rng, 50, d=8)
    assert precision_recall(a, a, k=3) == (1.0, 1.0)
    assert precision_recall(a, a + 1000.0, k=3) == (0.0, 0.0)
    with pytest.raises(ValueError):
        precision_recall(a[:3], a, k=3)


def test_js_divergence_matches_scipy_and_bounds():
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = np.random.default_rng(7)
    p, q = rng.integers(0, 20, (16, 16)).astype(float), rng.integers(0, 20, (16, 16)).astype(float)
    q[0, :5] = 0  # zero cells on one side only
    for base in (2.0, math.e):
        assert js_divergence(p, q, base) == pytest.approx(distance.jensenshannon(p.ravel(), q.ravel(), base) ** 2,
                                                          rel=1e-10)
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)  # disjoint: 1 bit
    with pytest.raises(ValueError):
        js_divergence(np.zeros(4), np.ones(4))


def test_histogram2d_clips_outliers_into_edge_bins():
    x = np.array([-10.0, 0.0, 0.49, 10.0])
    y = np.array([0.0, 0.0, 0.0, 0.0])
    h = histogram2d(x, y, 4, (-1.0, 1.0), (-1.0, 1.0))
    assert h.sum() == 4 and h[0].sum() == 1 and h[-1].sum() == 1 and h[2].sum() == 2
