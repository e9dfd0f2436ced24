// SPDX-License-Identifier: Apache-2.0
// CUDA launcher of upfirdn2d: one thread per output pixel running upfirdn::pixel (upfirdn2d.h), which visits only
// the non-zero taps (polyphase). A straightforward first version (no shared-memory tiling).
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include "upfirdn2d/upfirdn2d.h"
#include "utils/cuda_utils.cuh"

namespace {

template <typename T>
__global__ void upfirdn2d_kernel(const T* __restrict__ x, const T* __restrict__ F, T* __restrict__ y, int64_t planes,
                                 int64_t H, int64_t W, int64_t fh, int64_t fw, int64_t upx, int64_t upy,
                                 int64_t downx, int64_t downy, int64_t px0, int64_t py0, int64_t OH, int64_t OW) {
  GAN3DKIT_CUDA_LOOP(idx, planes * OH * OW) {
    const int64_t ox = idx % OW, oy = (idx / OW) % OH, plane = idx / (OW * OH);
    const auto tx = gan3dkit::upfirdn::axis_taps(ox, W, upx, downx, px0, fw);
    const auto ty = gan3dkit::upfirdn::axis_taps(oy, H, upy, downy, py0, fh);
    y[idx] = gan3dkit::upfirdn::pixel(x + plane * H * W, W, F, fw, upx, upy, tx, ty);
  }
}

}  // namespace

at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                          int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                          double gain) {
  GAN3DKIT_CHECK_CUDA(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), fh = f.size(0), fw = f.size(1);
  const int64_t OW = (W * upx + padx0 + padx1 - fw + downx) / downx;
  const int64_t OH = (H * upy + pady0 + pady1 - fh + downy) / downy;
  auto y = at::empty({N, C, OH, OW}, x.options());
  if (y.numel() == 0) return y;
  const auto F = upfirdn2d_effective_filter(f, flip, gain);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cuda", [&] {
    upfirdn2d_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(y.numel()), gan3dkit::cuda::kThreads, 0,
                                 gan3dkit::cuda::stream()>>>(
        x.data_ptr<scalar_t>(), F.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N * C, H, W, fh, fw, upx, upy, downx,
        downy, padx0, pady0, OH, OW);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}
