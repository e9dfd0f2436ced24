// SPDX-License-Identifier: Apache-2.0
// Fused tri-plane field: project points -> bilinear sample of every plane (zeros padding, align_corners=False)
// -> mean over planes -> EG3D's OSG decoder FC -> softplus -> FC -> [raw sigma, sigmoid(x)*(1+2eps)-eps].
//
// triplane_decode_fwd(planes, coords, proj, scale, w1t, b1, w2t, b2, color_eps) -> out
//   planes: [N, P, H, W, C] channels-last feature planes.
//   coords: [N, M, 3] points in world units.
//   proj:   [P, 2, 3] plane p reads grid u = scale * <coords, proj[p, 0]>, v = scale * <coords, proj[p, 1]>
//           (the first two columns of inverse(plane matrix), transposed); u indexes W, v indexes H.
//   scale:  2 / box_warp.
//   w1t: [C, H1] (effective weight of FC1, transposed), b1: [H1]; w2t: [H1, O], b2: [O] (O = 1 + colour channels).
//   returns out [N, M, O]: out[..., 0] raw density, out[..., 1:] colour features.
// triplane_decode_bwd(grad_out [N, M, O], planes, coords, proj, scale, w1t, b1, w2t, b2, color_eps, need_coords)
//   -> {grad_planes [N, P, H, W, C], grad_coords [N, M, 3] (zeros unless need_coords), grad_w1t, grad_b1, grad_w2t,
//       grad_b2}. First order only; the forward is recomputed block by block (nothing but the inputs is saved).
//
// The per-point math lives once, below, as GAN3DKIT_HD functions. forward_point / backward_point are the bodies
// of the CUDA kernels; the CPU launcher runs the same pieces (features, fc1, hidden, fc2, output, grad_*, scatter)
// block by block, and the test-only bindings _triplane_decode_{fwd,bwd}_grid run forward_point / backward_point
// themselves on the CPU, one point after another, with the CUDA launcher's GEMMs for the weight gradients.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <vector>

#include "utils/checks.h"
#include "utils/fast_math.h"
#include "utils/hd.h"

