"""Distribution statistics on feature sets: FID, KID, precision/recall (k-NN), histograms and JS divergence."""

from __future__ import annotations

import math

import numpy as np
import torch


def mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # [N, D] -> [D], [D, D]
    """Mean and covariance in float64, with the 1/N (population) normalisation of StyleGAN's FeatureStats."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {x.shape}")
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, xc.T @ xc / len(x)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2) (symmetric,
    same spectrum as S1 S2), which equals StyleGAN's `scipy.linalg.sqrtm(S1 @ S2)` trace without its complex
    round-off; see the parity test.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"FID: mismatched statistics {mu1.shape}, {mu2.shape}, {s1.shape}, {s2.shape}")
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())
    return float(np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def fid_from_features(real: np.ndarray, fake: np.ndarray, method: str = "auto") -> float:
    """FID between two feature sets [N, D] and [M, D] (same value as `fid_from_stats` of their statistics).

    method "gram" uses the centred features A [N, D], B [M, D] directly: S1 = A'A / N, S2 = B'B / M, and the nonzero
    eigenvalues of S1 S2 are the squared singular values of A B' / sqrt(N M), so tr((S1 S2)^(1/2)) is the nuclear
    norm of A B' / sqrt(N M) -- exact, and far cheaper than 2048^3 eigen-decompositions when N or M < D.
    "cov" goes through the D x D covariances; "auto" picks the cheaper by a flop estimate.
    """
    a, b = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID needs feature sets [N >= 2, D] and [M >= 2, D], got {a.shape} and {b.shape}")
    (n, d), m = a.shape, len(b)
    if method == "auto":
        gram_cost = n * m * d + min(n, m) ** 2 * max(n, m)
        cov_cost = (n + m) * d * d + 30 * d**3
        method = "gram" if gram_cost < cov_cost else "cov"
    if method == "cov":
        return fid_from_stats(*mean_cov(a), *mean_cov(b))
    if method != "gram":
        raise ValueError(f"method must be auto, gram or cov, got {method!r}")
    mu1, mu2 = a.mean(0), b.mean(0)
    ac, bc = a - mu1, b - mu2
    nuclear = float(np.linalg.svd(ac @ bc.T, compute_uv=False).sum()) / np.sqrt(n * m)
    return float(np.square(mu1 - mu2).sum() + np.square(ac).sum() / n + np.square(bc).sum() / m - 2.0 * nuclear)


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (StyleGAN3 `compute_kid`): unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3.

    Averaged over `num_subsets` random subsets of m = min(N, M, max_subset_size) samples each (without replacement).
    Returns (mean, std over subsets); StyleGAN reports the mean.
    """
    real_t = torch.as_tensor(np.asarray(real), dtype=torch.float64)  # torch: honours --threads (numpy's OpenBLAS
    fake_t = torch.as_tensor(np.asarray(fake), dtype=torch.float64)  # spins badly on busy shared cores)
    n = real_t.shape[1]
    m = min(len(real_t), len(fake_t), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 generated samples")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        x = fake_t[torch.from_numpy(rng.choice(len(fake_t), m, replace=False))]
        y = real_t[torch.from_numpy(rng.choice(len(real_t), m, replace=False))]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        values.append(float(((a.sum() - a.diagonal().sum()) / (m - 1) - b.sum() * 2 / m) / m))
    return float(np.mean(values)), float(np.std(values))


def _kth_radii(manifold: torch.Tensor, k: int, batch: int) -> torch.Tensor:  # [N, D] -> [N]
    radii = [torch.cdist(rows, manifold).kthvalue(k + 1, dim=1).values for rows in manifold.split(batch)]
    return torch.cat(radii)  # k + 1: every point is its own nearest neighbour at distance 0


def _coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, batch: int) -> float:
    hits = [(torch.cdist(rows, manifold) <= radii[None]).any(dim=1) for rows in probes.split(batch)]
    covered = torch.cat(hits)
    return int(covered.sum()) / len(covered)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, batch: int = 10000) -> tuple[float, float]:
    """Improved precision/recall (Kynkaanniemi et al.; StyleGAN3 `compute_pr`) with k-NN radii.

    precision = share of fakes inside some real sample's k-NN ball (radius = distance to its k-th real neighbour);
    recall = share of reals inside some fake sample's k-NN ball. Distances in float32 (StyleGAN uses float16).
    """
    r = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    if len(r) <= k or len(f) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and generated samples "
                         f"(got {len(r)}, {len(f)})")
    precision = _coverage(r, _kth_radii(r, k, batch), f, batch)
    recall = _coverage(f, _kth_radii(f, k, batch), r, batch)
    return precision, recall


def histogram2d(x: np.ndarray, y: np.ndarray, bins: int, x_range: tuple[float, float],
                y_range: tuple[float, float]) -> np.ndarray:  # [N], [N] -> [bins, bins] counts
    """2-D histogram on `bins` x `bins` equal cells; values outside the ranges are clipped into the edge cells."""
    x = np.clip(np.asarray(x, np.float64), *x_range)
    y = np.clip(np.asarray(y, np.float64), *y_range)
    counts, _, _ = np.histogram2d(x, y, bins=bins, range=[list(x_range), list(y_range)])
    return counts


def js_divergence(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """Jensen-Shannon divergence of two histograms (normalised here): 0.5 KL(p||m) + 0.5 KL(q||m), m = (p + q) / 2.

    0 log 0 = 0, so no epsilon is needed; in bits (base 2) it lies in [0, 1]. Equals
    `scipy.spatial.distance.jensenshannon(p, q, base) ** 2`.
    """
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise ValueError("JS divergence needs two non-negative histograms of the same shape with positive mass")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log(a[nz] / m[nz])).sum())

    return (0.5 * kl(p) + 0.5 * kl(q)) / math.log(base)
