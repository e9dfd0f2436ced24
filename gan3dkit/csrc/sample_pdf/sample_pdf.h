// SPDX-License-Identifier: Apache-2.0
// Inverse-CDF sampling of a piecewise-constant density (NeRF / EG3D importance sampling), no gradient.
//
// sample_pdf_fwd(bins, cdf, u, eps) -> samples
//   bins: [R, B+1] non-decreasing bin edges.
//   cdf:  [R, B+1] CDF at the edges (cdf[:, 0] = 0), computed by the caller with the reference's torch ops so
//         that u exactly on a CDF value (u = 1 with det=True) picks the same bin as the reference.
//   u:    [R, K]   uniform draws in [0, 1] (drawn by the caller, so the random stream equals the reference's).
//   eps:  CDF intervals narrower than eps map to their left edge.
//   returns samples [R, K] (same dtype as bins).
#pragma once
#include <ATen/core/Tensor.h>

#include "utils/checks.h"
#include "utils/hd.h"

// The per-sample body shared by the CPU and CUDA launchers: the first edge with cdf > u (searchsorted right=True,
// by binary search), then linear interpolation inside the bin [lo, hi] around it.
//   c, e: one row of cdf and bins ([B + 1] each); u: one draw.
template <typename T>
GAN3DKIT_HD T sample_pdf_item(const T* c, const T* e, int64_t B, T u, T eps) {
  int64_t lo_s = 0, hi_s = B + 1;  // first index with c > u in [0, B + 1]
  while (lo_s < hi_s) {
    const int64_t mid = (lo_s + hi_s) / 2;
    if (c[mid] > u)
      hi_s = mid;
    else
      lo_s = mid + 1;
  }
  const int64_t lo = lo_s - 1 > 0 ? lo_s - 1 : 0, hi = lo_s < B ? lo_s : B;
  T width = c[hi] - c[lo];
  if (width < eps) width = T(1);
  return e[lo] + (u - c[lo]) / width * (e[hi] - e[lo]);
}

at::Tensor sample_pdf_fwd_cpu(const at::Tensor& bins, const at::Tensor& cdf, const at::Tensor& u, double eps);
#ifdef WITH_CUDA
at::Tensor sample_pdf_fwd_cuda(const at::Tensor& bins, const at::Tensor& cdf, const at::Tensor& u, double eps);
#endif

inline at::Tensor sample_pdf_fwd(const at::Tensor& bins, const at::Tensor& cdf, const at::Tensor& u,
                                 double eps) {
  GAN3DKIT_CHECK_INPUT(bins);
  GAN3DKIT_CHECK_INPUT(cdf);
  GAN3DKIT_CHECK_INPUT(u);
  GAN3DKIT_CHECK_DIM(bins, 2);
  GAN3DKIT_CHECK_DIM(cdf, 2);
  GAN3DKIT_CHECK_DIM(u, 2);
  TORCH_CHECK(bins.sizes() == cdf.sizes() && u.size(0) == bins.size(0),
              "sample_pdf: bins and cdf must be [R, B+1] and u [R, K]");
  TORCH_CHECK(cdf.size(1) >= 2, "sample_pdf: need at least one bin");
  TORCH_CHECK(bins.scalar_type() == cdf.scalar_type() && bins.scalar_type() == u.scalar_type(),
              "sample_pdf: bins, cdf and u must share one dtype");
  if (bins.is_cuda()) {
#ifdef WITH_CUDA
    return sample_pdf_fwd_cuda(bins, cdf, u, eps);
#else
    GAN3DKIT_NO_CUDA("sample_pdf_fwd");
#endif
  }
  return sample_pdf_fwd_cpu(bins, cdf, u, eps);
}
