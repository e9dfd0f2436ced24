// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the CUDA kernels: the current torch stream and device guard, launch checks, grid sizes.
// UNVERIFIED: compiled with nvcc (tools/check_cuda_sources.py) but never run on a GPU yet (see docs/ops.md).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>

namespace gan3dkit {
namespace cuda {

constexpr int kThreads = 256;

inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(1) << 30)));
}

inline cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

}  // namespace cuda
}  // namespace gan3dkit

// Grid-stride loop over [0, n).
#define GAN3DKIT_CUDA_LOOP(i, n)                                                                  \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                      \
       i += int64_t(blockDim.x) * gridDim.x)
