// SPDX-License-Identifier: Apache-2.0
// upfirdn2d (StyleGAN2 semantics): upsample by zero insertion, pad (negative = crop), FIR-filter, downsample.
// Linear in x, so its gradient is upfirdn2d again with up/down swapped, the filter flipped and the padding
// adjusted (the Python autograd Function calls itself): differentiable to any order in x, never in f.
//
// upfirdn2d_fwd(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain) -> y
//   x: [N, C, H, W] contiguous float32/float64.
//   f: [fh, fw] filter of x's dtype (a separable filter is applied by the caller as a [1, K] and a [K, 1] pass).
//   up*, down*: integer factors >= 1; pad*: padding applied after upsampling, negative values crop.
//   flip: false = true convolution with f, true = correlation; gain: multiplies every tap.
//   returns y [N, C, (H*upy + pady0 + pady1 - fh) / downy + 1, (W*upx + padx0 + padx1 - fw) / downx + 1], i.e.
//   y[oy, ox] = gain * sum_{ty, tx} u[oy*downy + ty - pady0, ox*downx + tx - padx0] * F[ty, tx] where u is x with
//   up-1 zeros after every pixel and F = f (flip) or f rotated by 180 degrees (no flip).
#pragma once
#include <ATen/core/Tensor.h>

#include "utils/checks.h"

at::Tensor upfirdn2d_cpu(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                         int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                         double gain);
#ifdef WITH_CUDA
at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                          int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                          double gain);
#endif

inline at::Tensor upfirdn2d_fwd(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                                int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                                double gain) {
  GAN3DKIT_CHECK_INPUT(x);
  GAN3DKIT_CHECK_INPUT(f);
  GAN3DKIT_CHECK_DIM(x, 4);
  GAN3DKIT_CHECK_DIM(f, 2);
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "upfirdn2d: the compiled kernel takes float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(f.scalar_type() == x.scalar_type() && f.device() == x.device(),
              "upfirdn2d: f must match x's dtype and device");
  TORCH_CHECK(f.numel() > 0, "upfirdn2d: the filter is empty");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down factors must be >= 1");
  const int64_t out_w = (x.size(3) * upx + padx0 + padx1 - f.size(1) + downx) / downx;
  const int64_t out_h = (x.size(2) * upy + pady0 + pady1 - f.size(0) + downy) / downy;
  TORCH_CHECK(out_w >= 1 && out_h >= 1, "upfirdn2d: the output would be empty");
  if (x.is_cuda()) {
#ifdef WITH_CUDA
    return upfirdn2d_cuda(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain);
#else
    GAN3DKIT_NO_CUDA("upfirdn2d_fwd");
#endif
  }
  return upfirdn2d_cpu(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain);
}
