# SPDX-License-Identifier: Apache-2.0
"""Tri-plane volume rendering as in EG3D's ImportanceRenderer: stratified + importance samples, MipRayMarcher2."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from gan3dkit.ops import (
    generate_planes,
    mip_ray_march,
    sample_from_planes,
    sample_pdf,
    smooth_weights,
    stratified_depths,
    unify_samples,
)
from gan3dkit.ops.triplane import PLANE_AXES_MODES
from gan3dkit.utils.config import from_dict, to_dict

#: A field decoder: (per-plane features [B, P, N, C], view directions [B, N, 3]) ->
#: {"rgb": [B, N, C'], "sigma": [B, N, 1]}; ``sigma`` is the raw density (the marcher applies softplus(sigma - 1)).
FieldDecoder = Callable[[Tensor, Tensor], "dict[str, Tensor]"]


@dataclass
class RenderingConfig:
    """Tri-plane rendering and decoder settings (EG3D's ``rendering_kwargs``). Defaults are EG3D's FFHQ values."""

    plane_axes: str = "eg3d"
    """Plane-axis mode: ``"eg3d"`` = XY, XZ, ZX (the released quirk every NVIDIA checkpoint needs), ``"xy_xz_yz"``."""
    box_warp: float = 1.0
    """Side of the cube ``[-box_warp/2, box_warp/2]^3`` covered by the tri-planes, in world units."""
    ray_start: float = 2.25
    """Near bound of every ray (distance from the camera centre along unit directions)."""
    ray_end: float = 3.3
    """Far bound of every ray (the last stratified sample may exceed it by one step, as in EG3D)."""
    depth_resolution: int = 48
    """Stratified (coarse) samples per ray."""
    depth_resolution_importance: int = 48
    """Importance (fine) samples per ray; 0 disables the second pass."""
    white_back: bool = False
    """Composite onto white (EG3D uses it for ShapeNet); otherwise empty rays render as -1 (black)."""
    density_noise: float = 0.0
    """Std of Gaussian noise added to raw densities in every field evaluation (EG3D ``run_model``)."""
    clamp_mode: str = "softplus"
    """Density activation of the ray marcher; only ``"softplus"`` (sigma = softplus(raw - 1)), as in EG3D."""
    disparity_space_sampling: bool = False
    """Space the coarse samples uniformly in inverse depth instead of depth (EG3D option, off in all configs)."""
    decoder_hidden_dim: int = 64
    """Hidden width of the OSG decoder MLP."""
    decoder_output_dim: int = 32
    """Feature channels rendered per pixel (the first 3 are RGB); also the super-resolution input width."""
    decoder_lr_mul: float = 1.0
    """Learning-rate multiplier of the decoder's equalised-lr layers."""
    avg_camera_radius: float = 2.7
    """Typical camera distance from the pivot (used by scripts and viewers, not by rendering)."""
    avg_camera_pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)
    """Typical look-at point (used by scripts and viewers, not by rendering)."""
    focal: float = 4.2647
    """Normalised focal length fx/W of the dataset cameras (for scripts; rendering reads intrinsics from labels)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent settings."""
        if self.plane_axes not in PLANE_AXES_MODES:
            raise ValueError(f"RenderingConfig.plane_axes must be one of {PLANE_AXES_MODES}, got {self.plane_axes!r}.")
        if not self.box_warp > 0:
            raise ValueError(f"RenderingConfig.box_warp must be > 0, got {self.box_warp}.")
        if not 0 <= self.ray_start < self.ray_end:
            raise ValueError(f"RenderingConfig needs 0 <= ray_start < ray_end, got {self.ray_start}, {self.ray_end}.")
        if self.depth_resolution < 2 or self.depth_resolution_importance < 0:
            raise ValueError("RenderingConfig: depth_resolution must be >= 2 and depth_resolution_importance >= 0.")
        if self.depth_resolution_importance > 0 and self.depth_resolution < 4:
            raise ValueError("RenderingConfig: importance sampling needs depth_resolution >= 4 (EG3D uses S-3 bins).")
        if self.clamp_mode != "softplus":
            raise ValueError(f"RenderingConfig.clamp_mode: only 'softplus' is supported, got {self.clamp_mode!r}.")
        if self.density_noise < 0 or self.decoder_hidden_dim < 1 or self.decoder_output_dim < 3:
            raise ValueError("RenderingConfig: density_noise >= 0, decoder_hidden_dim >= 1, decoder_output_dim >= 3.")
        if len(self.avg_camera_pivot) != 3:
            raise ValueError(f"RenderingConfig.avg_camera_pivot must have 3 values, got {self.avg_camera_pivot}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderingConfig:
        """Inverse of ``to_dict``; unknown keys or wrongly typed values raise ``ValueError``."""
        return from_dict(cls, dict(data))


class RenderOutput(NamedTuple):
    """Result of ``ImportanceRenderer.forward`` (unpacks like EG3D's ``(features, depth, weights)``)."""

    features: Tensor
    """Composited features ``[B, M, C]`` mapped to about [-1, 1] (``x * 2 - 1``, plus white background if set)."""
    depth: Tensor
    """Expected ray distance ``[B, M, 1]`` (sum w z / sum w), clamped to the sampled depth range."""
    weights: Tensor
    """Per-interval compositing weights ``[B, M, S-1, 1]`` of the final pass (S = all samples)."""

    @property
    def opacity(self) -> Tensor:  # [B, M, 1]
        """Accumulated opacity ``sum_i w_i`` (EG3D returns this as its third output)."""
        return self.weights.sum(dim=2)


class ImportanceRenderer(nn.Module):
    """Render tri-planes along rays: a stratified pass, then importance samples drawn from its weights.

    Follows EG3D's ``ImportanceRenderer``: coarse depths ``linspace(near, far, S)`` + one step of uniform jitter;
    coarse weights from ``MipRayMarcher2``, smoothed (max-pool 2, avg-pool 2, +0.01) and inverted (``sample_pdf``)
    over the S-1 depth midpoints to draw the fine depths (constants for autograd); coarse and fine samples are
    merged, sorted and marched again. The decoder is an argument, so this module has no parameters.
    """

    plane_axes_matrices: Tensor

    def __init__(self, config: RenderingConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.register_buffer("plane_axes_matrices", generate_planes(config.plane_axes), persistent=False)  # [3, 3, 3]

    # ------------------------------------------------------------------------------------------ field queries
    def run_model(
        self,
        planes: Tensor,  # [B, P, C, H, W]
        decoder: FieldDecoder,
        coords: Tensor,  # [B, N, 3] world units
        directions: Tensor,  # [B, N, 3]
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:  # {"rgb": [B, N, C'], "sigma": [B, N, 1]}
        """Sample the planes at ``coords`` and decode (plus ``density_noise`` on sigma, as EG3D's ``run_model``)."""
        fused = getattr(decoder, "decode_triplane", None)
        if callable(fused):  # sampling + decoding in one op (OSGDecoder: gan3dkit.ops.triplane_decode)
            out = dict(fused(self.plane_axes_matrices, planes, coords, directions, box_warp=self.config.box_warp))
        else:
            features = sample_from_planes(
                self.plane_axes_matrices, planes, coords, box_warp=self.config.box_warp, padding_mode="zeros"
            )  # [B, P, N, C]
            out = dict(decoder(features, directions))
        if self.config.density_noise > 0:
            sigma = out["sigma"]
            noise = torch.randn(sigma.shape, generator=generator, device=sigma.device, dtype=sigma.dtype)
            out["sigma"] = sigma + noise * self.config.density_noise
        return out

    def sample_points(
        self,
        planes: Tensor,  # [B, P, C, H, W]
        decoder: FieldDecoder,
        coords: Tensor,  # [B, N, 3]
        directions: Tensor | None = None,  # [B, N, 3]; None = zeros (the OSG decoder ignores directions)
        chunk: int | None = None,
    ) -> dict[str, Tensor]:  # {"rgb": [B, N, C'], "sigma": [B, N, 1]} (raw sigma)
        """Evaluate the field at arbitrary points (density regularisation, marching-cubes grids).

        Args:
            planes: Tri-plane features ``[B, P, C, H, W]``.
            decoder: Field decoder (see ``FieldDecoder``).
            coords: Query points ``[B, N, 3]`` in world units.
            directions: View directions ``[B, N, 3]``; None passes zeros.
            chunk: If set, evaluate at most ``chunk`` points per call (memory bound for large grids).

        Returns:
            ``{"rgb": [B, N, C'], "sigma": [B, N, 1]}`` with raw (pre-activation) sigma.
        """
        if directions is None:
            directions = torch.zeros_like(coords)
        if chunk is None or coords.shape[1] <= chunk:
            return self.run_model(planes, decoder, coords, directions)
        parts = [
            self.run_model(planes, decoder, coords[:, i : i + chunk], directions[:, i : i + chunk])
            for i in range(0, coords.shape[1], chunk)
        ]
        return {key: torch.cat([p[key] for p in parts], dim=1) for key in parts[0]}

    # ------------------------------------------------------------------------------------------ depth sampling
    def sample_stratified(
        self,
        batch_shape: tuple[int, int],
        n_samples: int,
        jitter: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        bounds: tuple[float, float] | None = None,
    ) -> Tensor:  # [B, M, S, 1]
        """Coarse depths: EG3D's jittered linspace (or, with ``disparity_space_sampling``, in inverse depth) between
        ``bounds`` (near, far; None: the config's ray_start, ray_end)."""
        cfg = self.config
        near, far = (cfg.ray_start, cfg.ray_end) if bounds is None else bounds
        if not 0 < near < far:
            raise ValueError(f"ImportanceRenderer: bounds need 0 < near < far, got {near}, {far}.")
        if not cfg.disparity_space_sampling:
            return stratified_depths(near, far, n_samples, batch_shape, jitter, generator, device, dtype)
        t = stratified_depths(0.0, 1.0, n_samples, batch_shape, jitter, generator, device, dtype)
        return 1.0 / (1.0 / near * (1.0 - t) + 1.0 / far * t)

    @staticmethod
    def sample_importance(
        depths: Tensor,  # [B, M, S, 1] sorted
        weights: Tensor,  # [B, M, S-1, 1] from the coarse march
        n_importance: int,
        det: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:  # [B, M, n_importance, 1], detached
        """Fine depths drawn from the smoothed coarse weights over the depth midpoints, exactly as EG3D."""
        b, m, s, _ = depths.shape
        z = depths.reshape(b * m, s)
        w = smooth_weights(weights.reshape(b * m, s - 1).float())  # [R, S-1]
        z_mid = 0.5 * (z[:, :-1] + z[:, 1:])  # [R, S-1]
        # EG3D passes S-1 midpoints with S-3 weights: the last midpoint is never used as a bin edge.
        fine = sample_pdf(z_mid[:, :-1], w[:, 1:-1].to(z.dtype), n_importance, det=det, generator=generator)
        return fine.reshape(b, m, n_importance, 1)

    # ------------------------------------------------------------------------------------------ rendering
    def evaluate_samples(
        self,
        planes: Tensor,
        decoder: FieldDecoder,
        origins: Tensor,
        directions: Tensor,
        depths: Tensor,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:  # colors [B, M, S, C], densities [B, M, S, 1]
        """Decode the field at `depths` [B, M, S, 1] along each ray (raw densities; used by metrics such as NFS)."""
        b, m, s, _ = depths.shape
        coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(b, m * s, 3)
        dirs = directions.unsqueeze(-2).expand(b, m, s, 3).reshape(b, m * s, 3)
        out = self.run_model(planes, decoder, coords, dirs, generator)
        return out["rgb"].reshape(b, m, s, -1), out["sigma"].reshape(b, m, s, 1)

    def forward(
        self,
        planes: Tensor,  # [B, P, C, H, W]
        decoder: FieldDecoder,
        ray_origins: Tensor,  # [B, M, 3]
        ray_directions: Tensor,  # [B, M, 3] unit
        *,
        depth_resolution: int | None = None,
        depth_resolution_importance: int | None = None,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        bounds: tuple[float, float] | None = None,
    ) -> RenderOutput:
        """Render features, depth and weights for a batch of rays.

        Args:
            planes: Tri-plane features ``[B, P, C, H, W]``.
            decoder: Field decoder called as ``decoder(features [B, P, N, C], dirs [B, N, 3])``.
            ray_origins: Ray origins ``[B, M, 3]``.
            ray_directions: Unit ray directions ``[B, M, 3]`` (depths are distances along them).
            depth_resolution: Override of ``config.depth_resolution`` (e.g. 2x for videos).
            depth_resolution_importance: Override of ``config.depth_resolution_importance``.
            deterministic: No depth jitter and evenly spaced importance samples (EG3D always jitters).
            generator: Random generator for jitter, importance samples and density noise.
            bounds: (near, far) distances along the rays instead of the config's ray_start, ray_end (e.g. the
                viewer's camera dollied away from the average radius).

        Returns:
            ``RenderOutput(features [B, M, C], depth [B, M, 1], weights [B, M, S-1, 1])``.
        """
        if ray_origins.ndim != 3 or ray_origins.shape != ray_directions.shape or ray_origins.shape[-1] != 3:
            raise ValueError(
                f"ImportanceRenderer: ray origins/directions must both be [B, M, 3], got {tuple(ray_origins.shape)}"
                f" and {tuple(ray_directions.shape)}."
            )
        if planes.ndim != 5 or planes.shape[0] != ray_origins.shape[0]:
            raise ValueError(f"ImportanceRenderer: planes must be [B, P, C, H, W] with B = {ray_origins.shape[0]}.")
        cfg = self.config
        n_coarse = cfg.depth_resolution if depth_resolution is None else depth_resolution
        n_fine = cfg.depth_resolution_importance if depth_resolution_importance is None else depth_resolution_importance
        if n_coarse < 2 or (n_fine > 0 and n_coarse < 4):
            raise ValueError(f"ImportanceRenderer: need >= 2 coarse samples (>= 4 with importance), got {n_coarse}.")
        b, m, _ = ray_origins.shape
        depths = self.sample_stratified(
            (b, m),
            n_coarse,
            jitter=not deterministic,
            generator=generator,
            device=ray_origins.device,
            dtype=ray_origins.dtype,
            bounds=bounds,
        )  # [B, M, S, 1]
        colors, densities = self.evaluate_samples(planes, decoder, ray_origins, ray_directions, depths, generator)
        if n_fine > 0:
            _, _, coarse_weights = mip_ray_march(colors, densities, depths, cfg.white_back, cfg.clamp_mode)
            depths_fine = self.sample_importance(depths, coarse_weights, n_fine, det=deterministic, generator=generator)
            colors_fine, densities_fine = self.evaluate_samples(
                planes, decoder, ray_origins, ray_directions, depths_fine, generator
            )
            depths, colors, densities = unify_samples(
                depths, colors, densities, depths_fine, colors_fine, densities_fine
            )
        rgb, depth, weights = mip_ray_march(colors, densities, depths, cfg.white_back, cfg.clamp_mode)
        return RenderOutput(rgb, depth, weights)
