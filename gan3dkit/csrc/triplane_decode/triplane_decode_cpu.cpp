// SPDX-License-Identifier: Apache-2.0
// CPU launchers of the fused tri-plane field: blocks of points per at::parallel_for (OpenMP) task running the
// per-point pieces of triplane_decode.h; the block's features, hidden activations and outputs stay in a small
// per-task buffer instead of full-size temporaries. Also the test-only grid bindings (the CUDA bodies on the CPU).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <vector>

#include "triplane_decode/triplane_decode.h"

namespace {

using gan3dkit::triplane::Sizes;
namespace tp = gan3dkit::triplane;

constexpr int64_t kBlock = 32;  // points per block (features, hidden and outputs of a block fit in L1/L2)

// Features (mean over planes), pre-activations and outputs of points [i0, i0 + nb) (flattened N*M index).
template <typename T>
void block_forward(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale, const T* w1t,
                   const T* b1, const T* w2t, const T* b2, int64_t i0, int64_t nb, T* feat, T* hpre, T* hid, T* opre) {
  for (int64_t t = 0; t < nb; ++t) {
    tp::features(s, planes, coords, proj, scale, i0 + t, feat + t * s.C);
    tp::fc1(s, feat + t * s.C, w1t, b1, hpre + t * s.H1);
  }
  tp::hidden(nb * s.H1, hpre, hid);  // one contiguous run: vectorises
  for (int64_t t = 0; t < nb; ++t) tp::fc2(s, hid + t * s.H1, w2t, b2, opre + t * s.O);
}

template <typename T>
void fwd_impl(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale, const T* w1t, const T* b1,
              const T* w2t, const T* b2, T eps, T* out) {
  const int64_t total = s.N * s.M, nblocks = (total + kBlock - 1) / kBlock;
  at::parallel_for(0, nblocks, 1, [&](int64_t blk0, int64_t blk1) {
    std::vector<T> feat(kBlock * s.C), hpre(kBlock * s.H1), hid(kBlock * s.H1), opre(kBlock * s.O);
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t i0 = blk * kBlock, nb = std::min(kBlock, total - i0);
      block_forward(s, planes, coords, proj, scale, w1t, b1, w2t, b2, i0, nb, feat.data(), hpre.data(), hid.data(),
                    opre.data());
      for (int64_t t = 0; t < nb; ++t) tp::output(s, opre.data() + t * s.O, eps, out + (i0 + t) * s.O);
    }
  });
}

