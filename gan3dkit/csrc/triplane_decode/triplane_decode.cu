// SPDX-License-Identifier: Apache-2.0
// CUDA launchers of the fused tri-plane field: one thread per point running forward_point / backward_point
// (triplane_decode.h), which keep a point's arrays in registers/local memory (C, H1 <= 128, O <= 64); the backward
// scatters the plane gradients through gan3dkit::atomic_add (as grid_sample's backward does) and writes the
// per-point activations the weight gradients need, which two GEMMs then reduce.
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros_like.h>

#include "triplane_decode/triplane_decode.h"
#include "utils/cuda_utils.cuh"

namespace {

using gan3dkit::triplane::Sizes;
namespace tp = gan3dkit::triplane;

template <typename T>
__global__ void fwd_kernel(Sizes s, const T* __restrict__ planes, const T* __restrict__ coords,
                           const T* __restrict__ proj, T scale, const T* __restrict__ w1t, const T* __restrict__ b1,
                           const T* __restrict__ w2t, const T* __restrict__ b2, T eps, T* __restrict__ out) {
  GAN3DKIT_CUDA_LOOP(i, s.N * s.M) {
    tp::forward_point(s, planes, coords, proj, scale, w1t, b1, w2t, b2, eps, i, out + i * s.O);
  }
}

template <typename T>
__global__ void bwd_kernel(Sizes s, const T* __restrict__ g_out, const T* __restrict__ planes,
                           const T* __restrict__ coords, const T* __restrict__ proj, T scale,
                           const T* __restrict__ w1t, const T* __restrict__ b1, const T* __restrict__ w2t,
                           const T* __restrict__ b2, T eps, bool need_coords, T* __restrict__ feat,
                           T* __restrict__ hid, T* __restrict__ gh, T* __restrict__ go, T* __restrict__ g_planes,
                           T* __restrict__ g_coords) {
  GAN3DKIT_CUDA_LOOP(i, s.N * s.M) {
    tp::backward_point(s, g_out, planes, coords, proj, scale, w1t, b1, w2t, b2, eps, need_coords, i, feat, hid, gh,
                       go, g_planes, g_coords);
  }
}

Sizes checked_sizes(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& w1t, const at::Tensor& w2t) {
  const Sizes s = tp::sizes_of(planes, coords, w1t, w2t);
  tp::check_point_arrays(s, "triplane_decode (CUDA)");
  return s;
}

}  // namespace

at::Tensor triplane_decode_fwd_cuda(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                    double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                    const at::Tensor& b2, double color_eps) {
  GAN3DKIT_CHECK_CUDA(planes);
  const c10::cuda::CUDAGuard guard(planes.device());
  const Sizes s = checked_sizes(planes, coords, w1t, w2t);
  auto out = at::empty({s.N, s.M, s.O}, planes.options());
  if (s.N * s.M == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "triplane_decode_fwd_cuda", [&] {
    fwd_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(s.N * s.M), gan3dkit::cuda::kThreads, 0,
                           gan3dkit::cuda::stream()>>>(
        s, planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(), proj.data_ptr<scalar_t>(),
        static_cast<scalar_t>(scale), w1t.data_ptr<scalar_t>(), b1.data_ptr<scalar_t>(), w2t.data_ptr<scalar_t>(),
        b2.data_ptr<scalar_t>(), static_cast<scalar_t>(color_eps), out.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::vector<at::Tensor> triplane_decode_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& planes,
                                                 const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                 const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                 const at::Tensor& b2, double color_eps, bool need_coords) {
  GAN3DKIT_CHECK_CUDA(planes);
  const c10::cuda::CUDAGuard guard(planes.device());
  const Sizes s = checked_sizes(planes, coords, w1t, w2t);
  const int64_t T_ = s.N * s.M;
  auto g_planes = at::zeros_like(planes);
  auto g_coords = at::zeros_like(coords);
  if (T_ == 0)
    return {g_planes, g_coords, at::zeros_like(w1t), at::zeros_like(b1), at::zeros_like(w2t), at::zeros_like(b2)};
  auto feat = at::empty({T_, s.C}, planes.options());
  auto hid = at::empty({T_, s.H1}, planes.options());
  auto gh = at::empty({T_, s.H1}, planes.options());
  auto go = at::empty({T_, s.O}, planes.options());
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "triplane_decode_bwd_cuda", [&] {
    bwd_kernel<scalar_t><<<gan3dkit::cuda::blocks_for(T_), gan3dkit::cuda::kThreads, 0,
                           gan3dkit::cuda::stream()>>>(
        s, grad_out.data_ptr<scalar_t>(), planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(),
        proj.data_ptr<scalar_t>(), static_cast<scalar_t>(scale), w1t.data_ptr<scalar_t>(), b1.data_ptr<scalar_t>(),
        w2t.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>(), static_cast<scalar_t>(color_eps), need_coords,
        feat.data_ptr<scalar_t>(), hid.data_ptr<scalar_t>(), gh.data_ptr<scalar_t>(), go.data_ptr<scalar_t>(),
        g_planes.data_ptr<scalar_t>(), g_coords.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // Weight gradients: sums over points of outer products (cuBLAS through ATen).
  auto g_w1t = at::matmul(feat.t(), gh);
  auto g_b1 = at::sum(gh, {0});
  auto g_w2t = at::matmul(hid.t(), go);
  auto g_b2 = at::sum(go, {0});
  return {g_planes, g_coords, g_w1t, g_b1, g_w2t, g_b2};
}
