// SPDX-License-Identifier: Apache-2.0
// CPU kernels of the ray marcher: one ray per iteration of an at::parallel_for (OpenMP) loop.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>
#include <limits>

#include "ray_march/ray_march.h"
#include "utils/math.h"

namespace {

constexpr double kTransmittanceEps = 1e-10;
constexpr double kDensityShift = 1.0;
constexpr int64_t kRayGrain = 64;

template <typename T>
void march_fwd(const T* colors, const T* dens, const T* z, int64_t R, int64_t S, int64_t C, bool white_back,
               T dmin, T dmax, T* rgb, T* depth, T* weights) {
  at::parallel_for(0, R, kRayGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* col = colors + r * S * C;
      const T* s = dens + r * S;
      const T* zr = z + r * S;
      T* out = rgb + r * C;
      T* w = weights + r * (S - 1);
      for (int64_t c = 0; c < C; ++c) out[c] = T(0);
      T trans = T(1), wsum = T(0), wz = T(0);
      for (int64_t i = 0; i < S - 1; ++i) {
        const T delta = zr[i + 1] - zr[i];
        const T sigma = gan3dkit::softplus(T(0.5) * (s[i] + s[i + 1]) - T(kDensityShift));
        const T alpha = T(1) - std::exp(-sigma * delta);
        const T wi = alpha * trans;
        w[i] = wi;
        const T* c0 = col + i * C;
        const T* c1 = c0 + C;
        for (int64_t c = 0; c < C; ++c) out[c] += wi * (T(0.5) * (c0[c] + c1[c]));
        wz += wi * (T(0.5) * (zr[i] + zr[i + 1]));
        wsum += wi;
        trans *= (T(1) - alpha + T(kTransmittanceEps));
      }
      T d = wz / wsum;
      if (std::isnan(d)) d = std::numeric_limits<T>::infinity();
      depth[r] = std::min(std::max(d, dmin), dmax);
      const T back = white_back ? T(1) - wsum : T(0);
      for (int64_t c = 0; c < C; ++c) out[c] = (out[c] + back) * T(2) - T(1);
    }
  });
}

