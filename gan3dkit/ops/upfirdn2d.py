# SPDX-License-Identifier: Apache-2.0
"""Upsample, pad, FIR-filter and downsample 2-D images (StyleGAN2 ``upfirdn2d`` semantics): compiled kernel and
pure-PyTorch reference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gan3dkit.ops import _backend

Scale = int | Sequence[int]  # one factor for both axes, or [x, y]
Padding = int | Sequence[int]  # p, [px, py] or [x0, x1, y0, y1]


def _parse_scale(value: Scale, name: str) -> tuple[int, int]:
    pair = [value, value] if isinstance(value, int) else list(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"upfirdn2d: {name} must be a positive int or an [x, y] pair of them, got {value!r}.")
    return pair[0], pair[1]


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """Normalise ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]`` to ``(x0, x1, y0, y1)``; negative values crop."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    pads = [int(p) for p in padding]
    if len(pads) == 2:
        return pads[0], pads[0], pads[1], pads[1]
    if len(pads) == 4:
        return pads[0], pads[1], pads[2], pads[3]
    raise ValueError(f"padding must be an int, [px, py] or [x0, x1, y0, y1], got {padding!r}.")


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Width and height ``(fw, fh)`` of a filter from ``setup_filter`` (None counts as 1x1)."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    if f.ndim == 2:
        return f.shape[1], f.shape[0]
    raise ValueError(f"filter must be None, 1-D [K] (separable) or 2-D [fh, fw], got shape {tuple(f.shape)}.")


def pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad the last two axes of ``x`` (positive values) or crop them (negative values)."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x[..., max(-y0, 0) : x.shape[-2] - max(-y1, 0), max(-x0, 0) : x.shape[-1] - max(-x1, 0)]


