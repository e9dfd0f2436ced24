// SPDX-License-Identifier: Apache-2.0
// CUDA kernels of the fused tri-plane field: one thread per point. The forward keeps the point's features and
// outputs in registers/local memory (C <= 128, O <= 64); the backward recomputes them, scatters the plane
// gradients with atomicAdd (as grid_sample's backward does) and writes the per-point activations the weight
// gradients need, which two GEMMs then reduce.
// UNVERIFIED: compiled with nvcc against torch's headers, never run on a GPU (see docs/ops.md).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros_like.h>

#include "triplane_decode/triplane_decode.h"
#include "utils/cuda_utils.cuh"
#include "utils/math.h"

namespace {

constexpr int kMaxC = 128;
constexpr int kMaxO = 64;

struct Sizes {
  int64_t N, P, H, W, C, M, H1, O;
};

template <typename T>
struct Footprint {
  int64_t off[4];  // offsets of channel 0 of the nw, ne, sw, se corners inside the plane; -1 = outside
  T w[4];
  T fx, fy;
};

template <typename T>
__device__ __forceinline__ void footprint(T u, T v, int64_t H, int64_t W, int64_t C, Footprint<T>& f) {
  const T ix = ((u + T(1)) * T(W) - T(1)) / T(2);  // grid_sample, align_corners=False
  const T iy = ((v + T(1)) * T(H) - T(1)) / T(2);
  const T x0f = floor(ix), y0f = floor(iy);
  const T fx = ix - x0f, fy = iy - y0f;
  f.fx = fx;
  f.fy = fy;
  f.w[0] = (T(1) - fx) * (T(1) - fy);
  f.w[1] = fx * (T(1) - fy);
  f.w[2] = (T(1) - fx) * fy;
  f.w[3] = fx * fy;
  const bool finite = isfinite(ix) && isfinite(iy) && fabs(ix) < T(1e9) && fabs(iy) < T(1e9);
  const int64_t x0 = finite ? static_cast<int64_t>(x0f) : -2, y0 = finite ? static_cast<int64_t>(y0f) : -2;
  for (int k = 0; k < 4; ++k) {
    const int64_t x = x0 + (k & 1), y = y0 + (k >> 1);
    f.off[k] = (finite && x >= 0 && x < W && y >= 0 && y < H) ? (y * W + x) * C : -1;
  }
}

template <typename T>
__device__ __forceinline__ void project(const T* xyz, const T* proj, int64_t p, T scale, T& u, T& v) {
  const T x = xyz[0] * scale, y = xyz[1] * scale, z = xyz[2] * scale;
  const T* a = proj + p * 6;
  u = x * a[0] + y * a[1] + z * a[2];
  v = x * a[3] + y * a[4] + z * a[5];
}

// Plane-averaged features of point i into f[0, C).
template <typename T>
__device__ void features(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale, int64_t i, T* f) {
  const int64_t n = i / s.M, plane_size = s.H * s.W * s.C;
  for (int64_t c = 0; c < s.C; ++c) f[c] = T(0);
  for (int64_t p = 0; p < s.P; ++p) {
    T u, v;
    project(coords + i * 3, proj, p, scale, u, v);
    Footprint<T> fp;
    footprint(u, v, s.H, s.W, s.C, fp);
    const T* base = planes + (n * s.P + p) * plane_size;
    for (int k = 0; k < 4; ++k) {
      if (fp.off[k] < 0) continue;
      for (int64_t c = 0; c < s.C; ++c) f[c] += fp.w[k] * base[fp.off[k] + c];
    }
  }
  for (int64_t c = 0; c < s.C; ++c) f[c] /= T(s.P);
}

// Pre-activation outputs o[0, O) of the decoder for features f.
template <typename T>
__device__ void decoder(const Sizes& s, const T* f, const T* w1t, const T* b1, const T* w2t, const T* b2, T* o) {
  for (int64_t k = 0; k < s.O; ++k) o[k] = b2[k];
  for (int64_t j = 0; j < s.H1; ++j) {
    T h = b1[j];
    for (int64_t c = 0; c < s.C; ++c) h += f[c] * w1t[c * s.H1 + j];
    const T a = gan3dkit::softplus(h);
    for (int64_t k = 0; k < s.O; ++k) o[k] += a * w2t[j * s.O + k];
  }
}

template <typename T>
__global__ void fwd_kernel(Sizes s, const T* __restrict__ planes, const T* __restrict__ coords,
                           const T* __restrict__ proj, T scale, const T* __restrict__ w1t, const T* __restrict__ b1,
                           const T* __restrict__ w2t, const T* __restrict__ b2, T eps, T* __restrict__ out) {
  GAN3DKIT_CUDA_LOOP(i, s.N * s.M) {
    T f[kMaxC], o[kMaxO];
    features(s, planes, coords, proj, scale, i, f);
    decoder(s, f, w1t, b1, w2t, b2, o);
    T* d = out + i * s.O;
    d[0] = o[0];
    for (int64_t k = 1; k < s.O; ++k) d[k] = gan3dkit::sigmoid(o[k]) * (T(1) + T(2) * eps) - eps;
  }
}

// Per point: writes feat [C], hid [H1] (softplus activations), gh [H1] (grad of the FC1 pre-activations) and
// go [O] (grad of the FC2 pre-activations); scatters the plane gradients; writes the coordinate gradients.
template <typename T>
__global__ void bwd_kernel(Sizes s, const T* __restrict__ g_out, const T* __restrict__ planes,
                           const T* __restrict__ coords, const T* __restrict__ proj, T scale,
                           const T* __restrict__ w1t, const T* __restrict__ b1, const T* __restrict__ w2t,
                           const T* __restrict__ b2, T eps, bool need_coords, T* __restrict__ feat,
                           T* __restrict__ hid, T* __restrict__ gh, T* __restrict__ go, T* __restrict__ g_planes,
                           T* __restrict__ g_coords) {
  GAN3DKIT_CUDA_LOOP(i, s.N * s.M) {
    T f[kMaxC], o[kMaxO], gf[kMaxC];
    features(s, planes, coords, proj, scale, i, f);
    decoder(s, f, w1t, b1, w2t, b2, o);
    T* goi = go + i * s.O;
    const T* g = g_out + i * s.O;
    goi[0] = g[0];
    for (int64_t k = 1; k < s.O; ++k) {
      const T sg = gan3dkit::sigmoid(o[k]);
      goi[k] = g[k] * (T(1) + T(2) * eps) * sg * (T(1) - sg);
    }
    for (int64_t c = 0; c < s.C; ++c) {
      feat[i * s.C + c] = f[c];
      gf[c] = T(0);
    }
    for (int64_t j = 0; j < s.H1; ++j) {
      T h = b1[j];
      for (int64_t c = 0; c < s.C; ++c) h += f[c] * w1t[c * s.H1 + j];
      T acc = T(0);
      for (int64_t k = 0; k < s.O; ++k) acc += goi[k] * w2t[j * s.O + k];
      const T ghj = acc * gan3dkit::softplus_grad(h);
      hid[i * s.H1 + j] = gan3dkit::softplus(h);
      gh[i * s.H1 + j] = ghj;
      for (int64_t c = 0; c < s.C; ++c) gf[c] += ghj * w1t[c * s.H1 + j];
    }
    for (int64_t c = 0; c < s.C; ++c) gf[c] /= T(s.P);
    const int64_t n = i / s.M, plane_size = s.H * s.W * s.C;
    T gxyz[3] = {T(0), T(0), T(0)};
    for (int64_t p = 0; p < s.P; ++p) {
      T u, v;
      project(coords + i * 3, proj, p, scale, u, v);
      Footprint<T> fp;
      footprint(u, v, s.H, s.W, s.C, fp);
      T* dst = g_planes + (n * s.P + p) * plane_size;
      const T* base = planes + (n * s.P + p) * plane_size;
      T dot[4];
      for (int k = 0; k < 4; ++k) {
        dot[k] = T(0);
        if (fp.off[k] < 0) continue;
        for (int64_t c = 0; c < s.C; ++c) {
          atomicAdd(dst + fp.off[k] + c, fp.w[k] * gf[c]);
          dot[k] += gf[c] * base[fp.off[k] + c];
        }
      }
      if (!need_coords) continue;
      const T gix = (T(1) - fp.fy) * (dot[1] - dot[0]) + fp.fy * (dot[3] - dot[2]);
      const T giy = (T(1) - fp.fx) * (dot[2] - dot[0]) + fp.fx * (dot[3] - dot[1]);
      const T gu = gix * T(s.W) / T(2), gv = giy * T(s.H) / T(2);
      const T* a = proj + p * 6;
      for (int d = 0; d < 3; ++d) gxyz[d] += (gu * a[d] + gv * a[3 + d]) * scale;
    }
    if (need_coords)
      for (int d = 0; d < 3; ++d) g_coords[i * 3 + d] = gxyz[d];
  }
}

Sizes sizes_of(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& w1t, const at::Tensor& w2t) {
  const Sizes s{planes.size(0), planes.size(1), planes.size(2), planes.size(3), planes.size(4), coords.size(1),
                w1t.size(1),    w2t.size(1)};
  TORCH_CHECK(s.C <= kMaxC && s.O <= kMaxO, "triplane_decode (CUDA): at most ", kMaxC, " plane channels and ",
              kMaxO, " decoder outputs, got ", s.C, " and ", s.O);
  return s;
}

}  // namespace

at::Tensor triplane_decode_fwd_cuda(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                    double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                    const at::Tensor& b2, double color_eps) {
  GAN3DKIT_CHECK_CUDA(planes);
  const c10::cuda::CUDAGuard guard(planes.device());
  const Sizes s = sizes_of(planes, coords, w1t, w2t);
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
  const Sizes s = sizes_of(planes, coords, w1t, w2t);
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
