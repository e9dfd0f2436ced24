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