namespace gan3dkit {
namespace triplane {

constexpr int kMaxC = 128;   // per-point arrays of forward_point / backward_point (CUDA and the grid bindings)
constexpr int kMaxH1 = 128;
constexpr int kMaxO = 64;

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
GAN3DKIT_HD void footprint(T u, T v, int64_t H, int64_t W, int64_t C, Footprint<T>& f) {
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
GAN3DKIT_HD void project(const T* xyz, const T* proj, int64_t p, T scale, T& u, T& v) {
  const T x = xyz[0] * scale, y = xyz[1] * scale, z = xyz[2] * scale;
  const T* a = proj + p * 6;
  u = x * a[0] + y * a[1] + z * a[2];
  v = x * a[3] + y * a[4] + z * a[5];
}

// Plane-averaged features f [C] of point i (flattened N*M index).
template <typename T>
GAN3DKIT_HD void features(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale, int64_t i,
                          T* __restrict__ f) {
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
      const T* __restrict__ src = base + fp.off[k];
      const T wk = fp.w[k];
      GAN3DKIT_SIMD
      for (int64_t c = 0; c < s.C; ++c) f[c] += wk * src[c];
    }
  }
  for (int64_t c = 0; c < s.C; ++c) f[c] /= T(s.P);
}

// A fully connected layer: y [n_out] = b + x [n_in] wt, with wt [n_in, n_out] (the decoder's transposed weights).
template <typename T>
GAN3DKIT_HD void affine(int64_t n_in, int64_t n_out, const T* __restrict__ x, const T* __restrict__ wt,
                        const T* __restrict__ b, T* __restrict__ y) {
  for (int64_t j = 0; j < n_out; ++j) y[j] = b[j];
  for (int64_t i = 0; i < n_in; ++i) {
    const T xi = x[i];
    const T* __restrict__ wr = wt + i * n_out;
    GAN3DKIT_SIMD
    for (int64_t j = 0; j < n_out; ++j) y[j] += xi * wr[j];
  }
}

// Its input gradient: gx [n_in] = scale * wt gy, i.e. gx[i] = scale * <wt[i, :], gy> (scale: 1, or 1 / planes).
template <typename T>
GAN3DKIT_HD void affine_grad(int64_t n_in, int64_t n_out, const T* __restrict__ gy, const T* __restrict__ wt, T scale,
                             T* __restrict__ gx) {
  for (int64_t i = 0; i < n_in; ++i) {
    const T* __restrict__ wr = wt + i * n_out;
    T acc = T(0);
    GAN3DKIT_SIMD_SUM(acc)
    for (int64_t j = 0; j < n_out; ++j) acc += gy[j] * wr[j];
    gx[i] = acc * scale;
  }
}

// FC1 pre-activations h [H1] = b1 + f w1t.
template <typename T>
GAN3DKIT_HD void fc1(const Sizes& s, const T* f, const T* w1t, const T* b1, T* h) {
  affine(s.C, s.H1, f, w1t, b1, h);
}

// Hidden activations (softplus) of n pre-activations.
template <typename T>
GAN3DKIT_HD void hidden(int64_t n, const T* __restrict__ hpre, T* __restrict__ hid) {
  GAN3DKIT_SIMD
  for (int64_t k = 0; k < n; ++k) hid[k] = fast::softplus(hpre[k]);
}

// FC2 pre-activations o [O] = b2 + hid w2t.
template <typename T>
GAN3DKIT_HD void fc2(const Sizes& s, const T* hid, const T* w2t, const T* b2, T* o) {
  affine(s.H1, s.O, hid, w2t, b2, o);
}

// Outputs d [O]: raw density, then sigmoid(x) * (1 + 2 eps) - eps.
template <typename T>
GAN3DKIT_HD void output(const Sizes& s, const T* o, T eps, T* d) {
  d[0] = o[0];
  for (int64_t k = 1; k < s.O; ++k) d[k] = fast::sigmoid(o[k]) * (T(1) + T(2) * eps) - eps;
}

// Gradient go [O] of the FC2 pre-activations from the output gradient g [O].
template <typename T>
GAN3DKIT_HD void grad_output(const Sizes& s, const T* g, const T* o, T eps, T* go) {
  go[0] = g[0];
  for (int64_t k = 1; k < s.O; ++k) {
    const T sg = fast::sigmoid(o[k]);
    go[k] = g[k] * (T(1) + T(2) * eps) * sg * (T(1) - sg);
  }
}

// Gradient gh [H1] of the FC1 pre-activations.
template <typename T>
GAN3DKIT_HD void grad_hidden(const Sizes& s, const T* go, const T* w2t, const T* __restrict__ hpre,
                             T* __restrict__ gh) {
  affine_grad(s.H1, s.O, go, w2t, T(1), gh);
  GAN3DKIT_SIMD
  for (int64_t j = 0; j < s.H1; ++j) gh[j] *= fast::softplus_grad(hpre[j]);
}

// Gradient gf [C] of the sampled (per-plane) features: the FC1 input gradient divided by the plane count.
template <typename T>
GAN3DKIT_HD void grad_features(const Sizes& s, const T* gh, const T* w1t, T* gf) {
  affine_grad(s.C, s.H1, gh, w1t, T(1) / T(s.P), gf);  // the mean over planes
}

// Scatters gf into the plane gradients (through atomic_add) and, if need_coords, writes g_coords [3] of point i.
template <typename T>
GAN3DKIT_HD void scatter(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale, int64_t i,
                         const T* gf, T* g_planes, bool need_coords, T* g_coords) {
  const int64_t n = i / s.M, plane_size = s.H * s.W * s.C;
  T gxyz[3] = {T(0), T(0), T(0)};
  for (int64_t p = 0; p < s.P; ++p) {
    T u, v;
    project(coords + i * 3, proj, p, scale, u, v);
    Footprint<T> fp;
    footprint(u, v, s.H, s.W, s.C, fp);
    T* dst = g_planes + (n * s.P + p) * plane_size;
    for (int k = 0; k < 4; ++k) {
      if (fp.off[k] < 0) continue;
      T* dk = dst + fp.off[k];
      const T wk = fp.w[k];
      for (int64_t c = 0; c < s.C; ++c) atomic_add(dk + c, wk * gf[c]);
    }
    if (!need_coords) continue;
    // d value / d ix = (1 - fy)(v_ne - v_nw) + fy (v_se - v_sw); d / d iy = (1 - fx)(v_sw - v_nw) + fx (v_se - v_ne)
    const T* base = planes + (n * s.P + p) * plane_size;
    T dot[4];
    for (int k = 0; k < 4; ++k) {
      T acc = T(0);
      if (fp.off[k] >= 0) {
        const T* __restrict__ src = base + fp.off[k];
        GAN3DKIT_SIMD_SUM(acc)
        for (int64_t c = 0; c < s.C; ++c) acc += gf[c] * src[c];
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
    for (int d = 0; d < 3; ++d) g_coords[d] = gxyz[d];
}

// The whole forward of point i (the CUDA kernel's body): out [O].
template <typename T>
GAN3DKIT_HD void forward_point(const Sizes& s, const T* planes, const T* coords, const T* proj, T scale,
                               const T* w1t, const T* b1, const T* w2t, const T* b2, T eps, int64_t i, T* out) {
  T f[kMaxC], h[kMaxH1], a[kMaxH1], o[kMaxO];
  features(s, planes, coords, proj, scale, i, f);
  fc1(s, f, w1t, b1, h);
  hidden(s.H1, h, a);
  fc2(s, a, w2t, b2, o);
  output(s, o, eps, out);
}

// The whole backward of point i (the CUDA kernel's body): writes the per-point rows feat [C], hid [H1], gh [H1],
// go [O] that two GEMMs reduce to the weight gradients, scatters the plane gradients, writes g_coords [3].
template <typename T>
GAN3DKIT_HD void backward_point(const Sizes& s, const T* g_out, const T* planes, const T* coords, const T* proj,
                                T scale, const T* w1t, const T* b1, const T* w2t, const T* b2, T eps,
                                bool need_coords, int64_t i, T* feat, T* hid, T* gh, T* go, T* g_planes,
                                T* g_coords) {
  T h[kMaxH1], o[kMaxO], gf[kMaxC];
  T* f = feat + i * s.C;
  T* a = hid + i * s.H1;
  features(s, planes, coords, proj, scale, i, f);
  fc1(s, f, w1t, b1, h);
  hidden(s.H1, h, a);
  fc2(s, a, w2t, b2, o);
  grad_output(s, g_out + i * s.O, o, eps, go + i * s.O);
  grad_hidden(s, go + i * s.O, w2t, h, gh + i * s.H1);
  grad_features(s, gh + i * s.H1, w1t, gf);
  scatter(s, planes, coords, proj, scale, i, gf, g_planes, need_coords, g_coords + i * 3);
}

// Sizes of the inputs (the launchers' common reading of the shapes).
inline Sizes sizes_of(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& w1t,
                      const at::Tensor& w2t) {
  return {planes.size(0), planes.size(1), planes.size(2), planes.size(3), planes.size(4), coords.size(1),
          w1t.size(1),    w2t.size(1)};
}

// forward_point / backward_point keep a point's arrays on the stack: their size limits.
inline void check_point_arrays(const Sizes& s, const char* who) {
  TORCH_CHECK(s.C <= kMaxC && s.H1 <= kMaxH1 && s.O <= kMaxO, who, ": at most ", kMaxC, " plane channels, ",
              kMaxH1, " hidden units and ", kMaxO, " decoder outputs, got ", s.C, ", ", s.H1, " and ", s.O);
}

}  // namespace triplane
}  // namespace gan3dkit

// Test-only bindings: the CUDA launchers' per-point bodies run on the CPU (see above).
at::Tensor triplane_decode_fwd_grid(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                    double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                    const at::Tensor& b2, double color_eps);
std::vector<at::Tensor> triplane_decode_bwd_grid(const at::Tensor& grad_out, const at::Tensor& planes,
                                                 const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                 const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                 const at::Tensor& b2, double color_eps, bool need_coords);

at::Tensor triplane_decode_fwd_cpu(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                   double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                   const at::Tensor& b2, double color_eps);
std::vector<at::Tensor> triplane_decode_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& planes,
                                                const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                const at::Tensor& b2, double color_eps, bool need_coords);
#ifdef WITH_CUDA
at::Tensor triplane_decode_fwd_cuda(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                    double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                    const at::Tensor& b2, double color_eps);
std::vector<at::Tensor> triplane_decode_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& planes,
                                                 const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                 const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                 const at::Tensor& b2, double color_eps, bool need_coords);