def setup_filter(
    f: torch.Tensor | Sequence[float] | float | None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:  # [K] (separable) or [fh, fw]
    """Turn filter taps into a float32 filter tensor for ``upfirdn2d``.

    Args:
        f: Taps: None (identity ``[1]``), a scalar, a 1-D sequence (made 2-D by outer product unless separable)
            or a 2-D array.
        normalize: Divide by the sum of the (2-D) taps so the filter has unit DC gain.
        flip_filter: Flip the filter along every axis.
        gain: Overall gain; a 1-D separable filter is scaled by ``sqrt(gain)`` because it is applied twice.
        separable: Keep a 1-D filter 1-D (None: separable iff 1-D with at least 8 taps).
        device: Device of the result.

    Returns:
        Filter of shape ``[K]`` (separable) or ``[fh, fw]``.
    """
    taps = torch.ones(1) if f is None else torch.as_tensor(f, dtype=torch.float32)
    if taps.ndim == 0:
        taps = taps[None]
    if taps.ndim not in (1, 2) or taps.numel() == 0:
        raise ValueError(f"setup_filter: taps must be a non-empty 0-D, 1-D or 2-D array, got {tuple(taps.shape)}.")
    if separable is None:
        separable = taps.ndim == 1 and taps.numel() >= 8
    if taps.ndim == 1 and not separable:
        taps = torch.outer(taps, taps)
    if separable and taps.ndim != 1:
        raise ValueError("setup_filter: separable=True needs 1-D taps.")
    if normalize:
        taps = taps / taps.sum()  # for 1-D taps the implied 2-D outer product then sums to 1 as well
    if flip_filter:
        taps = taps.flip(list(range(taps.ndim)))
    taps = taps * (gain ** (taps.ndim / 2))
    return taps.to(device=device)


def upfirdn2d(
    x: torch.Tensor,  # [N, C, H, W]
    f: torch.Tensor | None,  # [K] separable or [fh, fw]; None = identity
    up: Scale = 1,
    down: Scale = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:  # [N, C, (H*up_y + y0 + y1 - fh + down_y) // down_y, (same for x)]
    """Upsample by zero insertion, pad, convolve with a FIR filter, then downsample by keeping every down-th pixel.

    Steps: (1) insert ``up - 1`` zeros after every input pixel along each axis; (2) pad by ``padding`` (negative
    values crop); (3) convolve each channel with ``f * gain ** (f.ndim / 2)`` (true convolution unless
    ``flip_filter``; a 1-D filter is applied along x then y); (4) keep pixels ``0, down, 2*down, ...``.
    Twice differentiable (the compiled kernel to any order in ``x``; it never differentiates ``f``, so a filter
    that requires grad uses the reference under ``impl="auto"``).

    Args:
        x: Input images ``[N, C, H, W]``.
        f: Filter from ``setup_filter``; None means the 1x1 identity.
        up: Integer upsampling factor, or ``[x, y]``.
        down: Integer downsampling factor, or ``[x, y]``.
        padding: ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``, applied after upsampling; negative values crop.
        flip_filter: False: convolution (filter flipped); True: correlation.
        gain: Overall gain of the filter (``up**2`` keeps the mean of an upsampled image).
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        Filtered images ``[N, C, H_out, W_out]``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"upfirdn2d: x must be a floating [N, C, H, W] tensor, got {getattr(x, 'shape', x)}.")
    fw, fh = filter_size(f)
    upx, upy = _parse_scale(up, "up")
    downx, downy = _parse_scale(down, "down")
    x0, x1, y0, y1 = parse_padding(padding)
    out_w = (x.shape[3] * upx + x0 + x1 - fw + downx) // downx
    out_h = (x.shape[2] * upy + y0 + y1 - fh + downy) // downy
    if out_w < 1 or out_h < 1:
        raise ValueError(f"upfirdn2d: output would be empty for input {tuple(x.shape)}, filter {fh}x{fw}, pad.")
    if _backend.resolve_impl("upfirdn2d", impl, x) == "compiled":
        kernel_ok = x.dtype in _KERNEL_DTYPES and (f is None or not f.requires_grad)
        if kernel_ok:
            return _upfirdn2d_compiled(x, f, upx, upy, downx, downy, (x0, x1, y0, y1), flip_filter, gain)
        if impl == "compiled":
            raise ValueError(
                f"upfirdn2d: the compiled kernel takes float32/float64 and a constant filter (got {x.dtype}, "
                f"filter requires_grad={f.requires_grad if f is not None else False}); use impl='ref'."
            )
    return _upfirdn2d_ref(x, f, upx, upy, downx, downy, (x0, x1, y0, y1), flip_filter, gain)


def _upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    upx: int,
    upy: int,
    downx: int,
    downy: int,
    pads: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Reference implementation made only of differentiable torch ops."""
    n, c, h, w = x.shape
    if upx > 1 or upy > 1:  # zero insertion: each pixel becomes a block [pixel, 0, ..., 0]
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)
    x = pad_or_crop(x, *pads)
    if f is None:
        f = torch.ones(1, 1)
    f = (f * (gain ** (f.ndim / 2))).to(device=x.device, dtype=x.dtype)
    if not flip_filter:  # conv2d correlates; flipping the taps turns it into a convolution
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f.expand(c, 1, *f.shape), groups=c)
    else:
        k = f.shape[0]
        x = F.conv2d(x, f.reshape(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return x[:, :, ::downy, ::downx]


_KERNEL_DTYPES = (torch.float32, torch.float64)


class _Upfirdn2d(torch.autograd.Function):
    """One 2-D pass of the kernel; its backward is the same Function with the adjoint parameters (so it is
    differentiable again, to any order in x)."""

    @staticmethod
    def forward(ctx, x, f, up, down, pads, flip, gain):  # [N, C, H, W], [fh, fw]; up/down (x, y); pads x0 x1 y0 y1
        ctx.save_for_backward(f)
        ctx.args = (x.shape, up, down, pads, flip, gain)
        return _backend.extension().upfirdn2d_fwd(x, f, up[0], up[1], down[0], down[1], *pads, flip, gain)

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        shape, up, down, pads, flip, gain = ctx.args
        fh, fw = f.shape
        ih, iw, oh, ow = shape[2], shape[3], dy.shape[2], dy.shape[3]
        # Adjoint: up <-> down, correlation <-> convolution, padding so the output has the input's size.
        adj = (
            fw - pads[0] - 1,
            iw * up[0] - ow * down[0] + pads[0] - up[0] + 1,
            fh - pads[2] - 1,
            ih * up[1] - oh * down[1] + pads[2] - up[1] + 1,
        )
        return _Upfirdn2d.apply(dy.contiguous(), f, down, up, adj, not flip, gain), None, None, None, None, None, None


def _upfirdn2d_compiled(
    x: torch.Tensor,
    f: torch.Tensor | None,
    upx: int,
    upy: int,
    downx: int,
    downy: int,
    pads: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Compiled twin of ``_upfirdn2d_ref``: a 2-D filter in one pass, a separable one as an x pass then a y pass."""
    x = x.contiguous()
    f = torch.ones(1, 1) if f is None else f
    f = f.to(device=x.device, dtype=x.dtype)
    if f.ndim == 2:
        return _Upfirdn2d.apply(x, f.contiguous(), (upx, upy), (downx, downy), pads, bool(flip_filter), float(gain))
    k = f.shape[0]
    g = float(gain) ** 0.5  # the 1-D taps are applied twice, as in the reference
    x = _Upfirdn2d.apply(x, f.reshape(1, k).contiguous(), (upx, 1), (downx, 1), (*pads[:2], 0, 0), bool(flip_filter), g)
    return _Upfirdn2d.apply(
        x, f.reshape(k, 1).contiguous(), (1, upy), (1, downy), (0, 0, *pads[2:]), bool(flip_filter), g
    )


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:  # [N, C, H, W] -> [N, C, H, W] (+ extra padding)
    """Filter images with ``f``, padded so the output keeps the input size.

    Args:
        x: Input images ``[N, C, H, W]``.
        f: Filter from ``setup_filter`` (None: identity).
        padding: Extra padding on top of the size-preserving one (``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``).
        flip_filter: False: convolution; True: correlation.
        gain: Overall filter gain.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        Filtered images.
    """
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pads = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pads, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scale = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:  # [N, C, H, W] -> [N, C, H*up, W*up]
    """Upsample by ``up`` with filter ``f``, padded so the output is exactly ``up`` times larger.

    Args:
        x: Input images ``[N, C, H, W]``.
        f: Interpolation filter from ``setup_filter`` (None: nearest-style zero insertion only).
        up: Integer factor or ``[x, y]``.
        padding: Extra padding (``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``).
        flip_filter: False: convolution; True: correlation.
        gain: Overall gain; multiplied by ``up_x * up_y`` so the image mean is kept.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        Upsampled images.
    """
    upx, upy = _parse_scale(up, "up")
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pads = [x0 + (fw + upx - 1) // 2, x1 + (fw - upx) // 2, y0 + (fh + upy - 1) // 2, y1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=[upx, upy], padding=pads, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Scale = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:  # [N, C, H, W] -> [N, C, H/down, W/down]
    """Low-pass filter with ``f`` and downsample by ``down``, padded so the output is ``down`` times smaller.

    Args:
        x: Input images ``[N, C, H, W]``.
        f: Anti-aliasing filter from ``setup_filter`` (None: plain subsampling).
        down: Integer factor or ``[x, y]``.
        padding: Extra padding (``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``).
        flip_filter: False: convolution; True: correlation.
        gain: Overall filter gain.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``.

    Returns:
        Downsampled images.
    """
    downx, downy = _parse_scale(down, "down")
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pads = [x0 + (fw - downx + 1) // 2, x1 + (fw - downx) // 2, y0 + (fh - downy + 1) // 2, y1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=[downx, downy], padding=pads, flip_filter=flip_filter, gain=gain, impl=impl)