template <typename T>
void bwd_impl(const Sizes& s, const T* g_out, const T* planes, const T* coords, const T* proj, T scale,
              const T* w1t, const T* b1, const T* w2t, const T* b2, T eps, bool need_coords, T* g_planes,
              T* g_coords, T* g_w1t, T* g_b1, T* g_w2t, T* g_b2) {
  const int64_t total = s.N * s.M, C = s.C, H1 = s.H1, O = s.O;
  const int64_t plane_size = s.H * s.W * C, planes_numel = s.N * s.P * plane_size;
  // One partition of the points per thread; each partition owns gradient accumulators (partition 0 writes
  // straight into the outputs), so the scatter's atomic_add is a plain add here. Extra plane buffers are capped at
  // about 1 GiB in total.
  int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (total + kBlock - 1) / kBlock));
  const int64_t cap = std::max<int64_t>(1, 1 + (int64_t(1) << 30) / std::max<int64_t>(1, planes_numel * sizeof(T)));
  parts = std::min(parts, cap);
  std::vector<std::vector<T>> plane_acc(parts - 1, std::vector<T>(planes_numel, T(0)));
  std::vector<std::vector<T>> w_acc(parts, std::vector<T>(C * H1 + H1 + H1 * O + O, T(0)));
  const int64_t per = (total + parts - 1) / parts;
  at::parallel_for(0, parts, 1, [&](int64_t q0, int64_t q1) {
    std::vector<T> feat(kBlock * C), hpre(kBlock * H1), hid(kBlock * H1), opre(kBlock * O);
    std::vector<T> go(kBlock * O), gh(kBlock * H1), gf(C);
    for (int64_t q = q0; q < q1; ++q) {
      T* gp = q == 0 ? g_planes : plane_acc[q - 1].data();
      T* gw1 = w_acc[q].data();
      T* gb1 = gw1 + C * H1;
      T* gw2 = gb1 + H1;
      T* gb2 = gw2 + H1 * O;
      const int64_t end = std::min(total, (q + 1) * per);
      for (int64_t i0 = q * per; i0 < end; i0 += kBlock) {
        const int64_t nb = std::min(kBlock, end - i0);
        block_forward(s, planes, coords, proj, scale, w1t, b1, w2t, b2, i0, nb, feat.data(), hpre.data(),
                      hid.data(), opre.data());
        for (int64_t t = 0; t < nb; ++t) {
          const int64_t i = i0 + t;
          T* d = go.data() + t * O;
          T* ghr = gh.data() + t * H1;
          tp::grad_output(s, g_out + i * O, opre.data() + t * O, eps, d);
          tp::grad_hidden(s, d, w2t, hpre.data() + t * H1, ghr);
          tp::grad_features(s, ghr, w1t, gf.data());
          tp::scatter(s, planes, coords, proj, scale, i, gf.data(), gp, need_coords, g_coords + i * 3);
          // Weight gradients: this partition's share of the sums of outer products (the CUDA launcher's GEMMs).
          const T* h = hid.data() + t * H1;
          const T* f = feat.data() + t * C;
          for (int64_t k = 0; k < O; ++k) gb2[k] += d[k];
          for (int64_t j = 0; j < H1; ++j) {
            const T hj = h[j];
            T* gwr = gw2 + j * O;
#pragma omp simd
            for (int64_t k = 0; k < O; ++k) gwr[k] += hj * d[k];
          }
          for (int64_t j = 0; j < H1; ++j) gb1[j] += ghr[j];
          for (int64_t c = 0; c < C; ++c) {
            const T fc = f[c];
            T* gwr = gw1 + c * H1;
#pragma omp simd
            for (int64_t j = 0; j < H1; ++j) gwr[j] += fc * ghr[j];
          }
        }
      }
    }
  });
  // Reduce the per-partition accumulators.
  if (parts > 1) {
    at::parallel_for(0, planes_numel, 1 << 14, [&](int64_t a, int64_t b) {
      for (const auto& acc : plane_acc)
        for (int64_t k = a; k < b; ++k) g_planes[k] += acc[k];
    });
  }
  for (const auto& acc : w_acc) {
    const T* src = acc.data();
    for (int64_t k = 0; k < C * H1; ++k) g_w1t[k] += src[k];
    for (int64_t k = 0; k < H1; ++k) g_b1[k] += src[C * H1 + k];
    for (int64_t k = 0; k < H1 * O; ++k) g_w2t[k] += src[C * H1 + H1 + k];
    for (int64_t k = 0; k < O; ++k) g_b2[k] += src[C * H1 + H1 + H1 * O + k];
  }
}

}  // namespace

