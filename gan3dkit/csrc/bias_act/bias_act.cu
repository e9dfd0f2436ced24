// SPDX-License-Identifier: Apache-2.0
// CUDA launcher of bias_act: one thread per element running bias_act_element (bias_act.h) in one of its three
// modes (value, first and second derivative); the same body and float math as the CPU launcher.
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty_like.h>

#include <limits>

#include "bias_act/bias_act.h"
#include "utils/cuda_utils.cuh"

namespace {

template <typename T, int A, int G>
__global__ void bias_act_kernel(const T* __restrict__ x, const T* __restrict__ b, const T* __restrict__ g,
                                const T* __restrict__ dy, T* __restrict__ out, int64_t total, int64_t C,
                                int64_t inner, T alpha, T gain, T clamp) {
  GAN3DKIT_CUDA_LOOP(i, total) {
    const T v = x[i] + (b != nullptr ? b[(i / inner) % C] : T(0));
    out[i] = gan3dkit::bias_act_element<T, A, G>(v, G >= 1 ? g[i] : T(0), G == 2 ? dy[i] : T(0), alpha, gain, clamp);
  }
}

}  // namespace

at::Tensor bias_act_cuda(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g, const at::Tensor& dy,
                         int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp) {
  GAN3DKIT_CHECK_CUDA(x);
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t total = x.numel();
  if (total == 0) return out;
  const bool has_bias = b.defined() && b.numel() > 0;
  int64_t C = 1, inner = 1;
  if (has_bias) {
    C = x.size(dim);
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  }
  const double c = clamp < 0 ? std::numeric_limits<double>::infinity() : clamp;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_cuda", [&] {
    const scalar_t* bp = has_bias ? b.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gp = order >= 1 ? g.data_ptr<scalar_t>() : nullptr;
    const scalar_t* dp = order == 2 ? dy.data_ptr<scalar_t>() : nullptr;
    const auto blocks = gan3dkit::cuda::blocks_for(total);
    const auto threads = gan3dkit::cuda::kThreads;
    const auto stream = gan3dkit::cuda::stream();
    const auto a = static_cast<scalar_t>(alpha), gn = static_cast<scalar_t>(gain), cl = static_cast<scalar_t>(c);
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    gan3dkit::bias_act_switch(act, [&](auto tag) {
      constexpr int A = decltype(tag)::value;
      if (order == 0)
        bias_act_kernel<scalar_t, A, 0><<<blocks, threads, 0, stream>>>(xp, bp, gp, dp, op, total, C, inner, a, gn, cl);
      else if (order == 1)
        bias_act_kernel<scalar_t, A, 1><<<blocks, threads, 0, stream>>>(xp, bp, gp, dp, op, total, C, inner, a, gn, cl);
      else
        bias_act_kernel<scalar_t, A, 2><<<blocks, threads, 0, stream>>>(xp, bp, gp, dp, op, total, C, inner, a, gn, cl);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
