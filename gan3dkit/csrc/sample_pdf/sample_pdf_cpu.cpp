// SPDX-License-Identifier: Apache-2.0
// CPU launcher of inverse-CDF sampling: rows over an at::parallel_for (OpenMP) loop, sample_pdf_item per draw.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include "sample_pdf/sample_pdf.h"

namespace {

template <typename T>
void sample_rows(const T* bins, const T* cdf, const T* u, int64_t R, int64_t B, int64_t K, T eps, T* out) {
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* c = cdf + r * (B + 1);
      const T* e = bins + r * (B + 1);
      for (int64_t k = 0; k < K; ++k) out[r * K + k] = sample_pdf_item(c, e, B, u[r * K + k], eps);
    }
  });
}

}  // namespace

at::Tensor sample_pdf_fwd_cpu(const at::Tensor& bins, const at::Tensor& cdf, const at::Tensor& u, double eps) {
  GAN3DKIT_CHECK_CPU(bins);
  const int64_t R = cdf.size(0), B = cdf.size(1) - 1, K = u.size(1);
  auto out = at::empty({R, K}, bins.options());
  AT_DISPATCH_FLOATING_TYPES(bins.scalar_type(), "sample_pdf_fwd_cpu", [&] {
    sample_rows<scalar_t>(bins.data_ptr<scalar_t>(), cdf.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(), R, B, K,
                          static_cast<scalar_t>(eps), out.data_ptr<scalar_t>());
  });
  return out;
}
