// SPDX-License-Identifier: Apache-2.0
// CUDA kernels of the ray marcher: one thread per ray, the same arithmetic as ray_march_cpu.cpp.
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include "ray_march/ray_march.h"
#include "utils/cuda_utils.cuh"
#include "utils/math.h"

namespace {

constexpr double kTransmittanceEps = 1e-10;
constexpr double kDensityShift = 1.0;

template <typename T>
__global__ void march_fwd_kernel(const T* __restrict__ colors, const T* __restrict__ dens, const T* __restrict__ z,
                                 int64_t R, int64_t S, int64_t C, bool white_back, T dmin, T dmax, T* __restrict__ rgb,
                                 T* __restrict__ depth, T* __restrict__ weights) {
  GAN3DKIT_CUDA_LOOP(r, R) {
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
      const T alpha = T(1) - exp(-sigma * delta);
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
    if (isnan(d)) d = T(INFINITY);
    depth[r] = d < dmin ? dmin : (d > dmax ? dmax : d);
    const T back = white_back ? T(1) - wsum : T(0);
    for (int64_t c = 0; c < C; ++c) out[c] = (out[c] + back) * T(2) - T(1);
  }
}

// scratch: [3, R, S] (alpha, transmittance, grad of the weights) for the reverse recurrence.
template <typename T>
__global__ void march_bwd_kernel(const T* __restrict__ g_rgb, const T* __restrict__ g_depth,
                                 const T* __restrict__ g_w, const T* __restrict__ colors, const T* __restrict__ dens,
                                 const T* __restrict__ z, int64_t R, int64_t S, int64_t C, bool white_back, T dmin,
                                 T dmax, T* __restrict__ scratch, T* __restrict__ g_colors, T* __restrict__ g_dens) {
  GAN3DKIT_CUDA_LOOP(r, R) {
    const T* col = colors + r * S * C;
    const T* s = dens + r * S;
    const T* zr = z + r * S;
    const T* gr = g_rgb + r * C;
    const T* gw = g_w + r * (S - 1);
    T* gc = g_colors + r * S * C;
    T* gs = g_dens + r * S;
    T* alpha = scratch + r * S;
    T* trans = scratch + (R + r) * S;
    T* grad_w = scratch + (2 * R + r) * S;
    T tr = T(1), wsum = T(0), wz = T(0);
    for (int64_t i = 0; i < S - 1; ++i) {
      const T sigma = gan3dkit::softplus(T(0.5) * (s[i] + s[i + 1]) - T(kDensityShift));
      alpha[i] = T(1) - exp(-sigma * (zr[i + 1] - zr[i]));
      trans[i] = tr;
      const T wi = alpha[i] * tr;
      wz += wi * (T(0.5) * (zr[i] + zr[i + 1]));
      wsum += wi;
      tr *= (T(1) - alpha[i] + T(kTransmittanceEps));
    }
    const T d_raw = wz / wsum;
    const T gd = (isfinite(d_raw) && d_raw >= dmin && d_raw <= dmax) ? g_depth[r] : T(0);
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
      const T wi = alpha[i] * trans[i];
      for (int64_t c = 0; c < C; ++c) {
        gc[i * C + c] += wi * gr[c];
        gc[(i + 1) * C + c] += wi * gr[c];
      }
    }
    for (int64_t i = 0; i < S; ++i) gs[i] = T(0);
    T rsum = T(0);
    for (int64_t i = S - 2; i >= 0; --i) {
      const T g_alpha = trans[i] * (grad_w[i] - rsum);
      rsum = grad_w[i] * alpha[i] + (T(1) - alpha[i] + T(kTransmittanceEps)) * rsum;
      const T x = T(0.5) * (s[i] + s[i + 1]) - T(kDensityShift);
      const T delta = zr[i + 1] - zr[i];
      const T g_x = g_alpha * delta * exp(-gan3dkit::softplus(x) * delta) * gan3dkit::softplus_grad(x);
      gs[i] += T(0.5) * g_x;
      gs[i + 1] += T(0.5) * g_x;
    }
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
