// SPDX-License-Identifier: Apache-2.0
// CPU launcher of upfirdn2d (tap tables and row sums of upfirdn2d.h): only the non-zero taps of the zero-inserted image are visited (polyphase), outputs that
// are dropped by the downsampling are never computed; one output row per task of an at::parallel_for (OpenMP).
// Interior columns take a vectorisable path (up == 1: contiguous or strided loads; down == 1 and up > 1: one
// strided loop per phase); border columns use per-column tap tables.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/flip.h>
#include <ATen/ops/mul.h>

#include <algorithm>
#include <vector>

#include "upfirdn2d/upfirdn2d.h"

namespace {

using gan3dkit::upfirdn::Taps;

std::vector<Taps> axis_table(int64_t out, int64_t in, int64_t up, int64_t down, int64_t pad0, int64_t taps) {
  std::vector<Taps> table(out);
  for (int64_t m = 0; m < out; ++m) table[m] = gan3dkit::upfirdn::axis_taps(m, in, up, down, pad0, taps);
  return table;
}

template <typename T>
struct Plan {
  int64_t H, W, OH, OW, fw, upx, downx;
  std::vector<T> F;               // [fh, fw] effective taps (flipped unless `flip`, times gain)
  std::vector<Taps> tx, ty;       // per output column / row
  int64_t a = 0, b = 0;           // interior columns [a, b): every tap of the phase lies inside the image
  std::vector<int64_t> full;      // taps per column when nothing is clipped
};

// Adds sum_k xr[first + k] * fr[tap + k * upx] to yr[ox] for every output column ox.
template <typename T>
void row_accumulate(const Plan<T>& p, const T* xr, const T* fr, T* yr) {
  const int64_t upx = p.upx, downx = p.downx;
  auto column = [&](int64_t ox) { yr[ox] += gan3dkit::upfirdn::row_dot(xr, fr, p.tx[ox], upx); };
  for (int64_t ox = 0; ox < p.a; ++ox) column(ox);
  for (int64_t ox = p.b; ox < p.OW; ++ox) column(ox);
  if (p.b <= p.a) return;
  if (upx == 1) {  // every interior column uses all fw taps: input index ox * downx + t - padx0
    const int64_t base = p.tx[p.a].first;
    const int64_t n = p.b - p.a;
    T* ys = yr + p.a;
    for (int64_t t = 0; t < p.fw; ++t) {
      const T w = fr[t];
      const T* xs = xr + base + t;
      if (downx == 1) {
#pragma omp simd
        for (int64_t q = 0; q < n; ++q) ys[q] += xs[q] * w;
      } else {
#pragma omp simd
        for (int64_t q = 0; q < n; ++q) ys[q] += xs[q * downx] * w;
      }
    }
  } else if (downx == 1) {  // phases: columns a + r, a + r + upx, ... share taps and step one input at a time
    for (int64_t r = 0; r < upx && p.a + r < p.b; ++r) {
      const Taps& c = p.tx[p.a + r];
      const int64_t n = (p.b - (p.a + r) + upx - 1) / upx;
      T* ys = yr + p.a + r;
      for (int64_t k = 0; k < c.count; ++k) {
        const T w = fr[c.tap + k * upx];
        const T* xs = xr + c.first + k;
#pragma omp simd
        for (int64_t q = 0; q < n; ++q) ys[q * upx] += xs[q] * w;
      }
    }
  } else {
    for (int64_t ox = p.a; ox < p.b; ++ox) column(ox);
  }
}

template <typename T>
void run(const T* x, const T* f, T* y, int64_t planes, int64_t H, int64_t W, int64_t fh, int64_t fw, int64_t upx,
         int64_t upy, int64_t downx, int64_t downy, int64_t px0, int64_t py0, int64_t OH, int64_t OW) {
  Plan<T> p;
  p.H = H, p.W = W, p.OH = OH, p.OW = OW, p.fw = fw, p.upx = upx, p.downx = downx;
  p.F.assign(f, f + fh * fw);  // f: the effective filter already
  p.tx = axis_table(OW, W, upx, downx, px0, fw);
  p.ty = axis_table(OH, H, upy, downy, py0, fh);
  // Interior: the first and last column range whose tap tables are unclipped (monotone in ox).
  auto unclipped = [&](int64_t ox) {
    const int64_t j0 = ox * downx - px0;
    const int64_t t = ((-j0) % upx + upx) % upx;
    const int64_t i = (j0 + t) / upx;
    const int64_t n = t < fw ? (fw - 1 - t) / upx + 1 : 0;
    return i >= 0 && i + n <= W;
  };
  int64_t a = 0;
  while (a < OW && !unclipped(a)) ++a;
  int64_t b = a;
  while (b < OW && unclipped(b)) ++b;
  p.a = a, p.b = b;
  const int64_t rows = planes * OH;
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, OW * fw));
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t plane = r / OH, oy = r % OH;
      const T* xp = x + plane * H * W;
      T* yr = y + r * OW;
      std::fill(yr, yr + OW, T(0));
      const Taps& c = p.ty[oy];
      for (int64_t k = 0; k < c.count; ++k) row_accumulate(p, xp + (c.first + k) * W, p.F.data() + (c.tap + k * upy) * fw, yr);
    }
  });
}

}  // namespace

at::Tensor upfirdn2d_cpu(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                         int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                         double gain) {
  GAN3DKIT_CHECK_CPU(x);
  GAN3DKIT_CHECK_CPU(f);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), fh = f.size(0), fw = f.size(1);
  const int64_t OW = (W * upx + padx0 + padx1 - fw + downx) / downx;
  const int64_t OH = (H * upy + pady0 + pady1 - fh + downy) / downy;
  auto y = at::empty({N, C, OH, OW}, x.options());
  if (y.numel() == 0) return y;
  const auto F = upfirdn2d_effective_filter(f, flip, gain);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cpu", [&] {
    run<scalar_t>(x.data_ptr<scalar_t>(), F.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N * C, H, W, fh, fw, upx,
                  upy, downx, downy, padx0, pady0, OH, OW);
  });
  return y;
}

at::Tensor upfirdn2d_effective_filter(const at::Tensor& f, bool flip, double gain) {
  return at::mul(flip ? f : at::flip(f, {0, 1}), gain).contiguous();
}

at::Tensor upfirdn2d_fwd_grid(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                              int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip,
                              double gain) {
  upfirdn2d_check(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1);
  GAN3DKIT_CHECK_CPU(x);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), fh = f.size(0), fw = f.size(1);
  const int64_t OW = (W * upx + padx0 + padx1 - fw + downx) / downx;
  const int64_t OH = (H * upy + pady0 + pady1 - fh + downy) / downy;
  auto y = at::empty({N, C, OH, OW}, x.options());
  const auto F = upfirdn2d_effective_filter(f, flip, gain);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_fwd_grid", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* Fp = F.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, y.numel(), 1024, [&](int64_t i0, int64_t i1) {
      for (int64_t idx = i0; idx < i1; ++idx) {  // one CUDA thread per output pixel
        const int64_t ox = idx % OW, oy = (idx / OW) % OH, plane = idx / (OW * OH);
        const auto tx = gan3dkit::upfirdn::axis_taps(ox, W, upx, downx, padx0, fw);
        const auto ty = gan3dkit::upfirdn::axis_taps(oy, H, upy, downy, pady0, fh);
        yp[idx] = gan3dkit::upfirdn::pixel(xp + plane * H * W, W, Fp, fw, upx, upy, tx, ty);
      }
    });
  });
  return y;
}
