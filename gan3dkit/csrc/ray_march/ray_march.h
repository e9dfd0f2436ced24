// SPDX-License-Identifier: Apache-2.0
// EG3D's MipRayMarcher2 (midpoint quadrature, sigma = softplus(raw - 1)), forward and backward.
//
// ray_march_fwd(colors, densities, depths, white_back, depth_min, depth_max) -> {rgb, depth, weights}
//   colors:    [R, S, C] per-sample colours/features.
//   densities: [R, S]    raw densities (before the softplus).
//   depths:    [R, S]    sorted depths along each ray.
//   white_back: add 1 - sum(w) before the final x * 2 - 1.
//   depth_min, depth_max: clamp range of the output depth (EG3D: the global min/max of `depths`).
//   returns rgb [R, C], depth [R], weights [R, S-1].
// ray_march_bwd(grad_rgb [R, C], grad_depth [R], grad_weights [R, S-1], colors, densities, depths, white_back,
//               depth_min, depth_max) -> {grad_colors [R, S, C], grad_densities [R, S]}
//   First order only; depths are treated as constants (the Python wrapper falls back to the reference when they
//   need a gradient). An empty ray (sum w == 0) passes no gradient through its depth (the reference gives NaN).
//
// The per-ray bodies (ray_march_ray_fwd / ray_march_ray_bwd) are shared by ray_march_cpu.cpp and ray_march.cu.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <vector>

#include "utils/checks.h"
#include "utils/hd.h"
#include "utils/math.h"

namespace gan3dkit {

constexpr double kRayMarchTransmittanceEps = 1e-10;
constexpr double kRayMarchDensityShift = 1.0;

// One ray forward. col [S, C], s [S], zr [S] -> out [C], *depth, w [S - 1].
template <typename T>
GAN3DKIT_HD void ray_march_ray_fwd(const T* col, const T* s, const T* zr, int64_t S, int64_t C, bool white_back,
                                   T dmin, T dmax, T* out, T* depth, T* w) {
  for (int64_t c = 0; c < C; ++c) out[c] = T(0);
  T trans = T(1), wsum = T(0), wz = T(0);
  for (int64_t i = 0; i < S - 1; ++i) {
    const T delta = zr[i + 1] - zr[i];
    const T sigma = softplus(T(0.5) * (s[i] + s[i + 1]) - T(kRayMarchDensityShift));
    const T alpha = T(1) - std::exp(-sigma * delta);
    const T wi = alpha * trans;
    w[i] = wi;
    const T* c0 = col + i * C;
    const T* c1 = c0 + C;
    for (int64_t c = 0; c < C; ++c) out[c] += wi * (T(0.5) * (c0[c] + c1[c]));
    wz += wi * (T(0.5) * (zr[i] + zr[i + 1]));
    wsum += wi;
    trans *= (T(1) - alpha + T(kRayMarchTransmittanceEps));
  }
  T d = wz / wsum;
  if (std::isnan(d)) d = T(INFINITY);
  *depth = d < dmin ? dmin : (d > dmax ? dmax : d);
  const T back = white_back ? T(1) - wsum : T(0);
  for (int64_t c = 0; c < C; ++c) out[c] = (out[c] + back) * T(2) - T(1);
}

// One ray backward. gr [C], g_depth, gw [S - 1] -> gc [S, C], gs [S]; alpha, trans, grad_w: scratch [S] each.
template <typename T>
GAN3DKIT_HD void ray_march_ray_bwd(const T* gr, T g_depth, const T* gw, const T* col, const T* s, const T* zr,
                                   int64_t S, int64_t C, bool white_back, T dmin, T dmax, T* alpha, T* trans,
                                   T* grad_w, T* gc, T* gs) {
  // Recompute the forward pass of this ray.
  T tr = T(1), wsum = T(0), wz = T(0);
  for (int64_t i = 0; i < S - 1; ++i) {
    const T sigma = softplus(T(0.5) * (s[i] + s[i + 1]) - T(kRayMarchDensityShift));
    alpha[i] = T(1) - std::exp(-sigma * (zr[i + 1] - zr[i]));
    trans[i] = tr;
    const T wi = alpha[i] * tr;
    wz += wi * (T(0.5) * (zr[i] + zr[i + 1]));
    wsum += wi;
    tr *= (T(1) - alpha[i] + T(kRayMarchTransmittanceEps));
  }
  // Depth: passes a gradient only when finite and inside the clamp range (torch.clamp is inclusive).
  const T d_raw = wz / wsum;
  const T gd = (std::isfinite(d_raw) && d_raw >= dmin && d_raw <= dmax) ? g_depth : T(0);
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
    const T wi = alpha[i] * trans[i];  // d rgb_c / d colour_mid = w_i (times 2 g_rgb_c, times 1/2 per endpoint)
    T* gc0 = gc + i * C;
    T* gc1 = gc0 + C;
    for (int64_t c = 0; c < C; ++c) {
      const T v = wi * gr[c];
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
    rsum = grad_w[i] * alpha[i] + (T(1) - alpha[i] + T(kRayMarchTransmittanceEps)) * rsum;
    // alpha = 1 - exp(-sigma delta): d alpha / d sigma = delta exp(-sigma delta); sigma = softplus(x).
    const T x = T(0.5) * (s[i] + s[i + 1]) - T(kRayMarchDensityShift);
    const T delta = zr[i + 1] - zr[i];
    const T g_x = g_alpha * delta * std::exp(-softplus(x) * delta) * softplus_grad(x);
    gs[i] += T(0.5) * g_x;
    gs[i + 1] += T(0.5) * g_x;
  }
}

}  // namespace gan3dkit

