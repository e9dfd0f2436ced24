# SPDX-License-Identifier: Apache-2.0
"""Tri-plane projection, bilinear feature sampling (EG3D's plane-axis quirk or corrected axes), plus the fused field."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from gan3dkit.ops import _backend

# Each plane is a 3x3 matrix P; a point p (row vector) lands at the first two entries of p @ inverse(P).
_PLANE_MATRICES: dict[str, list[list[list[float]]]] = {
    # EG3D as released: planes (x, y), (x, z), (z, x). No plane sees (y, z); kept for checkpoint compatibility.
    "eg3d": [
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
    ],
    # Corrected (as in PanoHead): planes (x, y), (x, z), (y, z).
    "xy_xz_yz": [
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    ],
}
_ALIASES = {"eg3d_compat": "eg3d"}
PLANE_AXES_MODES: tuple[str, ...] = ("eg3d", "eg3d_compat", "xy_xz_yz")


def generate_planes(
    plane_axes: str = "eg3d", device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:  # [3, 3, 3]
    """The three plane matrices for a plane-axis mode.

    Which world axes each plane sees, as (grid u = feature-map width axis, grid v = height axis):

    - ``"eg3d"`` (alias ``"eg3d_compat"``), EG3D's released behaviour: plane 0 = (x, y), plane 1 = (x, z),
      plane 2 = (z, x). Planes 1 and 2 both see the (x, z) pair (transposed); no plane sees (y, z).
    - ``"xy_xz_yz"``, the corrected layout: plane 0 = (x, y), plane 1 = (x, z), plane 2 = (y, z).

    Args:
        plane_axes: ``"eg3d"``, ``"eg3d_compat"`` or ``"xy_xz_yz"``. Must match the checkpoint being used.
        device: Device of the result.
        dtype: Dtype of the result.

    Returns:
        Plane matrices ``[3, 3, 3]``.
    """
    mode = _ALIASES.get(plane_axes, plane_axes)
    if mode not in _PLANE_MATRICES:
        raise ValueError(f"generate_planes: plane_axes must be one of {PLANE_AXES_MODES}, got {plane_axes!r}.")
    return torch.tensor(_PLANE_MATRICES[mode], device=device, dtype=dtype)


def project_onto_planes(
    planes: torch.Tensor,  # [n_planes, 3, 3]
    coords: torch.Tensor,  # [N, M, 3]
) -> torch.Tensor:  # [N * n_planes, M, 2], index n * n_planes + p
    """Project points onto each plane: first two entries of ``coords @ inverse(plane)``.

    Args:
        planes: Plane matrices ``[n_planes, 3, 3]`` from ``generate_planes``.
        coords: Points ``[N, M, 3]`` (already scaled to the plane's [-1, 1] range by the caller if needed).

    Returns:
        2-D plane coordinates ``[N * n_planes, M, 2]``, batch-major (row ``n * n_planes + p``).
    """
    if planes.ndim != 3 or planes.shape[1:] != (3, 3):
        raise ValueError(f"project_onto_planes: planes must be [n_planes, 3, 3], got {tuple(planes.shape)}.")
    if coords.ndim != 3 or coords.shape[-1] != 3:
        raise ValueError(f"project_onto_planes: coords must be [N, M, 3], got {tuple(coords.shape)}.")
    inv = torch.linalg.inv(planes.to(coords.dtype))  # [P, 3, 3]
    projected = torch.einsum("nmi,pij->npmj", coords, inv)  # [N, P, M, 3]
    return projected[..., :2].reshape(coords.shape[0] * planes.shape[0], coords.shape[1], 2)


def sample_from_planes(
    plane_axes_matrices: torch.Tensor,  # [n_planes, 3, 3]
    plane_features: torch.Tensor,  # [N, n_planes, C, H, W]
    coords: torch.Tensor,  # [N, M, 3] in world units
    box_warp: float = 1.0,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    impl: str = "auto",
) -> torch.Tensor:  # [N, n_planes, M, C]
    """Sample per-plane features at 3-D points; the caller averages over planes (EG3D uses ``mean(1)``).

    Points are scaled by ``2 / box_warp`` (the box ``[-box_warp/2, box_warp/2]^3`` maps to ``[-1, 1]^3``), projected
    with ``project_onto_planes`` and read with ``F.grid_sample(align_corners=False)``: the first projected
    coordinate indexes the feature width (W), the second the height (H). See ``generate_planes`` for which axes
    each plane sees. With ``padding_mode="zeros"``, points outside the box read 0 on planes where they fall out.

    Args:
        plane_axes_matrices: Plane matrices ``[n_planes, 3, 3]`` (``generate_planes``).
        plane_features: Feature planes ``[N, n_planes, C, H, W]``.
        coords: Query points ``[N, M, 3]``.
        box_warp: Side length of the cube covered by the planes, in world units.
        mode: ``F.grid_sample`` interpolation mode (``"bilinear"`` or ``"nearest"``).
        padding_mode: ``F.grid_sample`` padding mode (``"zeros"``, ``"border"`` or ``"reflection"``).
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        Features ``[N, n_planes, M, C]``.
    """
    if plane_features.ndim != 5:
        raise ValueError(
            f"sample_from_planes: plane_features must be [N, P, C, H, W], got {tuple(plane_features.shape)}."
        )
    n, n_planes, c, h, w = plane_features.shape
    if coords.ndim != 3 or coords.shape[0] != n or coords.shape[2] != 3:
        raise ValueError(f"sample_from_planes: coords must be [N={n}, M, 3], got {tuple(coords.shape)}.")
    if plane_axes_matrices.shape != (n_planes, 3, 3):
        raise ValueError(
            f"sample_from_planes: plane_axes_matrices must be [{n_planes}, 3, 3] (one per feature plane), "
            f"got {tuple(plane_axes_matrices.shape)}."
        )
    if box_warp <= 0:
        raise ValueError(f"sample_from_planes: box_warp must be > 0, got {box_warp}.")
    _backend.resolve_impl("sample_from_planes", impl, plane_features)  # validates impl; no separate kernel
    m = coords.shape[1]
    grid = project_onto_planes(plane_axes_matrices, coords * (2.0 / box_warp)).unsqueeze(1)  # [N*P, 1, M, 2]
    out = F.grid_sample(
        plane_features.reshape(n * n_planes, c, h, w),
        grid.to(plane_features.dtype),
        mode=mode,
        padding_mode=padding_mode,
        align_corners=False,
    )  # [N*P, C, 1, M]
    return out.reshape(n, n_planes, c, m).permute(0, 1, 3, 2)


#: MipNeRF-style widening of the colour sigmoid used by EG3D's OSG decoder.
COLOR_EPS = 0.001


def triplane_decode(
    plane_axes_matrices: torch.Tensor,  # [P, 3, 3]
    plane_features: torch.Tensor,  # [N, P, C, H, W]
    coords: torch.Tensor,  # [N, M, 3] world units
    w1: torch.Tensor,  # [H1, C] effective weight of FC1 (gain applied)
    b1: torch.Tensor,  # [H1]
    w2: torch.Tensor,  # [1 + O, H1] effective weight of FC2
    b2: torch.Tensor,  # [1 + O]
    box_warp: float = 1.0,
    color_eps: float = COLOR_EPS,
    impl: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:  # rgb [N, M, O], sigma [N, M, 1]
    """The whole tri-plane field of EG3D in one op: sample, average the planes, run the OSG decoder MLP.

    Equals ``x = sample_from_planes(...).mean(1)`` (bilinear, zeros padding), ``h = softplus(x @ w1.T + b1)``,
    ``y = h @ w2.T + b2``, ``sigma = y[..., :1]`` (raw) and ``rgb = sigmoid(y[..., 1:]) * (1 + 2 eps) - eps``.
    The compiled kernel keeps every intermediate in a per-thread block buffer (no full-size temporaries) and
    recomputes the block in the backward pass. First order only (its backward is ``once_differentiable``).

    Args:
        plane_axes_matrices: Plane matrices ``[P, 3, 3]`` (``generate_planes``).
        plane_features: Feature planes ``[N, P, C, H, W]``.
        coords: Query points ``[N, M, 3]``.
        w1: FC1 weight ``[H1, C]`` as applied (``weight * weight_gain``).
        b1: FC1 bias ``[H1]`` as applied.
        w2: FC2 weight ``[1 + O, H1]`` as applied; output 0 is the density.
        b2: FC2 bias ``[1 + O]`` as applied.
        box_warp: Side length of the cube covered by the planes.
        color_eps: Sigmoid widening (EG3D: 0.001).
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        ``(rgb [N, M, O], sigma [N, M, 1])``.
    """
    if plane_features.ndim != 5 or coords.ndim != 3 or coords.shape[0] != plane_features.shape[0]:
        raise ValueError(
            f"triplane_decode: plane_features must be [N, P, C, H, W] and coords [N, M, 3], got "
            f"{tuple(plane_features.shape)} and {tuple(coords.shape)}."
        )
    c = plane_features.shape[2]
    if w1.ndim != 2 or w1.shape[1] != c or b1.shape != (w1.shape[0],):
        raise ValueError(
            f"triplane_decode: w1 must be [H1, {c}] and b1 [H1], got {tuple(w1.shape)}, {tuple(b1.shape)}."
        )
    if w2.ndim != 2 or w2.shape[1] != w1.shape[0] or w2.shape[0] < 2 or b2.shape != (w2.shape[0],):
        raise ValueError(
            f"triplane_decode: w2 must be [1+O, H1] and b2 [1+O], got {tuple(w2.shape)}, {tuple(b2.shape)}."
        )
    if _backend.resolve_impl("triplane_decode", impl, plane_features) == "compiled":
        dtype = plane_features.dtype
        inv = torch.linalg.inv(plane_axes_matrices.to(torch.float64))  # [P, 3, 3]
        proj = inv[:, :, :2].transpose(1, 2).to(dtype).contiguous()  # [P, 2, 3]
        out = _TriplaneDecode.apply(
            plane_features.permute(0, 1, 3, 4, 2).contiguous(),  # [N, P, H, W, C]
            coords.to(dtype).contiguous(),
            proj,
            2.0 / box_warp,
            w1.to(dtype).t().contiguous(),
            b1.to(dtype).contiguous(),
            w2.to(dtype).t().contiguous(),
            b2.to(dtype).contiguous(),
            float(color_eps),
        )  # [N, M, 1 + O]
        return out[..., 1:], out[..., :1]
    return _triplane_decode_ref(plane_axes_matrices, plane_features, coords, w1, b1, w2, b2, box_warp, color_eps)


def _triplane_decode_ref(
    plane_axes_matrices: torch.Tensor,
    plane_features: torch.Tensor,
    coords: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    box_warp: float,
    color_eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the same torch ops, in the same order, as ``sample_from_planes`` + EG3D's ``OSGDecoder``."""
    feats = sample_from_planes(plane_axes_matrices, plane_features, coords, box_warp=box_warp, impl="ref")
    x = feats.mean(dim=1)  # [N, M, C]
    n, m, c = x.shape
    x = torch.addmm(b1.to(x.dtype).unsqueeze(0), x.reshape(n * m, c), w1.to(x.dtype).t())
    x = F.softplus(x)
    x = torch.addmm(b2.to(x.dtype).unsqueeze(0), x, w2.to(x.dtype).t()).reshape(n, m, w2.shape[0])
    rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * color_eps) - color_eps
    return rgb, x[..., :1]


class _TriplaneDecode(torch.autograd.Function):
    """Compiled fused field; the backward recomputes the forward block by block and returns every gradient."""

    @staticmethod
    def forward(ctx, planes, coords, proj, scale, w1t, b1, w2t, b2, eps):
        ctx.save_for_backward(planes, coords, proj, w1t, b1, w2t, b2)
        ctx.args = (scale, eps)
        return _backend.extension().triplane_decode_fwd(planes, coords, proj, scale, w1t, b1, w2t, b2, eps)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        planes, coords, proj, w1t, b1, w2t, b2 = ctx.saved_tensors
        scale, eps = ctx.args
        g = _backend.extension().triplane_decode_bwd(
            grad_out.contiguous(), planes, coords, proj, scale, w1t, b1, w2t, b2, eps, ctx.needs_input_grad[1]
        )
        g_planes, g_coords, g_w1t, g_b1, g_w2t, g_b2 = g
        return g_planes, g_coords if ctx.needs_input_grad[1] else None, None, None, g_w1t, g_b1, g_w2t, g_b2, None
