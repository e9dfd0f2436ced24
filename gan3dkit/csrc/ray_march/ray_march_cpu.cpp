// SPDX-License-Identifier: Apache-2.0
// CPU launchers of the ray marcher: rays over an at::parallel_for (OpenMP) loop, the per-ray bodies of ray_march.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>

#include <vector>

#include "ray_march/ray_march.h"

namespace {

constexpr int64_t kRayGrain = 64;

template <typename T>
void march_fwd(const T* colors, const T* dens, const T* z, int64_t R, int64_t S, int64_t C, bool white_back,
               T dmin, T dmax, T* rgb, T* depth, T* weights) {
  at::parallel_for(0, R, kRayGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      gan3dkit::ray_march_ray_fwd(colors + r * S * C, dens + r * S, z + r * S, S, C, white_back, dmin, dmax,
                                  rgb + r * C, depth + r, weights + r * (S - 1));
  });
}

template <typename T>
void march_bwd(const T* g_rgb, const T* g_depth, const T* g_w, const T* colors, const T* dens, const T* z,
               int64_t R, int64_t S, int64_t C, bool white_back, T dmin, T dmax, T* g_colors, T* g_dens) {
  at::parallel_for(0, R, kRayGrain, [&](int64_t r0, int64_t r1) {
    std::vector<T> scratch(3 * S);  // alpha, transmittance, grad of the weights of the current ray
    for (int64_t r = r0; r < r1; ++r)
      gan3dkit::ray_march_ray_bwd(g_rgb + r * C, g_depth[r], g_w + r * (S - 1), colors + r * S * C, dens + r * S,
                                  z + r * S, S, C, white_back, dmin, dmax, scratch.data(), scratch.data() + S,
                                  scratch.data() + 2 * S, g_colors + r * S * C, g_dens + r * S);
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
