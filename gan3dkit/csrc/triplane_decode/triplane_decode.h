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
#pragma once
#include <ATen/core/Tensor.h>
#include <vector>

#include "utils/checks.h"

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