at::Tensor triplane_decode_fwd_cpu(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                   double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                   const at::Tensor& b2, double color_eps) {
  GAN3DKIT_CHECK_CPU(planes);
  const Sizes s = tp::sizes_of(planes, coords, w1t, w2t);
  auto out = at::empty({s.N, s.M, s.O}, planes.options());
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "triplane_decode_fwd_cpu", [&] {
    fwd_impl<scalar_t>(s, planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(), proj.data_ptr<scalar_t>(),
                       static_cast<scalar_t>(scale), w1t.data_ptr<scalar_t>(), b1.data_ptr<scalar_t>(),
                       w2t.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>(), static_cast<scalar_t>(color_eps),
                       out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> triplane_decode_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& planes,
                                                const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                const at::Tensor& b2, double color_eps, bool need_coords) {
  GAN3DKIT_CHECK_CPU(planes);
  const Sizes s = tp::sizes_of(planes, coords, w1t, w2t);
  auto g_planes = at::zeros_like(planes);
  auto g_coords = at::zeros_like(coords);
  auto g_w1t = at::zeros_like(w1t), g_b1 = at::zeros_like(b1), g_w2t = at::zeros_like(w2t),
       g_b2 = at::zeros_like(b2);
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "triplane_decode_bwd_cpu", [&] {
    bwd_impl<scalar_t>(s, grad_out.data_ptr<scalar_t>(), planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(),
                       proj.data_ptr<scalar_t>(), static_cast<scalar_t>(scale), w1t.data_ptr<scalar_t>(),
                       b1.data_ptr<scalar_t>(), w2t.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>(),
                       static_cast<scalar_t>(color_eps), need_coords, g_planes.data_ptr<scalar_t>(),
                       g_coords.data_ptr<scalar_t>(), g_w1t.data_ptr<scalar_t>(), g_b1.data_ptr<scalar_t>(),
                       g_w2t.data_ptr<scalar_t>(), g_b2.data_ptr<scalar_t>());
  });
  return {g_planes, g_coords, g_w1t, g_b1, g_w2t, g_b2};
}

// ------------------------------------------------------------------------------ test-only: the CUDA bodies on CPU
at::Tensor triplane_decode_fwd_grid(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                    double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                    const at::Tensor& b2, double color_eps) {
  triplane_decode_check(planes, coords, proj, w1t, b1, w2t, b2);
  GAN3DKIT_CHECK_CPU(planes);
  const Sizes s = tp::sizes_of(planes, coords, w1t, w2t);
  tp::check_point_arrays(s, "triplane_decode (grid)");
  auto out = at::empty({s.N, s.M, s.O}, planes.options());
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "triplane_decode_fwd_grid", [&] {
    for (int64_t i = 0; i < s.N * s.M; ++i)  // one CUDA thread per point
      tp::forward_point<scalar_t>(s, planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(),
                                  proj.data_ptr<scalar_t>(), static_cast<scalar_t>(scale), w1t.data_ptr<scalar_t>(),
                                  b1.data_ptr<scalar_t>(), w2t.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>(),
                                  static_cast<scalar_t>(color_eps), i, out.data_ptr<scalar_t>() + i * s.O);
  });
  return out;
}

std::vector<at::Tensor> triplane_decode_bwd_grid(const at::Tensor& grad_out, const at::Tensor& planes,
                                                 const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                 const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                 const at::Tensor& b2, double color_eps, bool need_coords) {
  triplane_decode_check(planes, coords, proj, w1t, b1, w2t, b2);
  GAN3DKIT_CHECK_CPU(planes);
  const Sizes s = tp::sizes_of(planes, coords, w1t, w2t);
  tp::check_point_arrays(s, "triplane_decode (grid)");
  const int64_t T_ = s.N * s.M;
  auto g_planes = at::zeros_like(planes);
  auto g_coords = at::zeros_like(coords);
  auto feat = at::empty({T_, s.C}, planes.options());
  auto hid = at::empty({T_, s.H1}, planes.options());
  auto gh = at::empty({T_, s.H1}, planes.options());
  auto go = at::empty({T_, s.O}, planes.options());
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "triplane_decode_bwd_grid", [&] {
    for (int64_t i = 0; i < T_; ++i)  // one CUDA thread per point, serialised (the scatter is not partitioned)
      tp::backward_point<scalar_t>(
          s, grad_out.data_ptr<scalar_t>(), planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(),
          proj.data_ptr<scalar_t>(), static_cast<scalar_t>(scale), w1t.data_ptr<scalar_t>(), b1.data_ptr<scalar_t>(),
          w2t.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>(), static_cast<scalar_t>(color_eps), need_coords, i,
          feat.data_ptr<scalar_t>(), hid.data_ptr<scalar_t>(), gh.data_ptr<scalar_t>(), go.data_ptr<scalar_t>(),
          g_planes.data_ptr<scalar_t>(), g_coords.data_ptr<scalar_t>());
  });
  return {g_planes, g_coords, at::matmul(feat.t(), gh), at::sum(gh, {0}), at::matmul(hid.t(), go), at::sum(go, {0})};
}