template <typename T>
void march_bwd(const T* g_rgb, const T* g_depth, const T* g_w, const T* colors, const T* dens, const T* z,
               int64_t R, int64_t S, int64_t C, bool white_back, T dmin, T dmax, T* g_colors, T* g_dens) {
  at::parallel_for(0, R, kRayGrain, [&](int64_t r0, int64_t r1) {
    std::vector<T> alpha(S), trans(S), grad_w(S), x(S), delta(S), wts(S);
    for (int64_t r = r0; r < r1; ++r) {
      const T* col = colors + r * S * C;
      const T* s = dens + r * S;
      const T* zr = z + r * S;
      const T* gr = g_rgb + r * C;
      const T* gw = g_w + r * (S - 1);
      T* gc = g_colors + r * S * C;
      T* gs = g_dens + r * S;
      // Recompute the forward pass of this ray.
      T tr = T(1), wsum = T(0), wz = T(0);
      for (int64_t i = 0; i < S - 1; ++i) {
        delta[i] = zr[i + 1] - zr[i];
        x[i] = T(0.5) * (s[i] + s[i + 1]) - T(kDensityShift);
        const T sigma = gan3dkit::softplus(x[i]);
        alpha[i] = T(1) - std::exp(-sigma * delta[i]);
        trans[i] = tr;
        wts[i] = alpha[i] * tr;
        wz += wts[i] * (T(0.5) * (zr[i] + zr[i + 1]));
        wsum += wts[i];
        tr *= (T(1) - alpha[i] + T(kTransmittanceEps));
      }
      // Depth: passes a gradient only when finite and inside the clamp range (torch.clamp is inclusive).
      const T d_raw = wz / wsum;
      const T gd = (std::isfinite(d_raw) && d_raw >= dmin && d_raw <= dmax) ? g_depth[r] : T(0);
      T g_rgb_sum = T(0);
      for (int64_t c = 0; c < C; ++c) g_rgb_sum += gr[c];
      for (int64_t c = 0; c < S * C; ++c) gc[c] = T(0);
      for (int64_t i = 0; i < S - 1; ++i) {
        const T* c0 = col + i * C;
        const T* c1 = c0 + C;
        T g = gw[i];
        for (int64_t c = 0; c < C; ++c) g += T(2) * gr[c] * (T(0.5) * (c0[c] + c1[c]));
        if (white_back) g -= T(2) * g_rgb_sum;
        if (gd != T(0)) g += gd * (T(0.5) * (zr[i] + zr[i + 1]) - d_raw) / wsum;
        grad_w[i] = g;
        const T gcol = wts[i];  // d rgb_c / d colour_mid = w_i (times 2 g_rgb_c, times 1/2 per endpoint)
        T* gc0 = gc + i * C;
        T* gc1 = gc0 + C;
        for (int64_t c = 0; c < C; ++c) {
          const T v = gcol * gr[c];
          gc0[c] += v;
          gc1[c] += v;
        }
      }
      // Weights w_i = alpha_i * T_i with T_i = prod_{j<i} (1 - alpha_j + eps):
      // dL/dalpha_i = T_i * (G_i - R_i), R_i = sum_{k>i} G_k alpha_k prod_{i<j<k} s_j (reverse recurrence).
      for (int64_t i = 0; i < S; ++i) gs[i] = T(0);
      T rsum = T(0);
      for (int64_t i = S - 2; i >= 0; --i) {
        const T g_alpha = trans[i] * (grad_w[i] - rsum);
        rsum = grad_w[i] * alpha[i] + (T(1) - alpha[i] + T(kTransmittanceEps)) * rsum;
        // alpha = 1 - exp(-sigma delta): d alpha / d sigma = delta exp(-sigma delta); sigma = softplus(x).
        const T sigma = gan3dkit::softplus(x[i]);
        const T g_x = g_alpha * delta[i] * std::exp(-sigma * delta[i]) * gan3dkit::softplus_grad(x[i]);
        gs[i] += T(0.5) * g_x;
        gs[i + 1] += T(0.5) * g_x;
      }
    }
  });
}

}  // namespace

std::vector<at::Tensor> ray_march_fwd_cpu(const at::Tensor& colors, const at::Tensor& densities,
                                          const at::Tensor& depths, bool white_back, double depth_min,
                                          double depth_max) {
  GAN3DKIT_CHECK_CPU(colors);
  const int64_t R = colors.size(0), S = colors.size(1), C = colors.size(2);
  auto rgb = at::empty({R, C}, colors.options());
  auto depth = at::empty({R}, colors.options());
  auto weights = at::empty({R, S - 1}, colors.options());
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "ray_march_fwd_cpu", [&] {
    march_fwd<scalar_t>(colors.data_ptr<scalar_t>(), densities.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(), R,
                        S, C, white_back, static_cast<scalar_t>(depth_min), static_cast<scalar_t>(depth_max),
                        rgb.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>());
  });
  return {rgb, depth, weights};
}

std::vector<at::Tensor> ray_march_bwd_cpu(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                                          const at::Tensor& grad_weights, const at::Tensor& colors,
                                          const at::Tensor& densities, const at::Tensor& depths, bool white_back,
                                          double depth_min, double depth_max) {
  GAN3DKIT_CHECK_CPU(colors);
  const int64_t R = colors.size(0), S = colors.size(1), C = colors.size(2);
  auto g_colors = at::empty_like(colors);
  auto g_dens = at::empty_like(densities);
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "ray_march_bwd_cpu", [&] {
    march_bwd<scalar_t>(grad_rgb.data_ptr<scalar_t>(), grad_depth.data_ptr<scalar_t>(),
                        grad_weights.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(),
                        densities.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(), R, S, C, white_back,
                        static_cast<scalar_t>(depth_min), static_cast<scalar_t>(depth_max),
                        g_colors.data_ptr<scalar_t>(), g_dens.data_ptr<scalar_t>());
  });
  return {g_colors, g_dens};
}
