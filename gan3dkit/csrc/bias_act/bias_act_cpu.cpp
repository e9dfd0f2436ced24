// SPDX-License-Identifier: Apache-2.0
// CPU launcher of bias_act: one pass over x per mode (value, first or second derivative) calling bias_act_element
// (bias_act.h), branch-free per element so GCC vectorises the contiguous runs; at::parallel_for over chunks.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "bias_act/bias_act.h"

namespace {

constexpr int64_t kGrain = 16384;

struct Params {
  double alpha, gain, clamp;  // clamp = +inf when there is none
};

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
      o[j] = gan3dkit::bias_act_element<T, A, G>(xs[j] + bias, G >= 1 ? gs[j] : T(0), G == 2 ? ds[j] : T(0), alpha, gain, clamp);
  };
  auto seg_vec = [&](int64_t i, int64_t n, const T* bs) {
    const T* xs = x + i;
    const T* gs = G >= 1 ? g + i : nullptr;
    const T* ds = G == 2 ? dy + i : nullptr;
    T* o = out + i;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      o[j] = gan3dkit::bias_act_element<T, A, G>(xs[j] + bs[j], G >= 1 ? gs[j] : T(0), G == 2 ? ds[j] : T(0), alpha, gain, clamp);
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
  gan3dkit::bias_act_switch(act, [&](auto tag) {
    run<T, decltype(tag)::value, G>(x, b, g, dy, out, total, C, inner, p);
  });
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
