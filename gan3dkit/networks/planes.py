"""The one way to render given tri-planes: planes, cameras, ws -> image, raw image, depth and feature image."""

from __future__ import annotations

from torch import Tensor, nn

from gan3dkit.cameras import Cameras, as_cameras
from gan3dkit.render import ray_bundle


def render_planes(
    renderer: nn.Module,
    decoder: nn.Module,
    superresolution: nn.Module,
    planes: Tensor,  # [B, 3, C, H, W]
    cameras: Cameras | Tensor,  # Cameras of B, or [B, 25] labels (decoded once here)
    ws: Tensor,  # [B, n, w_dim]; the super-resolution reads ws[:, -1] (only the batch size with latent "one")
    resolution: int,
    *,
    deterministic: bool = False,
    fused_modconv: str | bool | None = None,
    depth_resolution: int | None = None,
    depth_resolution_importance: int | None = None,
    bounds: tuple[float, float] | None = None,
) -> dict[str, Tensor]:
    """The second half of EG3D's synthesis, for any volume renderer, decoder and super-resolution.

    ``TriPlaneGenerator.render_planes`` (which its ``synthesis`` calls) passes its own parts; the encoders' student
    renderer its fine-tuned copies. ``depth_resolution`` / ``depth_resolution_importance`` override the renderer's
    samples per ray and ``bounds`` its (near, far) (None: its config; the viewer moves the bounds with its dolly).

    Returns:
        ``image [B, 3, R, R]``, ``image_raw [B, 3, r, r]``, ``image_depth [B, 1, r, r]`` (ray distance) and
        ``feature_image [B, C, r, r]``, with ``r = resolution``.
    """
    origins, directions = ray_bundle(as_cameras(cameras), resolution)  # [B, r*r, 3]
    out = renderer(planes, decoder, origins, directions, deterministic=deterministic, bounds=bounds,
                   depth_resolution=depth_resolution, depth_resolution_importance=depth_resolution_importance)
    b = planes.shape[0]
    feature_image = out.features.permute(0, 2, 1).reshape(b, -1, resolution, resolution).contiguous()
    depth_image = out.depth.permute(0, 2, 1).reshape(b, 1, resolution, resolution)
    rgb_image = feature_image[:, :3]
    image = superresolution(rgb_image, feature_image, ws, fused_modconv=fused_modconv)
    return {"image": image, "image_raw": rgb_image, "image_depth": depth_image, "feature_image": feature_image}
