// SPDX-License-Identifier: Apache-2.0
// CPU kernel of upfirdn2d: only the non-zero taps of the zero-inserted image are visited (polyphase), outputs that
// are dropped by the downsampling are never computed; one output row per task of an at::parallel_for (OpenMP).
// Interior columns take a vectorisable path (up == 1: contiguous or strided loads; down == 1 and up > 1: one
// strided loop per phase); border columns use per-column tap tables.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <vector>

#include "upfirdn2d/upfirdn2d.h"

namespace {

// Taps of one output index along one axis: inputs first .. first + count - 1 with filter taps tap, tap + up, ...
struct Taps {
  int64_t first, count, tap;
};

// y[m] = sum_t u[m * down - pad0 + t] F[t] with u[j] = x[j / up] when j % up == 0 (0 <= j / up < in), else 0.
std::vector<Taps> axis_taps(int64_t out, int64_t in, int64_t up, int64_t down, int64_t pad0, int64_t taps) {
  std::vector<Taps> table(out);
  for (int64_t m = 0; m < out; ++m) {
    const int64_t j0 = m * down - pad0;
    int64_t t = ((-j0) % up + up) % up;  // first tap landing on a real (non-inserted) sample
    int64_t i = (j0 + t) / up;           // exact division
    if (i < 0) {                         // skip taps left of the image
      t += -i * up;
      i = 0;
    }
    int64_t n = t < taps ? (taps - 1 - t) / up + 1 : 0;
    n = std::max<int64_t>(0, std::min(n, in - i));
    table[m] = {i, n, t};
  }
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
  auto column = [&](int64_t ox) {
    const Taps& c = p.tx[ox];
    T acc = T(0);
    for (int64_t k = 0; k < c.count; ++k) acc += xr[c.first + k] * fr[c.tap + k * upx];
    yr[ox] += acc;
  };
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
         int64_t upy, int64_t downx, int64_t downy, int64_t px0, int64_t py0, int64_t OH, int64_t OW, bool flip,
         double gain) {
  Plan<T> p;
  p.H = H, p.W = W, p.OH = OH, p.OW = OW, p.fw = fw, p.upx = upx, p.downx = downx;
  p.F.resize(fh * fw);
  for (int64_t ty = 0; ty < fh; ++ty)
    for (int64_t tx = 0; tx < fw; ++tx)
      p.F[ty * fw + tx] = T(gain) * (flip ? f[ty * fw + tx] : f[(fh - 1 - ty) * fw + (fw - 1 - tx)]);
  p.tx = axis_taps(OW, W, upx, downx, px0, fw);
  p.ty = axis_taps(OH, H, upy, downy, py0, fh);
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
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cpu", [&] {
    run<scalar_t>(x.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N * C, H, W, fh, fw, upx,
                  upy, downx, downy, padx0, pady0, OH, OW, flip, gain);
  });
  return y;
}
