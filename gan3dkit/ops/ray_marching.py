# SPDX-License-Identifier: Apache-2.0
"""Volume rendering along rays as in EG3D's ``MipRayMarcher2`` (midpoint quadrature, softplus density)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from gan3dkit.ops import _backend

TRANSMITTANCE_EPS = 1e-10
DENSITY_SHIFT = 1.0  # sigma = softplus(sigma_raw - 1)


def mip_ray_march(
    colors: torch.Tensor,  # [N, M, S, C]
    densities: torch.Tensor,  # [N, M, S, 1], raw (before the softplus)
    depths: torch.Tensor,  # [N, M, S, 1], sorted along S
    white_back: bool = False,
    clamp_mode: str = "softplus",
    density_noise: float = 0.0,
    generator: torch.Generator | None = None,
    impl: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # [N, M, C], [N, M, 1], [N, M, S-1, 1]
    """Composite colour, depth and weights along each ray, exactly as EG3D's ``MipRayMarcher2``.

    With per-interval midpoints ``c_i, s_i, z_i`` of ``colors, densities, depths`` (S-1 intervals) and
    ``delta_i = depths[i+1] - depths[i]``:

    - ``sigma_i = softplus(s_i - 1)``, ``alpha_i = 1 - exp(-sigma_i * delta_i)``;
    - exclusive transmittance ``T_i = prod_{j<i} (1 - alpha_j + 1e-10)``, ``w_i = alpha_i * T_i``;
    - ``rgb = sum_i w_i c_i``; ``depth = sum_i w_i z_i / sum_i w_i``, NaN (empty ray) -> +inf, then clamped to
      ``[depths.min(), depths.max()]`` taken over the whole tensor (EG3D clamps to the global range, not per ray);
    - order as in EG3D: first ``white_back`` adds ``1 - sum_i w_i``, then ``rgb = rgb * 2 - 1``. So an empty ray
      gives -1 (black) without and +1 (white) with ``white_back``, for colours in [0, 1].

    Args:
        colors: Per-sample colours/features ``[N, M, S, C]``, typically in [0, 1].
        densities: Per-sample raw densities ``[N, M, S, 1]`` (the decoder output, before activation).
        depths: Per-sample depths ``[N, M, S, 1]``, non-decreasing along S.
        white_back: Composite onto a white background (EG3D uses it for ShapeNet).
        clamp_mode: Density activation; only ``"softplus"`` (as in EG3D).
        density_noise: If > 0, add ``N(0, density_noise^2)`` noise to the raw densities first (EG3D does this
            in ``run_model``, on the same raw densities).
        generator: Random generator for the density noise.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        ``(rgb [N, M, C] in about [-1, 1], depth [N, M, 1], weights [N, M, S-1, 1])``.
    """
    if clamp_mode != "softplus":
        raise ValueError(f"mip_ray_march: only clamp_mode='softplus' is supported (as in EG3D), got {clamp_mode!r}.")
    if colors.ndim != 4 or colors.shape[2] < 2:
        raise ValueError(f"mip_ray_march: colors must be [N, M, S>=2, C], got {tuple(colors.shape)}.")
    expected = (*colors.shape[:3], 1)
    if tuple(densities.shape) != expected or tuple(depths.shape) != expected:
        raise ValueError(
            f"mip_ray_march: densities {tuple(densities.shape)} and depths {tuple(depths.shape)} must be {expected}."
        )
    if density_noise < 0:
        raise ValueError(f"mip_ray_march: density_noise must be >= 0, got {density_noise}.")
    if density_noise > 0:
        noise = torch.randn(densities.shape, generator=generator, device=densities.device, dtype=densities.dtype)
        densities = densities + noise * density_noise
    if not depths.requires_grad and _backend.resolve_impl("mip_ray_march", impl, colors) == "compiled":
        return _mip_ray_march_compiled(colors, densities, depths, white_back)
    if impl == "compiled" and depths.requires_grad:
        raise NotImplementedError("mip_ray_march: the compiled kernel treats depths as constants; use impl='ref'.")
    return _mip_ray_march_ref(colors, densities, depths, white_back)


class _MipRayMarch(torch.autograd.Function):
    """Compiled marcher: gradients for colours and densities (depths are constants), first order only."""

    @staticmethod
    def forward(ctx, colors, densities, depths, white_back, dmin, dmax):  # [R, S, C], [R, S], [R, S]
        ext = _backend.extension()
        rgb, depth, weights = ext.ray_march_fwd(colors, densities, depths, white_back, dmin, dmax)
        ctx.save_for_backward(colors, densities, depths)
        ctx.args = (white_back, dmin, dmax)
        return rgb, depth, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, g_rgb, g_depth, g_weights):
        colors, densities, depths = ctx.saved_tensors
        g_rgb, g_depth, g_weights = (
            torch.zeros_like(t) if g is None else g.contiguous()
            for g, t in ((g_rgb, colors[:, 0]), (g_depth, depths[:, 0]), (g_weights, depths[:, 1:]))
        )
        g_colors, g_dens = _backend.extension().ray_march_bwd(
            g_rgb, g_depth, g_weights, colors, densities, depths, *ctx.args
        )
        return g_colors, g_dens, None, None, None, None


def _mip_ray_march_compiled(
    colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, white_back: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compiled twin of ``_mip_ray_march_ref`` (same outputs; an empty ray gets no NaN gradient)."""
    n, m, s, c = colors.shape
    dtype = torch.promote_types(torch.promote_types(colors.dtype, densities.dtype), depths.dtype)
    if m * n == 0:
        return _mip_ray_march_ref(colors, densities, depths, white_back)
    dmin, dmax = (float(v) for v in torch.aminmax(depths.detach()))
    rgb, depth, weights = _MipRayMarch.apply(
        colors.to(dtype).reshape(n * m, s, c).contiguous(),
        densities.to(dtype).reshape(n * m, s).contiguous(),
        depths.to(dtype).reshape(n * m, s).contiguous(),
        bool(white_back),
        dmin,
        dmax,
    )
    return rgb.reshape(n, m, c), depth.reshape(n, m, 1), weights.reshape(n, m, s - 1, 1)


