// SPDX-License-Identifier: Apache-2.0
// CUDA launchers of the ray marcher: one thread per ray running the per-ray bodies of ray_march.h.
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include "ray_march/ray_march.h"
#include "utils/cuda_utils.cuh"

namespace {

template <typename T>
__global__ void march_fwd_kernel(const T* __restrict__ colors, const T* __restrict__ dens, const T* __restrict__ z,
                                 int64_t R, int64_t S, int64_t C, bool white_back, T dmin, T dmax, T* __restrict__ rgb,
                                 T* __restrict__ depth, T* __restrict__ weights) {
  GAN3DKIT_CUDA_LOOP(r, R) {
    gan3dkit::ray_march_ray_fwd(colors + r * S * C, dens + r * S, z + r * S, S, C, white_back, dmin, dmax,
                                rgb + r * C, depth + r, weights + r * (S - 1));
  }
}

// scratch: [3, R, S] (alpha, transmittance, grad of the weights) for the reverse recurrence.
template <typename T>
__global__ void march_bwd_kernel(const T* __restrict__ g_rgb, const T* __restrict__ g_depth,
                                 const T* __restrict__ g_w, const T* __restrict__ colors, const T* __restrict__ dens,
                                 const T* __restrict__ z, int64_t R, int64_t S, int64_t C, bool white_back, T dmin,
                                 T dmax, T* __restrict__ scratch, T* __restrict__ g_colors, T* __restrict__ g_dens) {
  GAN3DKIT_CUDA_LOOP(r, R) {
    gan3dkit::ray_march_ray_bwd(g_rgb + r * C, g_depth[r], g_w + r * (S - 1), colors + r * S * C, dens + r * S,
                                z + r * S, S, C, white_back, dmin, dmax, scratch + r * S, scratch + (R + r) * S,
                                scratch + (2 * R + r) * S, g_colors + r * S * C, g_dens + r * S);
  }
}

}  // namespace

std::vector<at::Tensor> ray_march_fwd_cuda(const at::Tensor& colors, const at::Tensor& densities,
                                           const at::Tensor& depths, bool white_back, double depth_min,
                                           double depth_max) {
  GAN3DKIT_CHECK_CUDA(colors);
  const c10::cuda::CUDAGuard guard(colors.device());
  const int64_t R = colors.size(0), S = colors.size(1), C = colors.size(2);
  auto rgb = at::empty({R, C}, colors.options());
  auto depth = at::empty({R}, colors.options());
  auto weights = at::empty({R, S - 1}, colors.options());
  if (R == 0) return {rgb, depth, weights};
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "ray_march_fwd_cuda", [&] {
    march_fwd_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(R), gan3dkit::cuda::kThreads, 0,
                                 gan3dkit::cuda::stream()>>>(
        colors.data_ptr<scalar_t>(), densities.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(), R, S, C,
        white_back, static_cast<scalar_t>(depth_min), static_cast<scalar_t>(depth_max), rgb.data_ptr<scalar_t>(),
        depth.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {rgb, depth, weights};
}

std::vector<at::Tensor> ray_march_bwd_cuda(const at::Tensor& grad_rgb, const at::Tensor& grad_depth,
                                           const at::Tensor& grad_weights, const at::Tensor& colors,
                                           const at::Tensor& densities, const at::Tensor& depths, bool white_back,
                                           double depth_min, double depth_max) {
  GAN3DKIT_CHECK_CUDA(colors);
  const c10::cuda::CUDAGuard guard(colors.device());
  const int64_t R = colors.size(0), S = colors.size(1), C = colors.size(2);
  auto g_colors = at::empty_like(colors);
  auto g_dens = at::empty_like(densities);
  if (R == 0) return {g_colors, g_dens};
  auto scratch = at::empty({3, R, S}, colors.options());
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "ray_march_bwd_cuda", [&] {
    march_bwd_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(R), gan3dkit::cuda::kThreads, 0,
                                 gan3dkit::cuda::stream()>>>(
        grad_rgb.data_ptr<scalar_t>(), grad_depth.data_ptr<scalar_t>(), grad_weights.data_ptr<scalar_t>(),
        colors.data_ptr<scalar_t>(), densities.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(), R, S, C,
        white_back, static_cast<scalar_t>(depth_min), static_cast<scalar_t>(depth_max), scratch.data_ptr<scalar_t>(),
        g_colors.data_ptr<scalar_t>(), g_dens.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {g_colors, g_dens};
}
