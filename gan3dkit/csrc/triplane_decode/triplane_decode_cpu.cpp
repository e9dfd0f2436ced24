// SPDX-License-Identifier: Apache-2.0
// CPU kernels of the fused tri-plane field: blocks of points per at::parallel_for (OpenMP) task; the block's
// features, hidden activations and outputs stay in a small per-task buffer instead of full-size temporaries.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "triplane_decode/triplane_decode.h"
#include "utils/fast_math.h"

namespace {

constexpr int64_t kBlock = 32;  // points per block (features, hidden and outputs of a block fit in L1/L2)

struct Sizes {
  int64_t N, P, H, W, C, M, H1, O;
};

// Bilinear footprint of one point on one plane (grid_sample, align_corners=False, zeros padding).
template <typename T>
struct Footprint {
  int64_t off[4];  // element offset of channel 0 of corners nw, ne, sw, se inside the plane; -1 = outside
  T w[4];          // bilinear weights
  T fx, fy;        // fractional position (for d/dx, d/dy)
};

template <typename T>
inline void footprint(T u, T v, int64_t H, int64_t W, int64_t C, Footprint<T>& f) {
  const T ix = ((u + T(1)) * T(W) - T(1)) / T(2);
  const T iy = ((v + T(1)) * T(H) - T(1)) / T(2);
  const T x0f = std::floor(ix), y0f = std::floor(iy);
  const T fx = ix - x0f, fy = iy - y0f;
  f.fx = fx;
  f.fy = fy;
  f.w[0] = (T(1) - fx) * (T(1) - fy);
  f.w[1] = fx * (T(1) - fy);
  f.w[2] = (T(1) - fx) * fy;
  f.w[3] = fx * fy;
  // Far-away points: keep the integer conversion defined (any out-of-range corner reads zero anyway).
  const bool finite = std::isfinite(ix) && std::isfinite(iy) && std::fabs(ix) < T(1e9) && std::fabs(iy) < T(1e9);
  const int64_t x0 = finite ? static_cast<int64_t>(x0f) : -2, y0 = finite ? static_cast<int64_t>(y0f) : -2;
  for (int k = 0; k < 4; ++k) {
    const int64_t x = x0 + (k & 1), y = y0 + (k >> 1);
    f.off[k] = (finite && x >= 0 && x < W && y >= 0 && y < H) ? (y * W + x) * C : -1;
  }
}

template <typename T>
inline void project(const T* xyz, const T* proj, int64_t p, T scale, T& u, T& v) {
  const T x = xyz[0] * scale, y = xyz[1] * scale, z = xyz[2] * scale;
  const T* a = proj + p * 6;
  u = x * a[0] + y * a[1] + z * a[2];
  v = x * a[3] + y * a[4] + z * a[5];
}

// Features (mean over planes), pre-activations and outputs of points [i0, i0 + nb) (flattened N*M index).
template <typename T>
void block_forward(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale, const T* __restrict__ w1t,
                   const T* __restrict__ b1, const T* __restrict__ w2t, const T* __restrict__ b2, int64_t i0,
                   int64_t nb, T* __restrict__ feat, T* __restrict__ hpre, T* __restrict__ hid,
                   T* __restrict__ opre) {
  const int64_t C = s.C, H1 = s.H1, O = s.O, plane_size = s.H * s.W * C;
  for (int64_t t = 0; t < nb; ++t) {
    const int64_t i = i0 + t, n = i / s.M;
    T* f = feat + t * C;
    for (int64_t c = 0; c < C; ++c) f[c] = T(0);
    for (int64_t p = 0; p < s.P; ++p) {
      T u, v;
      project(coords + i * 3, proj, p, scale, u, v);
      Footprint<T> fp;
      footprint(u, v, s.H, s.W, C, fp);
      const T* base = planes + (n * s.P + p) * plane_size;
      for (int k = 0; k < 4; ++k) {
        if (fp.off[k] < 0) continue;
        const T* src = base + fp.off[k];
        const T wk = fp.w[k];
        for (int64_t c = 0; c < C; ++c) f[c] += wk * src[c];
      }
    }
    for (int64_t c = 0; c < C; ++c) f[c] /= T(s.P);
  }
  // FC1: hpre[t, :] = b1 + sum_c feat[t, c] * w1t[c, :]
  for (int64_t t = 0; t < nb; ++t) {
    T* h = hpre + t * H1;
    for (int64_t j = 0; j < H1; ++j) h[j] = b1[j];
    for (int64_t c = 0; c < C; ++c) {
      const T fc = feat[t * C + c];
      const T* wr = w1t + c * H1;
      for (int64_t j = 0; j < H1; ++j) h[j] += fc * wr[j];
    }
  }
  for (int64_t k = 0; k < nb * H1; ++k) hid[k] = gan3dkit::fast::softplus(hpre[k]);
  // FC2: opre[t, :] = b2 + sum_j hid[t, j] * w2t[j, :]
  for (int64_t t = 0; t < nb; ++t) {
    T* o = opre + t * O;
    for (int64_t k = 0; k < O; ++k) o[k] = b2[k];
    for (int64_t j = 0; j < H1; ++j) {
      const T hj = hid[t * H1 + j];
      const T* wr = w2t + j * O;
      for (int64_t k = 0; k < O; ++k) o[k] += hj * wr[k];
    }
  }
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
      T* dst = out + i0 * s.O;
      for (int64_t t = 0; t < nb; ++t) {
        const T* o = opre.data() + t * s.O;
        T* d = dst + t * s.O;
        d[0] = o[0];
        for (int64_t k = 1; k < s.O; ++k) d[k] = gan3dkit::fast::sigmoid(o[k]) * (T(1) + T(2) * eps) - eps;
      }
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
  // straight into the outputs). Extra plane buffers are capped at about 1 GiB in total.
  int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (total + kBlock - 1) / kBlock));
  const int64_t cap = std::max<int64_t>(1, 1 + (int64_t(1) << 30) / std::max<int64_t>(1, planes_numel * sizeof(T)));
  parts = std::min(parts, cap);
  std::vector<std::vector<T>> plane_acc(parts - 1, std::vector<T>(planes_numel, T(0)));
  std::vector<std::vector<T>> w_acc(parts, std::vector<T>(C * H1 + H1 + H1 * O + O, T(0)));
  const int64_t per = (total + parts - 1) / parts;
  at::parallel_for(0, parts, 1, [&](int64_t q0, int64_t q1) {
    std::vector<T> feat(kBlock * C), hpre(kBlock * H1), hid(kBlock * H1), opre(kBlock * O);
    std::vector<T> go(kBlock * O), gh(kBlock * H1), gf(kBlock * C);
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
        // Output activations.
        for (int64_t t = 0; t < nb; ++t) {
          const T* g = g_out + (i0 + t) * O;
          T* d = go.data() + t * O;
          d[0] = g[0];
          for (int64_t k = 1; k < O; ++k) {
            const T sg = gan3dkit::fast::sigmoid(opre[t * O + k]);
            d[k] = g[k] * (T(1) + T(2) * eps) * sg * (T(1) - sg);
          }
        }
        // FC2: grads of w2t, b2 and of the hidden activations.
        for (int64_t t = 0; t < nb; ++t) {
          const T* d = go.data() + t * O;
          const T* h = hid.data() + t * H1;
          T* ghr = gh.data() + t * H1;
          for (int64_t k = 0; k < O; ++k) gb2[k] += d[k];
          for (int64_t j = 0; j < H1; ++j) {
            const T hj = h[j];
            T* gwr = gw2 + j * O;
            const T* wr = w2t + j * O;
            T acc = T(0);
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < O; ++k) {
              gwr[k] += hj * d[k];
              acc += d[k] * wr[k];
            }
            ghr[j] = acc;
          }
        }
        for (int64_t k = 0; k < nb * H1; ++k) gh[k] *= gan3dkit::fast::softplus_grad(hpre[k]);
        // FC1: grads of w1t, b1 and of the (plane-averaged) features.
        for (int64_t t = 0; t < nb; ++t) {
          const T* ghr = gh.data() + t * H1;
          const T* f = feat.data() + t * C;
          T* gfr = gf.data() + t * C;
          for (int64_t j = 0; j < H1; ++j) gb1[j] += ghr[j];
          for (int64_t c = 0; c < C; ++c) {
            const T fc = f[c];
            T* gwr = gw1 + c * H1;
            const T* wr = w1t + c * H1;
            T acc = T(0);
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < H1; ++j) {
              gwr[j] += fc * ghr[j];
              acc += ghr[j] * wr[j];
            }
            gfr[c] = acc / T(s.P);  // the mean over planes
          }
        }
        // Bilinear sampling: scatter into the planes; chain to the coordinates if asked.
        for (int64_t t = 0; t < nb; ++t) {
          const int64_t i = i0 + t, n = i / s.M;
          const T* gfr = gf.data() + t * C;
          T gxyz[3] = {T(0), T(0), T(0)};
          for (int64_t p = 0; p < s.P; ++p) {
            T u, v;
            project(coords + i * 3, proj, p, scale, u, v);
            Footprint<T> fp;
            footprint(u, v, s.H, s.W, C, fp);
            T* dst = gp + (n * s.P + p) * plane_size;
            for (int k = 0; k < 4; ++k) {
              if (fp.off[k] < 0) continue;
              T* dk = dst + fp.off[k];
              const T wk = fp.w[k];
              for (int64_t c = 0; c < C; ++c) dk[c] += wk * gfr[c];
            }
            if (!need_coords) continue;
            // d value / d ix = (1 - fy)(v_ne - v_nw) + fy (v_se - v_sw); d / d iy = (1 - fx)(v_sw - v_nw) + fx (v_se - v_ne)
            const T* base = planes + (n * s.P + p) * plane_size;
            T dot[4];
            for (int k = 0; k < 4; ++k) {
              T acc = T(0);
              if (fp.off[k] >= 0) {
                const T* src = base + fp.off[k];
#pragma omp simd reduction(+ : acc)
                for (int64_t c = 0; c < C; ++c) acc += gfr[c] * src[c];
              }
              dot[k] = acc;
            }
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

Sizes sizes_of(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& w1t, const at::Tensor& w2t) {
  return {planes.size(0), planes.size(1), planes.size(2), planes.size(3), planes.size(4), coords.size(1),
          w1t.size(1),    w2t.size(1)};
}

}  // namespace

at::Tensor triplane_decode_fwd_cpu(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                   double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                   const at::Tensor& b2, double color_eps) {
  GAN3DKIT_CHECK_CPU(planes);
  const Sizes s = sizes_of(planes, coords, w1t, w2t);
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
  const Sizes s = sizes_of(planes, coords, w1t, w2t);
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
