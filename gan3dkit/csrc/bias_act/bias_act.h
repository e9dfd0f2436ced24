// SPDX-License-Identifier: Apache-2.0
// Fused bias + activation + gain + clamp (StyleGAN2 semantics) and its derivatives, computed by one kernel in three
// modes so that the backward is itself differentiable (R1 in the discriminator needs the double backward).
//
// Activation codes (`act`): 0 linear, 1 relu, 2 lrelu, 3 tanh, 4 sigmoid, 5 elu, 6 selu, 7 softplus, 8 swish
// (the order of gan3dkit.ops.bias_act.ACTIVATIONS). With v = x + b (b broadcast along `dim`) and
// mask = [|gain * act(v)| <= clamp] (1 when clamp < 0, i.e. no clamp; torch.clamp's gradient mask):
//
// bias_act_fwd(x, b, dim, act, alpha, gain, clamp) -> y = clamp(gain * act(v, alpha), -clamp, clamp)
//   x: [...] contiguous float32/float64; b: [x.size(dim)] or empty (no bias); clamp < 0: no clamp.
// bias_act_bwd(g, x, b, dy, order, dim, act, alpha, gain, clamp) -> same shape as x
//   order 1: g * gain * act'(v) * mask          (g: the upstream gradient of y; dy unused, may be empty)
//   order 2: g * dy * gain * act''(v) * mask    (g: the upstream gradient of the order-1 output, dy: the order-1 g)
//   The gradient of the bias is the sum of these over every axis but `dim` (done by the caller).
//
// The per-element body (bias_act_element) is shared by bias_act_cpu.cpp and bias_act.cu, float math included: the
// float path uses the branch-free polynomials of utils/fast_math.h on both (double: libm).
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <type_traits>

#include "utils/checks.h"
#include "utils/fast_math.h"
#include "utils/hd.h"

