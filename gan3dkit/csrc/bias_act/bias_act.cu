// SPDX-License-Identifier: Apache-2.0
// CUDA kernel of bias_act: one thread per element, the three modes of bias_act.h (value, first and second
// derivative) with CUDA's libm (expm1, tanh, log1p) instead of the CPU kernel's vectorisable float approximations.
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty_like.h>

#include <limits>

#include "bias_act/bias_act.h"
#include "utils/cuda_utils.cuh"

namespace {

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

// Value (D = 0), first (D = 1) or second (D = 2) derivative of activation `act` at v (codes of bias_act.h).
template <typename T, int D>
__device__ __forceinline__ T activation(int act, T v, T alpha) {
  const T zero(0), one(1);
  switch (act) {
    case 0:  // linear
      return D == 0 ? v : (D == 1 ? one : zero);
    case 1:  // relu
      return D == 0 ? (v > zero ? v : zero) : (D == 1 ? (v > zero ? one : zero) : zero);
    case 2:  // lrelu
      return D == 0 ? (v > zero ? v : v * alpha) : (D == 1 ? (v > zero ? one : alpha) : zero);
    case 3: {  // tanh
      const T t = tanh(v);
      return D == 0 ? t : (D == 1 ? one - t * t : T(-2) * t * (one - t * t));
    }
    case 4: {  // sigmoid
      const T s = one / (one + exp(-v));
      return D == 0 ? s : (D == 1 ? s * (one - s) : s * (one - s) * (one - T(2) * s));
    }
    case 5:
    case 6: {  // elu, selu
      const T scale = act == 6 ? T(kSeluScale) : one, a = act == 6 ? T(kSeluAlpha) : one;
      const T neg = v < zero ? v : zero;
      if (D == 0) return scale * (v > zero ? v : a * expm1(neg));
      const T ex = scale * a * exp(neg);
      return D == 1 ? (v > zero ? scale : ex) : (v > zero ? zero : ex);
    }
    case 7: {  // softplus (torch threshold 20)
      if (D == 0) return v > T(20) ? v : log1p(exp(v));
      const T s = one / (one + exp(-v));
      return D == 1 ? (v > T(20) ? one : s) : (v > T(20) ? zero : s * (one - s));
    }
    default: {  // swish
      const T s = one / (one + exp(-v));
      if (D == 0) return v * s;
      return D == 1 ? s * (one + v * (one - s)) : s * (one - s) * (T(2) + v * (one - T(2) * s));
    }
  }
}

template <typename T, int G>
__global__ void bias_act_kernel(const T* __restrict__ x, const T* __restrict__ b, const T* __restrict__ g,
                                const T* __restrict__ dy, T* __restrict__ out, int64_t total, int64_t C,
                                int64_t inner, int act, T alpha, T gain, T clamp) {
  GAN3DKIT_CUDA_LOOP(i, total) {
    const T v = x[i] + (b != nullptr ? b[(i / inner) % C] : T(0));
    if (G == 0) {
      const T y = activation<T, 0>(act, v, alpha) * gain;
      out[i] = y < -clamp ? -clamp : (y > clamp ? clamp : y);
    } else {
      const T mask = fabs(activation<T, 0>(act, v, alpha) * gain) <= clamp ? T(1) : T(0);
      const T d = activation<T, G>(act, v, alpha) * gain * mask;
      out[i] = G == 1 ? g[i] * d : g[i] * dy[i] * d;
    }
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
    if (order == 0)
      bias_act_kernel<scalar_t, 0><<<blocks, threads, 0, stream>>>(x.data_ptr<scalar_t>(), bp, gp, dp,
                                                                   out.data_ptr<scalar_t>(), total, C, inner,
                                                                   int(act), a, gn, cl);
    else if (order == 1)
      bias_act_kernel<scalar_t, 1><<<blocks, threads, 0, stream>>>(x.data_ptr<scalar_t>(), bp, gp, dp,
                                                                   out.data_ptr<scalar_t>(), total, C, inner,
                                                                   int(act), a, gn, cl);
    else
      bias_act_kernel<scalar_t, 2><<<blocks, threads, 0, stream>>>(x.data_ptr<scalar_t>(), bp, gp, dp,
                                                                   out.data_ptr<scalar_t>(), total, C, inner,
                                                                   int(act), a, gn, cl);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
