// SPDX-License-Identifier: Apache-2.0
// The single Python binding of gan3dkit's compiled ops core; every op's entry points are <op>_fwd / <op>_bwd.
#include <torch/extension.h>

#include "bias_act/bias_act.h"
#include "ray_march/ray_march.h"
#include "sample_pdf/sample_pdf.h"
#include "triplane_decode/triplane_decode.h"
#include "upfirdn2d/upfirdn2d.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "gan3dkit compiled ops core (C++/OpenMP CPU kernels; CUDA kernels when built WITH_CUDA)";
#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  m.def("ray_march_fwd", &ray_march_fwd, "EG3D MipRayMarcher2 forward (see ray_march/ray_march.h)");
  m.def("sample_pdf_fwd", &sample_pdf_fwd, "inverse-CDF sampling (see sample_pdf/sample_pdf.h)");
  m.def("triplane_decode_fwd", &triplane_decode_fwd, "fused tri-plane sampling + OSG decoder (triplane_decode.h)");
  m.def("triplane_decode_bwd", &triplane_decode_bwd, "its first-order backward (triplane_decode.h)");
  m.def("ray_march_bwd", &ray_march_bwd, "EG3D MipRayMarcher2 backward (see ray_march/ray_march.h)");
  m.def("bias_act_fwd", &bias_act_fwd, "fused bias + activation + gain + clamp (see bias_act/bias_act.h)");
  m.def("bias_act_bwd", &bias_act_bwd, "its first- and second-order derivative modes (bias_act/bias_act.h)");
  m.def("upfirdn2d_fwd", &upfirdn2d_fwd, "upsample, pad, FIR-filter, downsample; also its own adjoint (upfirdn2d.h)");
  // These are only visible for testing: the CUDA launchers' per-item bodies run on the CPU, one item at a time.
  m.def("_upfirdn2d_fwd_grid", &upfirdn2d_fwd_grid, "upfirdn2d::pixel per output pixel (test only)");
  m.def("_triplane_decode_fwd_grid", &triplane_decode_fwd_grid, "forward_point per point (test only)");
  m.def("_triplane_decode_bwd_grid", &triplane_decode_bwd_grid, "backward_point per point + GEMMs (test only)");
}