def _midpoints(t: torch.Tensor) -> torch.Tensor:  # [N, M, S, K] -> [N, M, S-1, K]
    return 0.5 * (t[:, :, :-1] + t[:, :, 1:])


def _mip_ray_march_ref(
    colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, white_back: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference implementation; inputs already validated."""
    deltas = depths[:, :, 1:] - depths[:, :, :-1]  # [N, M, S-1, 1]
    colors_mid = _midpoints(colors)  # [N, M, S-1, C]
    sigma = F.softplus(_midpoints(densities) - DENSITY_SHIFT)  # [N, M, S-1, 1]
    depths_mid = _midpoints(depths)  # [N, M, S-1, 1]

    alpha = 1.0 - torch.exp(-sigma * deltas)  # [N, M, S-1, 1]
    survive = 1.0 - alpha + TRANSMITTANCE_EPS
    transmittance = torch.cumprod(torch.cat([torch.ones_like(survive[:, :, :1]), survive[:, :, :-1]], dim=2), dim=2)
    weights = alpha * transmittance  # [N, M, S-1, 1]

    rgb = (weights * colors_mid).sum(dim=2)  # [N, M, C]
    weight_total = weights.sum(dim=2)  # [N, M, 1]
    depth = (weights * depths_mid).sum(dim=2) / weight_total  # [N, M, 1]
    depth = torch.nan_to_num(depth, nan=float("inf"))
    if depths.numel() > 0:  # no rays: nothing to clamp (min/max of an empty tensor is undefined)
        depth = torch.clamp(depth, depths.min(), depths.max())
    if white_back:
        rgb = rgb + 1.0 - weight_total
    rgb = rgb * 2.0 - 1.0
    return rgb, depth, weights
