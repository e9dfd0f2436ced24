# SPDX-License-Identifier: Apache-2.0
"""Independent NumPy/SciPy implementations used as test oracles for gan3dkit.ops."""

from __future__ import annotations

import numpy as np
from scipy import signal


def upfirdn2d_np(
    x: np.ndarray,  # [N, C, H, W]
    f: np.ndarray,  # [fh, fw] (2-D taps, gain already applied)
    up: int = 1,
    down: int = 1,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),  # x0, x1, y0, y1 (>= 0)
    flip_filter: bool = False,
) -> np.ndarray:
    """Zero insertion by explicit strided assignment, np.pad, scipy convolution (valid), strided subsampling."""
    n, c, h, w = x.shape
    x0, x1, y0, y1 = pads
    out = []
    for img in x.reshape(n * c, h, w):
        big = np.zeros((h * up, w * up), dtype=np.float64)
        big[::up, ::up] = img
        big = np.pad(big, ((y0, y1), (x0, x1)))
        op = signal.correlate2d if flip_filter else signal.convolve2d
        out.append(op(big, f, mode="valid")[::down, ::down])
    return np.stack(out).reshape(n, c, *out[0].shape)


def conv2d_resample_np(
    x: np.ndarray,  # [N, I, H, W]
    w: np.ndarray,  # [O, I, kh, kw]
    f: np.ndarray,  # [fh, fw] normalised 2-D taps
    up: int,
    down: int,
    padding: int,
) -> np.ndarray:
    """StyleGAN2's definition: upsample+filter with padding, correlate with w, then filter+subsample."""
    fh, fw = f.shape
    p0, p1 = padding, padding
    if up > 1:
        p0, p1 = p0 + (fw + up - 1) // 2, p1 + (fw - up) // 2
        x = upfirdn2d_np(x, f * up * up, up=up, pads=(p0, p1, p0, p1))
    else:
        if down > 1:
            p0, p1 = p0 + (fw - down + 1) // 2, p1 + (fw - down) // 2
        x = np.pad(x, ((0, 0), (0, 0), (p0, p1), (p0, p1)))
    n = x.shape[0]
    o, i = w.shape[:2]
    y = np.stack(
        [
            np.stack([sum(signal.correlate2d(x[b, ci], w[co, ci], mode="valid") for ci in range(i)) for co in range(o)])
            for b in range(n)
        ]
    )
    if down > 1:
        y = upfirdn2d_np(y, f, down=down)
    return y