#endif

inline void triplane_decode_check(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                  const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                  const at::Tensor& b2) {
  for (const at::Tensor* t : {&planes, &coords, &proj, &w1t, &b1, &w2t, &b2}) {
    GAN3DKIT_CHECK_INPUT(*t);
    TORCH_CHECK(t->scalar_type() == planes.scalar_type(), "triplane_decode: all inputs must share one dtype");
    TORCH_CHECK(t->device() == planes.device(), "triplane_decode: all inputs must be on one device");
  }
  GAN3DKIT_CHECK_DIM(planes, 5);
  GAN3DKIT_CHECK_DIM(coords, 3);
  TORCH_CHECK(coords.size(0) == planes.size(0) && coords.size(2) == 3, "triplane_decode: coords must be [N, M, 3]");
  TORCH_CHECK(proj.dim() == 3 && proj.size(0) == planes.size(1) && proj.size(1) == 2 && proj.size(2) == 3,
              "triplane_decode: proj must be [P, 2, 3]");
  TORCH_CHECK(w1t.dim() == 2 && w1t.size(0) == planes.size(4), "triplane_decode: w1t must be [C, H1]");
  TORCH_CHECK(b1.dim() == 1 && b1.size(0) == w1t.size(1), "triplane_decode: b1 must be [H1]");
  TORCH_CHECK(w2t.dim() == 2 && w2t.size(0) == w1t.size(1) && w2t.size(1) >= 1, "triplane_decode: w2t must be [H1, O]");
  TORCH_CHECK(b2.dim() == 1 && b2.size(0) == w2t.size(1), "triplane_decode: b2 must be [O]");
}

