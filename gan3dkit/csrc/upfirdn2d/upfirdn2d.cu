// SPDX-License-Identifier: Apache-2.0
// CUDA kernel of upfirdn2d: one thread per output pixel visiting only the non-zero taps (polyphase), as the CPU
// kernel's border path does. A straightforward first version (no shared-memory tiling).
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include "upfirdn2d/upfirdn2d.h"
#include "utils/cuda_utils.cuh"

namespace {

// Taps of output index m along one axis: inputs first, first + 1, ... (count of them) with taps tap, tap + up, ...
__device__ __forceinline__ void axis_taps(int64_t m, int64_t in, int64_t up, int64_t down, int64_t pad0,
                                          int64_t taps, int64_t& first, int64_t& count, int64_t& tap) {
  const int64_t j0 = m * down - pad0;
  int64_t t = ((-j0) % up + up) % up;
  int64_t i = (j0 + t) / up;
  if (i < 0) {
    t += -i * up;
    i = 0;
  }
  int64_t n = t < taps ? (taps - 1 - t) / up + 1 : 0;
  n = n < in - i ? n : in - i;
  first = i;
  count = n > 0 ? n : 0;
  tap = t;
}

template <typename T>
__global__ void upfirdn2d_kernel(const T* __restrict__ x, const T* __restrict__ f, T* __restrict__ y, int64_t planes,
                                 int64_t H, int64_t W, int64_t fh, int64_t fw, int64_t upx, int64_t upy,
                                 int64_t downx, int64_t downy, int64_t px0, int64_t py0, int64_t OH, int64_t OW,
                                 bool flip, T gain) {
  GAN3DKIT_CUDA_LOOP(idx, planes * OH * OW) {
    const int64_t ox = idx % OW, oy = (idx / OW) % OH, plane = idx / (OW * OH);
    int64_t ix0, nx, tx0, iy0, ny, ty0;
    axis_taps(ox, W, upx, downx, px0, fw, ix0, nx, tx0);
    axis_taps(oy, H, upy, downy, py0, fh, iy0, ny, ty0);
    const T* xp = x + plane * H * W;
    T acc = T(0);
    for (int64_t ky = 0; ky < ny; ++ky) {
      const int64_t ty = ty0 + ky * upy;
      const int64_t fy = flip ? ty : fh - 1 - ty;
      const T* xr = xp + (iy0 + ky) * W + ix0;
      for (int64_t kx = 0; kx < nx; ++kx) {
        const int64_t tx = tx0 + kx * upx;
        acc += xr[kx] * f[fy * fw + (flip ? tx : fw - 1 - tx)];
      }
    }
    y[idx] = acc * gain;
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
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cuda", [&] {
    upfirdn2d_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(y.numel()), gan3dkit::cuda::kThreads, 0,
                                 gan3dkit::cuda::stream()>>>(
        x.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N * C, H, W, fh, fw, upx, upy, downx,
        downy, padx0, pady0, OH, OW, flip, static_cast<scalar_t>(gain));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}
