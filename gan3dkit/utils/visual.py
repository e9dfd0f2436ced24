"""Pictures for people: image grids, depth maps as colour images, mask overlays (uint8 numpy in, uint8 out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 of the same shape, as StyleGAN/EG3D write images and compute metrics:
    (x * 127.5 + 128).clamp(0, 255), truncated."""
    import torch

    return (images.detach() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """[..., C, H, W] in [-1, 1] -> uint8 numpy [..., H, W, C] (channels last, for PIL and grids); see `to_uint8`."""
    return to_uint8(images).movedim(-3, -1).cpu().numpy()

# A perceptually ordered colour ramp (dark blue -> teal -> yellow), interpolated linearly; near = bright.
_RAMP = np.array(
    [
        [13, 8, 135],
        [84, 2, 163],
        [139, 10, 165],
        [185, 50, 137],
        [219, 92, 104],
        [244, 136, 73],
        [254, 188, 43],
        [240, 249, 33],
    ],
    dtype=np.float64,
)


def depth_to_rgb(
    depth: np.ndarray, valid: np.ndarray | None = None, lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """[H, W] depth -> uint8 [H, W, 3]: near surfaces bright, far dark, invalid/infinite pixels black.

    The range is [lo, hi] (default: min/max of the valid finite depths).
    """
    d = depth.astype(np.float64)
    ok = np.isfinite(d) if valid is None else (valid & np.isfinite(d))
    out = np.zeros(d.shape + (3,), dtype=np.uint8)
    if not ok.any():
        return out
    lo = float(d[ok].min()) if lo is None else lo
    hi = float(d[ok].max()) if hi is None else hi
    t = 1.0 - np.clip((d[ok] - lo) / max(hi - lo, 1e-12), 0.0, 1.0)  # 1 = nearest
    pos = t * (len(_RAMP) - 1)
    i0 = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
    frac = (pos - i0)[:, None]
    out[ok] = np.round(_RAMP[i0] * (1 - frac) + _RAMP[i0 + 1] * frac).astype(np.uint8)
    return out


def make_grid(images: list[np.ndarray], ncols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile uint8 [H, W, 3] (or [H, W]) images of one size into rows of `ncols` with `pad` pixels between."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    imgs = [np.repeat(im[:, :, None], 3, axis=2) if im.ndim == 2 else im for im in images]
    h, w = imgs[0].shape[:2]
    nrows = (len(imgs) + ncols - 1) // ncols
    grid = np.full((nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad, 3), fill, dtype=np.uint8)
    for k, im in enumerate(imgs):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = im
    return grid
