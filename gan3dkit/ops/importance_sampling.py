# SPDX-License-Identifier: Apache-2.0
"""Stratified and importance (inverse-CDF) depth sampling along rays, as in NeRF and EG3D's ImportanceRenderer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan3dkit.ops import _backend

SMOOTH_FLOOR = 0.01  # EG3D adds this to the smoothed coarse weights


def stratified_depths(
    ray_start: float | torch.Tensor,  # scalar or broadcastable to [N, M, 1]
    ray_end: float | torch.Tensor,  # scalar or broadcastable to [N, M, 1]
    n_samples: int,
    batch_shape: tuple[int, int],
    jitter: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:  # [N, M, n_samples, 1]
    """EG3D's coarse depths: ``linspace(start, end, S)`` plus, per sample, uniform jitter of one step.

    With ``step = (end - start) / (S - 1)``, sample ``i`` lies in ``[start + i*step, start + (i+1)*step)``. As in
    EG3D the jitter is added to every sample, so the last one may exceed ``ray_end`` by up to one step; samples
    are sorted along S.

    Args:
        ray_start: Near bound, a float or a tensor broadcastable to ``[N, M, 1]`` (per-ray bounds).
        ray_end: Far bound, same form as ``ray_start``; must be >= ``ray_start``.
        n_samples: Number of samples per ray ``S`` (>= 2).
        batch_shape: ``(N, M)``: batch size and rays per batch element.
        jitter: Add the uniform jitter (False: plain linspace, used at evaluation).
        generator: Random generator for the jitter.
        device: Device of the result (default: that of a tensor bound, else CPU).
        dtype: Dtype of the result.

    Returns:
        Depths ``[N, M, S, 1]``.
    """
    if n_samples < 2:
        raise ValueError(f"stratified_depths: n_samples must be >= 2, got {n_samples}.")
    for bound in (ray_start, ray_end):
        if isinstance(bound, torch.Tensor) and device is None:
            device = bound.device
    n, m = batch_shape
    start = torch.as_tensor(ray_start, device=device, dtype=dtype).expand(n, m, 1)  # [N, M, 1]
    end = torch.as_tensor(ray_end, device=device, dtype=dtype).expand(n, m, 1)  # [N, M, 1]
    if bool((end < start).any()):
        raise ValueError("stratified_depths: ray_end must be >= ray_start for every ray.")
    t = torch.linspace(0.0, 1.0, n_samples, device=device, dtype=dtype)  # [S]
    depths = start[..., None] + (end - start)[..., None] * t[:, None]  # [N, M, S, 1]
    if jitter:
        step = ((end - start) / (n_samples - 1))[..., None]  # [N, M, 1, 1]
        u = torch.rand((n, m, n_samples, 1), generator=generator, device=device, dtype=dtype)
        depths = depths + u * step
    return depths


def smooth_weights(weights: torch.Tensor) -> torch.Tensor:  # [..., B] -> [..., B]
    """EG3D's smoothing of coarse weights before importance sampling.

    ``max_pool1d(kernel 2, stride 1, padding 1)`` (length B+1), then ``avg_pool1d(kernel 2, stride 1)`` (back to
    length B), then ``+ 0.01``: each entry becomes the mean of the maxima of its neighbouring pairs.

    Args:
        weights: Coarse weights ``[..., B]`` (squeeze the marcher's trailing singleton axis first).

    Returns:
        Smoothed weights ``[..., B]``.
    """
    if weights.ndim < 1 or weights.shape[-1] < 1:
        raise ValueError(f"smooth_weights: weights must be [..., B] with B >= 1, got {tuple(weights.shape)}.")
    flat = weights.reshape(-1, 1, weights.shape[-1])  # [R, 1, B]
    flat = F.max_pool1d(flat, kernel_size=2, stride=1, padding=1)  # [R, 1, B+1]
    flat = F.avg_pool1d(flat, kernel_size=2, stride=1)  # [R, 1, B]
    return flat.reshape(weights.shape) + SMOOTH_FLOOR


def sample_pdf(
    bins: torch.Tensor,  # [R, B+1] bin edges, sorted
    weights: torch.Tensor,  # [R, B] non-negative
    n_importance: int,
    det: bool = False,
    eps: float = 1e-5,
    generator: torch.Generator | None = None,
    impl: str = "auto",
) -> torch.Tensor:  # [R, n_importance]
    """Draw samples from the piecewise-constant density given by ``weights`` over ``bins`` (inverse CDF).

    ``pdf = (weights + eps) / sum``; ``cdf`` starts at 0; each ``u`` (uniform, or ``linspace(0, 1)`` if ``det``)
    is mapped linearly inside the bin whose CDF interval contains it (bins with CDF width below ``eps`` map to
    their left edge). The result is detached: like EG3D, callers treat importance depths as constants.
    EG3D quirk: its renderer passes the S-1 depth midpoints with ``smooth_weights(w)[:, 1:-1]`` (S-3 entries), so
    its last bin edge is never used; reproduce that with ``bins = z_mid[:, :-1]``.

    Args:
        bins: Bin edges ``[R, B+1]``, non-decreasing.
        weights: Bin weights ``[R, B]``, non-negative.
        n_importance: Number of samples per row.
        det: Use evenly spaced ``u`` (deterministic, sorted output) instead of uniform random ``u``.
        eps: Added to the weights and used as the minimum CDF width, as in EG3D (1e-5).
        generator: Random generator for ``u`` when ``det`` is False.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        Samples ``[R, n_importance]`` inside ``[bins[:, 0], bins[:, -1]]``.
    """
    if bins.ndim != 2 or weights.ndim != 2 or bins.shape != (weights.shape[0], weights.shape[1] + 1):
        raise ValueError(
            f"sample_pdf: bins must be [R, B+1] and weights [R, B], got {tuple(bins.shape)} and {tuple(weights.shape)}."
        )
    if n_importance < 1:
        raise ValueError(f"sample_pdf: n_importance must be >= 1, got {n_importance}.")
    with torch.no_grad():
        if _backend.resolve_impl("sample_pdf", impl, bins) == "compiled" and weights.shape[0] > 0:
            return _sample_pdf_compiled(bins.detach(), weights.detach(), n_importance, det, eps, generator)
        return _sample_pdf_ref(bins.detach(), weights.detach(), n_importance, det, eps, generator)


def _draw_u(rows: int, n: int, det: bool, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    if det:
        return torch.linspace(0.0, 1.0, n, device=like.device, dtype=like.dtype).expand(rows, n)
    return torch.rand((rows, n), generator=generator, device=like.device, dtype=like.dtype)


def _sample_pdf_compiled(
    bins: torch.Tensor, weights: torch.Tensor, n_importance: int, det: bool, eps: float, generator
) -> torch.Tensor:
    """Compiled twin of ``_sample_pdf_ref``; draws ``u`` the same way, so both consume the same random stream."""
    cdf = _cdf(weights, eps, bins.dtype)  # the reference's torch ops: u on a CDF value picks the same bin
    u = _draw_u(weights.shape[0], n_importance, det, generator, bins).contiguous()
    return _backend.extension().sample_pdf_fwd(bins.contiguous(), cdf.contiguous(), u, float(eps))


def _cdf(weights: torch.Tensor, eps: float, dtype: torch.dtype) -> torch.Tensor:  # [R, B] -> [R, B+1]
    pdf = weights.to(dtype) + eps
    pdf = pdf / pdf.sum(dim=-1, keepdim=True)
    return torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)


def _sample_pdf_ref(
    bins: torch.Tensor,
    weights: torch.Tensor,
    n_importance: int,
    det: bool,
    eps: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Reference implementation; inputs already validated."""
    rows, n_bins = weights.shape
    cdf = _cdf(weights, eps, bins.dtype)  # [R, B+1]
    u = _draw_u(rows, n_importance, det, generator, bins).contiguous()
    upper = torch.searchsorted(cdf.contiguous(), u, right=True)  # first edge with cdf > u
    lo = (upper - 1).clamp(min=0)
    hi = upper.clamp(max=n_bins)
    cdf_lo, cdf_hi = cdf.gather(1, lo), cdf.gather(1, hi)
    bin_lo, bin_hi = bins.gather(1, lo), bins.gather(1, hi)
    width = cdf_hi - cdf_lo
    width = torch.where(width < eps, torch.ones_like(width), width)
    return bin_lo + (u - cdf_lo) / width * (bin_hi - bin_lo)


def unify_samples(
    depths1: torch.Tensor,  # [N, M, S1, 1]
    colors1: torch.Tensor,  # [N, M, S1, C]
    densities1: torch.Tensor,  # [N, M, S1, 1]
    depths2: torch.Tensor,  # [N, M, S2, 1]
    colors2: torch.Tensor,  # [N, M, S2, C]
    densities2: torch.Tensor,  # [N, M, S2, 1]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # [N, M, S1+S2, 1], [N, M, S1+S2, C], [N, M, S1+S2, 1]
    """Merge coarse and fine samples into one list sorted by depth, keeping depth/colour/density triples together.

    Args:
        depths1: Depths of the first set ``[N, M, S1, 1]``.
        colors1: Colours of the first set ``[N, M, S1, C]``.
        densities1: Densities of the first set ``[N, M, S1, 1]``.
        depths2: Depths of the second set ``[N, M, S2, 1]``.
        colors2: Colours of the second set ``[N, M, S2, C]``.
        densities2: Densities of the second set ``[N, M, S2, 1]``.

    Returns:
        ``(depths, colors, densities)`` with ``S1 + S2`` samples sorted by depth along axis 2.
    """
    for d, c, s in ((depths1, colors1, densities1), (depths2, colors2, densities2)):
        if d.ndim != 4 or d.shape[-1] != 1 or s.shape != d.shape or c.shape[:3] != d.shape[:3]:
            raise ValueError(
                f"unify_samples: expected depths/densities [N, M, S, 1] and colors [N, M, S, C], got "
                f"{tuple(d.shape)}, {tuple(s.shape)}, {tuple(c.shape)}."
            )
    depths = torch.cat([depths1, depths2], dim=2)
    colors = torch.cat([colors1, colors2], dim=2)
    densities = torch.cat([densities1, densities2], dim=2)
    order = torch.argsort(depths, dim=2)  # [N, M, S, 1]
    depths = depths.gather(2, order)
    colors = colors.gather(2, order.expand(-1, -1, -1, colors.shape[-1]))
    densities = densities.gather(2, order)
    return depths, colors, densities
