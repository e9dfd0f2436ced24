// SPDX-License-Identifier: Apache-2.0
// CUDA launcher of inverse-CDF sampling: one thread per draw running sample_pdf_item (sample_pdf.h).
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include "sample_pdf/sample_pdf.h"
#include "utils/cuda_utils.cuh"

namespace {

template <typename T>
__global__ void sample_kernel(const T* __restrict__ bins, const T* __restrict__ cdf, const T* __restrict__ u,
                              int64_t R, int64_t B, int64_t K, T eps, T* __restrict__ out) {
  GAN3DKIT_CUDA_LOOP(idx, R * K) {
    const int64_t r = idx / K;
    out[idx] = sample_pdf_item(cdf + r * (B + 1), bins + r * (B + 1), B, u[idx], eps);
  }
}

}  // namespace

at::Tensor sample_pdf_fwd_cuda(const at::Tensor& bins, const at::Tensor& cdf, const at::Tensor& u, double eps) {
  GAN3DKIT_CHECK_CUDA(bins);
  const c10::cuda::CUDAGuard guard(bins.device());
  const int64_t R = cdf.size(0), B = cdf.size(1) - 1, K = u.size(1);
  auto out = at::empty({R, K}, bins.options());
  if (R * K == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(bins.scalar_type(), "sample_pdf_fwd_cuda", [&] {
    sample_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(R * K), gan3dkit::cuda::kThreads, 0,
                              gan3dkit::cuda::stream()>>>(bins.data_ptr<scalar_t>(), cdf.data_ptr<scalar_t>(),
                                                          u.data_ptr<scalar_t>(), R, B, K,
                                                          static_cast<scalar_t>(eps), out.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