inline at::Tensor triplane_decode_fwd(const at::Tensor& planes, const at::Tensor& coords, const at::Tensor& proj,
                                      double scale, const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                      const at::Tensor& b2, double color_eps) {
  triplane_decode_check(planes, coords, proj, w1t, b1, w2t, b2);
  if (planes.is_cuda()) {
#ifdef WITH_CUDA
    return triplane_decode_fwd_cuda(planes, coords, proj, scale, w1t, b1, w2t, b2, color_eps);
#else
    GAN3DKIT_NO_CUDA("triplane_decode_fwd");
#endif
  }
  return triplane_decode_fwd_cpu(planes, coords, proj, scale, w1t, b1, w2t, b2, color_eps);
}

inline std::vector<at::Tensor> triplane_decode_bwd(const at::Tensor& grad_out, const at::Tensor& planes,
                                                   const at::Tensor& coords, const at::Tensor& proj, double scale,
                                                   const at::Tensor& w1t, const at::Tensor& b1, const at::Tensor& w2t,
                                                   const at::Tensor& b2, double color_eps, bool need_coords) {
  triplane_decode_check(planes, coords, proj, w1t, b1, w2t, b2);
  GAN3DKIT_CHECK_INPUT(grad_out);
  TORCH_CHECK(grad_out.dim() == 3 && grad_out.size(0) == coords.size(0) && grad_out.size(1) == coords.size(1) &&
                  grad_out.size(2) == b2.size(0),
              "triplane_decode_bwd: grad_out must be [N, M, O]");
  if (planes.is_cuda()) {
#ifdef WITH_CUDA
    return triplane_decode_bwd_cuda(grad_out, planes, coords, proj, scale, w1t, b1, w2t, b2, color_eps,
                                    need_coords);
#else
    GAN3DKIT_NO_CUDA("triplane_decode_bwd");
#endif
  }
  return triplane_decode_bwd_cpu(grad_out, planes, coords, proj, scale, w1t, b1, w2t, b2, color_eps, need_coords);
}