namespace gan3dkit {
namespace bias_act_math {

enum Act { kLinear = 0, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSoftplusThreshold = 20.0;  // torch.nn.functional.softplus(beta=1, threshold=20)

// exp(v) - 1 for v <= 0: Taylor series near 0 (where exp(v) - 1 would cancel), fast::exp_neg(v) - 1 elsewhere.
GAN3DKIT_HD float expm1_neg(float v) {
  float p = 1.0f / 40320.0f;
  p = p * v + 1.0f / 5040.0f;
  p = p * v + 1.0f / 720.0f;
  p = p * v + 1.0f / 120.0f;
  p = p * v + 1.0f / 24.0f;
  p = p * v + 1.0f / 6.0f;
  p = p * v + 0.5f;
  p = p * v * v + v;  // relative error < 1e-9 for |v| < 0.25
  const float e = fast::exp_neg(v) - 1.0f;
  return v > -0.25f ? p : e;
}
GAN3DKIT_HD double expm1_neg(double v) { return std::expm1(v); }
GAN3DKIT_HD float exp_neg(float v) { return fast::exp_neg(v); }
GAN3DKIT_HD double exp_neg(double v) { return std::exp(v); }
GAN3DKIT_HD float sigmoid(float v) { return fast::sigmoid(v); }
GAN3DKIT_HD double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
GAN3DKIT_HD float softplus(float v) { return fast::softplus(v); }  // exactly v above 16 (float rounding)
GAN3DKIT_HD double softplus(double v) { return v > kSoftplusThreshold ? v : std::log1p(std::exp(v)); }

// Value (D = 0), first (D = 1) or second (D = 2) derivative of activation A at v.
template <typename T, int A, int D>
GAN3DKIT_HD T activation(T v, T alpha) {
  const T zero(0), one(1);
  if constexpr (A == kLinear) {
    return D == 0 ? v : (D == 1 ? one : zero);
  } else if constexpr (A == kRelu) {
    return D == 0 ? (v > zero ? v : zero) : (D == 1 ? (v > zero ? one : zero) : zero);
  } else if constexpr (A == kLrelu) {
    return D == 0 ? (v > zero ? v : v * alpha) : (D == 1 ? (v > zero ? one : alpha) : zero);
  } else if constexpr (A == kTanh) {
    const T e = expm1_neg(T(-2) * std::fabs(v));  // tanh|v| = -expm1(-2|v|) / (2 + expm1(-2|v|))
    const T a = -e / (T(2) + e);
    const T t = v < zero ? -a : a;
    return D == 0 ? t : (D == 1 ? one - t * t : T(-2) * t * (one - t * t));
  } else if constexpr (A == kSigmoid) {
    const T s = sigmoid(v);
    return D == 0 ? s : (D == 1 ? s * (one - s) : s * (one - s) * (one - T(2) * s));
  } else if constexpr (A == kElu || A == kSelu) {
    const T neg = v < zero ? v : zero;  // clamp keeps exp in range for v > 0
    const T scale = A == kSelu ? T(kSeluScale) : one;
    const T a = A == kSelu ? T(kSeluAlpha) : one;
    if constexpr (D == 0) return scale * (v > zero ? v : a * expm1_neg(neg));
    const T ex = scale * a * exp_neg(neg);
    return D == 1 ? (v > zero ? scale : ex) : (v > zero ? zero : ex);
  } else if constexpr (A == kSoftplus) {
    if constexpr (D == 0) return softplus(v);
    const T s = sigmoid(v);
    const bool lin = v > T(kSoftplusThreshold);  // torch passes the gradient unchanged above the threshold
    return D == 1 ? (lin ? one : s) : (lin ? zero : s * (one - s));
  } else {  // kSwish: v * sigmoid(v)
    const T s = sigmoid(v);
    if constexpr (D == 0) return v * s;
    return D == 1 ? s * (one + v * (one - s)) : s * (one - s) * (T(2) + v * (one - T(2) * s));
  }
}

}  // namespace bias_act_math

// One element, shared by the CPU and CUDA launchers: mode G = 0 the output, 1 the first-order gradient, 2 the
// second-order term (v = x + b; g, dy as in bias_act_bwd; clamp = +inf when there is none).
template <typename T, int A, int G>
GAN3DKIT_HD T bias_act_element(T v, T g, T dy, T alpha, T gain, T clamp) {
  using bias_act_math::activation;
  if constexpr (G == 0) {
    const T y = activation<T, A, 0>(v, alpha) * gain;
    return y < -clamp ? -clamp : (y > clamp ? clamp : y);  // NaN passes through, as torch.clamp
  } else {
    const T mask = std::fabs(activation<T, A, 0>(v, alpha) * gain) <= clamp ? T(1) : T(0);
    const T d = activation<T, A, G>(v, alpha) * gain * mask;
    return G == 1 ? g * d : g * dy * d;
  }
}

// Calls fn(std::integral_constant<int, A>()) for the runtime activation code act (both launchers use it).
template <typename Fn>
void bias_act_switch(int64_t act, Fn&& fn) {
  using namespace bias_act_math;
  switch (act) {
    case kLinear: return fn(std::integral_constant<int, kLinear>());
    case kRelu: return fn(std::integral_constant<int, kRelu>());
    case kLrelu: return fn(std::integral_constant<int, kLrelu>());
    case kTanh: return fn(std::integral_constant<int, kTanh>());
    case kSigmoid: return fn(std::integral_constant<int, kSigmoid>());
    case kElu: return fn(std::integral_constant<int, kElu>());
    case kSelu: return fn(std::integral_constant<int, kSelu>());
    case kSoftplus: return fn(std::integral_constant<int, kSoftplus>());
    default: return fn(std::integral_constant<int, kSwish>());
  }
}

}  // namespace gan3dkit

at::Tensor bias_act_cpu(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g, const at::Tensor& dy,
                        int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp);
#ifdef WITH_CUDA
at::Tensor bias_act_cuda(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g, const at::Tensor& dy,
                         int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp);
#endif

inline void bias_act_check(const at::Tensor& x, const at::Tensor& b, int64_t dim, int64_t act) {
  GAN3DKIT_CHECK_INPUT(x);
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "bias_act: the compiled kernel takes float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(act >= 0 && act <= 8, "bias_act: unknown activation code ", act);
  if (b.numel() > 0) {
    GAN3DKIT_CHECK_INPUT(b);
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim ", dim, " is out of range for a ", x.dim(), "-D input");
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must have shape [x.size(dim)]");
    TORCH_CHECK(b.scalar_type() == x.scalar_type() && b.device() == x.device(),
                "bias_act: b must match x's dtype and device");
  }
}

inline at::Tensor bias_act_dispatch(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g,
                                    const at::Tensor& dy, int64_t order, int64_t dim, int64_t act, double alpha,
                                    double gain, double clamp) {
  if (x.is_cuda()) {
#ifdef WITH_CUDA
    return bias_act_cuda(x, b, g, dy, order, dim, act, alpha, gain, clamp);
#else
    GAN3DKIT_NO_CUDA("bias_act");
#endif
  }
  return bias_act_cpu(x, b, g, dy, order, dim, act, alpha, gain, clamp);
}

inline at::Tensor bias_act_fwd(const at::Tensor& x, const at::Tensor& b, int64_t dim, int64_t act, double alpha,
                               double gain, double clamp) {
  bias_act_check(x, b, dim, act);
  return bias_act_dispatch(x, b, at::Tensor(), at::Tensor(), 0, dim, act, alpha, gain, clamp);
}

inline at::Tensor bias_act_bwd(const at::Tensor& g, const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy,
                               int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp) {
  bias_act_check(x, b, dim, act);
  TORCH_CHECK(order == 1 || order == 2, "bias_act_bwd: order must be 1 or 2, got ", order);
  GAN3DKIT_CHECK_INPUT(g);
  TORCH_CHECK(g.sizes() == x.sizes() && g.scalar_type() == x.scalar_type() && g.device() == x.device(),
              "bias_act_bwd: g must match x in shape, dtype and device");
  if (order == 2) {
    GAN3DKIT_CHECK_INPUT(dy);
    TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type() && dy.device() == x.device(),
                "bias_act_bwd: dy must match x in shape, dtype and device");
  }
  return bias_act_dispatch(x, b, g, dy, order, dim, act, alpha, gain, clamp);
}
