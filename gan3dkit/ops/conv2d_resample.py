# SPDX-License-Identifier: Apache-2.0
"""2-D convolution combined with FIR up/downsampling (StyleGAN2 ``conv2d_resample`` semantics), pure PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan3dkit.ops.upfirdn2d import Padding, filter_size, pad_or_crop, parse_padding, upfirdn2d


def conv2d_resample(
    x: torch.Tensor,  # [N, C_in, H, W]
    w: torch.Tensor,  # [C_out, C_in // groups, kh, kw]
    f: torch.Tensor | None = None,  # [K] or [fh, fw] from setup_filter; None = identity
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    impl: str = "auto",
) -> torch.Tensor:  # [N, C_out, H', W'] (H' = H*up/down for a "same" padding of kh // 2)
    """Convolve ``x`` with ``w`` and resample with the FIR filter ``f``.

    Defined as: upsample by zero insertion and filter with ``f * up**2`` (if ``up > 1``), pad, convolve with ``w``
    (no implicit padding), then filter with ``f`` and keep every ``down``-th pixel (if ``down > 1``). The padding
    is ``padding`` plus the amount that makes ``up``/``down`` change the size by exactly that factor, so a 3x3
    kernel with ``padding=1`` maps ``H`` to ``H * up / down``. Twice differentiable.

    Args:
        x: Input ``[N, C_in, H, W]``.
        w: Weight ``[C_out, C_in // groups, kh, kw]``.
        f: Resampling filter (``setup_filter``); None means identity (plain zero insertion / subsampling).
        up: Integer upsampling factor (>= 1).
        down: Integer downsampling factor (>= 1). ``up`` and ``down`` may not both exceed 1.
        padding: ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]`` padding around the convolution (at the upsampled
            resolution when ``up > 1``).
        groups: Convolution groups.
        flip_weight: True: correlation like ``F.conv2d`` (weights used as stored); False: true convolution
            (weights flipped spatially). StyleGAN2 layers pass ``flip_weight = (up == 1)``.
        flip_filter: False: ``f`` is convolved; True: ``f`` is correlated.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``, forwarded to ``upfirdn2d``.

    Returns:
        Output ``[N, C_out, H', W']``.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_resample: x and w must be 4-D, got {tuple(x.shape)} and {tuple(w.shape)}.")
    if w.shape[1] * groups != x.shape[1] or w.shape[0] % groups != 0:
        raise ValueError(
            f"conv2d_resample: x has {x.shape[1]} channels but w {tuple(w.shape)} with groups={groups} "
            f"expects {w.shape[1] * groups} (and C_out divisible by groups)."
        )
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f"conv2d_resample: up and down must be ints >= 1, got up={up}, down={down}.")
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up > 1 and down > 1 together are not supported.")
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = parse_padding(padding)
    if up > 1:
        x0, x1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2
        y0, y1 = y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
    if down > 1:
        x0, x1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2
        y0, y1 = y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2
    if not flip_weight:
        w = w.flip([2, 3])
    w = w.to(x.dtype)

    if up > 1:  # zero-insert + interpolate (with the padding), then a plain convolution
        x = upfirdn2d(x, f, up=up, padding=[x0, x1, y0, y1], gain=up**2, flip_filter=flip_filter, impl=impl)
        return F.conv2d(x, w, groups=groups)
    if down > 1:  # filtering and the convolution commute, so filter at full resolution and use a strided conv
        x = upfirdn2d(x, f, padding=[x0, x1, y0, y1], flip_filter=flip_filter, impl=impl)
        return F.conv2d(x, w, groups=groups, stride=down)
    if x0 == x1 == y0 == y1 and x0 >= 0:
        return F.conv2d(x, w, groups=groups, padding=x0)
    return F.conv2d(pad_or_crop(x, x0, x1, y0, y1), w, groups=groups)
