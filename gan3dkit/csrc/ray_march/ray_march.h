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
#pragma once
#include <ATen/core/Tensor.h>
#include <vector>

#include "utils/checks.h"

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
