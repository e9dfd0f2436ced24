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
//
// The per-output-pixel body (upfirdn2d::axis_taps + upfirdn2d::pixel) is shared: the CUDA launcher runs it per
// thread, the CPU launcher uses the same tap tables and row sums (pixel by pixel at the borders, a vectorised
// reordering of the same sum inside), and the test-only binding _upfirdn2d_fwd_grid runs pixel() on the CPU.
#pragma once
#include <ATen/core/Tensor.h>

#include "utils/checks.h"
#include "utils/hd.h"

namespace gan3dkit {
namespace upfirdn {

// Taps of one output index along one axis: inputs first .. first + count - 1 with filter taps tap, tap + up, ...
struct Taps {
  int64_t first, count, tap;
};

// y[m] = sum_t u[m * down - pad0 + t] F[t] with u[j] = x[j / up] when j % up == 0 (0 <= j / up < in), else 0.
GAN3DKIT_HD Taps axis_taps(int64_t m, int64_t in, int64_t up, int64_t down, int64_t pad0, int64_t taps) {
  const int64_t j0 = m * down - pad0;
  int64_t t = ((-j0) % up + up) % up;  // first tap landing on a real (non-inserted) sample
  int64_t i = (j0 + t) / up;           // exact division
  if (i < 0) {                         // skip taps left of the image
    t += -i * up;
    i = 0;
  }
  int64_t n = t < taps ? (taps - 1 - t) / up + 1 : 0;
  n = n < in - i ? n : in - i;
  return {i, n > 0 ? n : 0, t};
}

// sum_k xr[c.first + k] * fr[c.tap + k * up]: one filter row against one input row.
template <typename T>
GAN3DKIT_HD T row_dot(const T* xr, const T* fr, const Taps& c, int64_t up) {
  T acc = T(0);
  for (int64_t k = 0; k < c.count; ++k) acc += xr[c.first + k] * fr[c.tap + k * up];
  return acc;
}

// One output pixel of plane xp [H, W]; F [fh, fw] is the effective filter (f rotated by 180 degrees unless flip,
// times gain), tx / ty the pixel's taps along x and y.
template <typename T>
GAN3DKIT_HD T pixel(const T* xp, int64_t W, const T* F, int64_t fw, int64_t upx, int64_t upy, const Taps& tx,
                    const Taps& ty) {
  T acc = T(0);
  for (int64_t k = 0; k < ty.count; ++k) acc += row_dot(xp + (ty.first + k) * W, F + (ty.tap + k * upy) * fw, tx, upx);
  return acc;
}

}  // namespace upfirdn
}  // namespace gan3dkit

at::Tensor upfirdn2d_cpu(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                         int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                         double gain);
// Test-only binding: upfirdn::pixel for every output pixel on the CPU (the CUDA launcher's body).
at::Tensor upfirdn2d_fwd_grid(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                              int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                              double gain);
// The effective filter of upfirdn::pixel (both launchers).
at::Tensor upfirdn2d_effective_filter(const at::Tensor& f, bool flip, double gain);
#ifdef WITH_CUDA
at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                          int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                          double gain);
#endif

inline void upfirdn2d_check(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                            int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1) {
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
}

inline at::Tensor upfirdn2d_fwd(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                                int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                                double gain) {
  upfirdn2d_check(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1);
  if (x.is_cuda()) {
#ifdef WITH_CUDA
    return upfirdn2d_cuda(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain);
#else
    GAN3DKIT_NO_CUDA("upfirdn2d_fwd");
#endif
  }
  return upfirdn2d_cpu(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain);
}
