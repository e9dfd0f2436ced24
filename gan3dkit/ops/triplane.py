# SPDX-License-Identifier: Apache-2.0
"""Tri-plane projection and bilinear feature sampling, with EG3D's plane-axis quirk or the corrected axes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
    return projected[..., :2].reshape(-1, coords.shape[1], 2)


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
    if _backend.resolve_impl("sample_from_planes", impl, plane_features) == "compiled":
        return _backend.compiled_op("sample_from_planes")(
            plane_axes_matrices, plane_features, coords, box_warp, mode, padding_mode
        )
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
