# SPDX-License-Identifier: Apache-2.0
"""StyleGAN2 modulated convolution with weight demodulation (fused grouped-conv and non-fused paths)."""

from __future__ import annotations

import torch

from gan3dkit.ops.conv2d_resample import conv2d_resample
from gan3dkit.ops.upfirdn2d import Padding

DEMOD_EPS = 1e-8


def modulated_conv2d(
    x: torch.Tensor,  # [N, C_in, H, W]
    weight: torch.Tensor,  # [C_out, C_in, kh, kw]
    styles: torch.Tensor,  # [N, C_in]
    noise: torch.Tensor | None = None,  # broadcastable to [N, C_out, H', W']
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,  # [K] or [fh, fw] from setup_filter
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    impl: str = "auto",
) -> torch.Tensor:  # [N, C_out, H', W']
    """Convolution whose weights are scaled per sample by ``styles`` and optionally renormalised.

    Modulated weight ``w'[n,o,i] = weight[o,i] * styles[n,i]``; with ``demodulate`` it is divided by
    ``sqrt(sum_{i,kh,kw} w'[n,o,i]^2 + 1e-8)`` so that unit-variance inputs give unit-variance outputs. The fused
    path folds the batch into the channel axis and runs one grouped convolution; the non-fused path scales the
    activations instead of the weights. Both give the same result. Twice differentiable.

    Args:
        x: Input ``[N, C_in, H, W]``.
        weight: Shared weight ``[C_out, C_in, kh, kw]``.
        styles: Per-sample input-channel scales ``[N, C_in]``.
        noise: Optional tensor added to the output after demodulation (already scaled by the caller).
        up: Integer upsampling factor (see ``conv2d_resample``).
        down: Integer downsampling factor (see ``conv2d_resample``).
        padding: Convolution padding, ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``.
        resample_filter: FIR filter used when ``up > 1`` or ``down > 1``.
        demodulate: Apply weight demodulation (eps 1e-8).
        flip_weight: True: correlation (``F.conv2d``); False: convolution. See ``conv2d_resample``.
        fused_modconv: Use the single grouped convolution (True) or modulate activations (False).
        impl: ``"auto"``, ``"ref"`` or ``"compiled"``, forwarded to the resampling filter.

    Returns:
        Output ``[N, C_out, H', W']``.
    """
    n = x.shape[0]
    if x.ndim != 4 or weight.ndim != 4 or styles.ndim != 2:
        raise ValueError(
            f"modulated_conv2d: expected x [N,I,H,W], weight [O,I,kh,kw], styles [N,I]; got {tuple(x.shape)}, "
            f"{tuple(weight.shape)}, {tuple(styles.shape)}."
        )
    out_ch, in_ch, kh, kw = weight.shape
    if x.shape[1] != in_ch or tuple(styles.shape) != (n, in_ch):
        raise ValueError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles {tuple(styles.shape)} "
            f"disagree on N or C_in."
        )
    weight = weight.to(x.dtype)
    styles = styles.to(x.dtype)
    if demodulate and x.dtype in (torch.float16, torch.bfloat16):
        # Demodulation is scale invariant: rescale first so low-precision squares cannot overflow.
        weight = weight / weight.abs().amax(dim=[1, 2, 3], keepdim=True).clamp_min(1e-4) / (in_ch * kh * kw) ** 0.5
        styles = styles / styles.abs().amax(dim=1, keepdim=True).clamp_min(1e-4)

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, kh, kw]
    dcoefs = None
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + DEMOD_EPS).rsqrt()  # [N, O]

    if not fused_modconv:
        x = x * styles.reshape(n, in_ch, 1, 1)
        x = conv2d_resample(x, weight, resample_filter, up, down, padding, flip_weight=flip_weight, impl=impl)
        if dcoefs is not None:
            x = x * dcoefs.reshape(n, out_ch, 1, 1)
        return x if noise is None else x + noise.to(x.dtype)

    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    x = conv2d_resample(
        x,
        w.reshape(n * out_ch, in_ch, kh, kw),
        resample_filter,
        up,
        down,
        padding,
        groups=n,
        flip_weight=flip_weight,
        impl=impl,
    )
    x = x.reshape(n, out_ch, *x.shape[2:])
    return x if noise is None else x + noise.to(x.dtype)
