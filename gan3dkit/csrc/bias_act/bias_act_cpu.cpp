// SPDX-License-Identifier: Apache-2.0
// CPU kernel of bias_act: one pass over x per mode (value, first or second derivative), branch-free per element so
// GCC vectorises the contiguous runs; at::parallel_for (OpenMP) over chunks of elements.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "bias_act/bias_act.h"
#include "utils/fast_math.h"

namespace {

enum Act { kLinear = 0, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSoftplusThreshold = 20.0;  // torch.nn.functional.softplus(beta=1, threshold=20)
constexpr int64_t kGrain = 16384;

// exp(v) - 1 for v <= 0: Taylor series near 0 (where exp(v) - 1 would cancel), fast::exp_neg(v) - 1 elsewhere.
inline float expm1_neg(float v) {
  float p = 1.0f / 40320.0f;
  p = p * v + 1.0f / 5040.0f;
  p = p * v + 1.0f / 720.0f;
  p = p * v + 1.0f / 120.0f;
  p = p * v + 1.0f / 24.0f;
  p = p * v + 1.0f / 6.0f;
  p = p * v + 0.5f;
  p = p * v * v + v;  // relative error < 1e-9 for |v| < 0.25
  const float e = gan3dkit::fast::exp_neg(v) - 1.0f;
  return v > -0.25f ? p : e;
}
inline double expm1_neg(double v) { return std::expm1(v); }
inline float exp_neg(float v) { return gan3dkit::fast::exp_neg(v); }
inline double exp_neg(double v) { return std::exp(v); }
inline float sigmoid(float v) { return gan3dkit::fast::sigmoid(v); }
inline double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
inline float softplus(float v) { return gan3dkit::fast::softplus(v); }  // exactly v above 16 (float rounding)
inline double softplus(double v) { return v > kSoftplusThreshold ? v : std::log1p(std::exp(v)); }

// Value (D = 0), first (D = 1) or second (D = 2) derivative of activation A at v.
template <typename T, int A, int D>
inline T activation(T v, T alpha) {
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
    const T neg = std::min(v, zero);  // select-free clamp keeps exp in range for v > 0
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

struct Params {
  double alpha, gain, clamp;  // clamp = +inf when there is none
};

// One element: mode 0 the output, mode 1 the first-order gradient, mode 2 the second-order term.
template <typename T, int A, int G>
inline T element(T v, T g, T dy, T alpha, T gain, T clamp) {
  if constexpr (G == 0) {
    const T y = activation<T, A, 0>(v, alpha) * gain;
    return y < -clamp ? -clamp : (y > clamp ? clamp : y);  // NaN passes through, as torch.clamp
  } else {
    T mask = T(1);
    if constexpr (A != kLinear) {  // linear: |gain * v| <= clamp needs the value too, handled below
      mask = std::fabs(activation<T, A, 0>(v, alpha) * gain) <= clamp ? T(1) : T(0);
    } else {
      mask = std::fabs(v * gain) <= clamp ? T(1) : T(0);
    }
    const T d = activation<T, A, G>(v, alpha) * gain * mask;
    return G == 1 ? g * d : g * dy * d;
  }
}

template <typename T, int A, int G>
void run(const T* x, const T* b, const T* g, const T* dy, T* out, int64_t total, int64_t C, int64_t inner,
         const Params& p) {
  const T alpha = T(p.alpha), gain = T(p.gain), clamp = T(p.clamp);
  // Contiguous runs with a constant bias (inner > 1) or with the bias varying along the run (inner == 1).
  auto seg_const = [&](int64_t i, int64_t n, T bias) {
    const T* xs = x + i;
    const T* gs = G >= 1 ? g + i : nullptr;
    const T* ds = G == 2 ? dy + i : nullptr;
    T* o = out + i;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      o[j] = element<T, A, G>(xs[j] + bias, G >= 1 ? gs[j] : T(0), G == 2 ? ds[j] : T(0), alpha, gain, clamp);
  };
  auto seg_vec = [&](int64_t i, int64_t n, const T* bs) {
    const T* xs = x + i;
    const T* gs = G >= 1 ? g + i : nullptr;
    const T* ds = G == 2 ? dy + i : nullptr;
    T* o = out + i;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      o[j] = element<T, A, G>(xs[j] + bs[j], G >= 1 ? gs[j] : T(0), G == 2 ? ds[j] : T(0), alpha, gain, clamp);
  };
  at::parallel_for(0, total, kGrain, [&](int64_t i0, int64_t i1) {
    int64_t i = i0;
    if (b != nullptr && inner == 1) {
      while (i < i1) {
        const int64_t c0 = i % C, n = std::min(i1 - i, C - c0);
        seg_vec(i, n, b + c0);
        i += n;
      }
    } else {
      while (i < i1) {
        const int64_t r = i / inner, n = std::min(i1 - i, (r + 1) * inner - i);
        seg_const(i, n, b != nullptr ? b[r % C] : T(0));
        i += n;
      }
    }
  });
}

template <typename T, int G>
void run_act(int64_t act, const T* x, const T* b, const T* g, const T* dy, T* out, int64_t total, int64_t C,
             int64_t inner, const Params& p) {
  switch (act) {
    case kLinear: return run<T, kLinear, G>(x, b, g, dy, out, total, C, inner, p);
    case kRelu: return run<T, kRelu, G>(x, b, g, dy, out, total, C, inner, p);
    case kLrelu: return run<T, kLrelu, G>(x, b, g, dy, out, total, C, inner, p);
    case kTanh: return run<T, kTanh, G>(x, b, g, dy, out, total, C, inner, p);
    case kSigmoid: return run<T, kSigmoid, G>(x, b, g, dy, out, total, C, inner, p);
    case kElu: return run<T, kElu, G>(x, b, g, dy, out, total, C, inner, p);
    case kSelu: return run<T, kSelu, G>(x, b, g, dy, out, total, C, inner, p);
    case kSoftplus: return run<T, kSoftplus, G>(x, b, g, dy, out, total, C, inner, p);
    default: return run<T, kSwish, G>(x, b, g, dy, out, total, C, inner, p);
  }
}

}  // namespace

at::Tensor bias_act_cpu(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g, const at::Tensor& dy,
                        int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp) {
  GAN3DKIT_CHECK_CPU(x);
  auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t total = x.numel();
  if (total == 0) return out;
  const bool has_bias = b.defined() && b.numel() > 0;
  int64_t C = 1, inner = total;
  if (has_bias) {
    C = x.size(dim);
    inner = 1;
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  }
  const Params p{alpha, gain, clamp < 0 ? std::numeric_limits<double>::infinity() : clamp};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* bp = has_bias ? b.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gp = order >= 1 ? g.data_ptr<scalar_t>() : nullptr;
    const scalar_t* dp = order == 2 ? dy.data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.data_ptr<scalar_t>();
    if (order == 0) run_act<scalar_t, 0>(act, xp, bp, gp, dp, op, total, C, inner, p);
    else if (order == 1) run_act<scalar_t, 1>(act, xp, bp, gp, dp, op, total, C, inner, p);
    else run_act<scalar_t, 2>(act, xp, bp, gp, dp, op, total, C, inner, p);
  });
  return out;
}