std::vector<at::Tensor> ray_march_fwd_cpu(const at::Tensor& colors, const at::Tensor& densities,
                                          const at::Tensor& depths, bool white_back, double depth_min,
                                          double depth_max);
std::vector<at::Tensor> ray_march_bwd_cpu(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                                          const at::Tensor& grad_weights, const at::Tensor& colors,
                                          const at::Tensor& densities, const at::Tensor& depths, bool white_back,
                                          double depth_min, double depth_max);
#ifdef WITH_CUDA
std::vector<at::Tensor> ray_march_fwd_cuda(const at::Tensor& colors, const at::Tensor& densities,
                                           const at::Tensor& depths, bool white_back, double depth_min,
                                           double depth_max);
std::vector<at::Tensor> ray_march_bwd_cuda(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                                           const at::Tensor& grad_weights, const at::Tensor& colors,
                                           const at::Tensor& densities, const at::Tensor& depths, bool white_back,
                                           double depth_min, double depth_max);
#endif

inline void ray_march_check(const at::Tensor& colors, const at::Tensor& densities, const at::Tensor& depths) {
  GAN3DKIT_CHECK_INPUT(colors);
  GAN3DKIT_CHECK_INPUT(densities);
  GAN3DKIT_CHECK_INPUT(depths);
  GAN3DKIT_CHECK_DIM(colors, 3);
  GAN3DKIT_CHECK_DIM(densities, 2);
  GAN3DKIT_CHECK_DIM(depths, 2);
  TORCH_CHECK(colors.size(1) >= 2, "ray_march: need at least 2 samples per ray, got ", colors.size(1));
  TORCH_CHECK(densities.sizes() == depths.sizes() && densities.size(0) == colors.size(0) &&
                  densities.size(1) == colors.size(1),
              "ray_march: densities and depths must be [R, S] matching colors [R, S, C]");
  TORCH_CHECK(colors.scalar_type() == densities.scalar_type() && colors.scalar_type() == depths.scalar_type(),
              "ray_march: colors, densities and depths must share one dtype");
  TORCH_CHECK(colors.device() == densities.device() && colors.device() == depths.device(),
              "ray_march: all inputs must be on one device");
}

inline std::vector<at::Tensor> ray_march_fwd(const at::Tensor& colors, const at::Tensor& densities,
                                             const at::Tensor& depths, bool white_back, double depth_min,
                                             double depth_max) {
  ray_march_check(colors, densities, depths);
  if (colors.is_cuda()) {
#ifdef WITH_CUDA
    return ray_march_fwd_cuda(colors, densities, depths, white_back, depth_min, depth_max);
#else
    GAN3DKIT_NO_CUDA("ray_march_fwd");
#endif
  }
  return ray_march_fwd_cpu(colors, densities, depths, white_back, depth_min, depth_max);
}

inline std::vector<at::Tensor> ray_march_bwd(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                                             const at::Tensor& grad_weights, const at::Tensor& colors,
                                             const at::Tensor& densities, const at::Tensor& depths, bool white_back,
                                             double depth_min, double depth_max) {
  ray_march_check(colors, densities, depths);
  GAN3DKIT_CHECK_INPUT(grad_rgb);
  GAN3DKIT_CHECK_INPUT(grad_depth);
  GAN3DKIT_CHECK_INPUT(grad_weights);
  const int64_t R = colors.size(0), S = colors.size(1), C = colors.size(2);
  TORCH_CHECK(grad_rgb.numel() == R * C && grad_depth.numel() == R && grad_weights.numel() == R * (S - 1),
              "ray_march_bwd: gradient shapes do not match the forward outputs");
  if (colors.is_cuda()) {
#ifdef WITH_CUDA
    return ray_march_bwd_cuda(grad_rgb, grad_depth, grad_weights, colors, densities, depths, white_back, depth_min,
                              depth_max);
#else
    GAN3DKIT_NO_CUDA("ray_march_bwd");
#endif
  }
  return ray_march_bwd_cpu(grad_rgb, grad_depth, grad_weights, colors, densities, depths, white_back, depth_min,
                           depth_max);
}
