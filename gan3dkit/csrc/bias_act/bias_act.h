// SPDX-License-Identifier: Apache-2.0
// Fused bias + activation + gain + clamp (StyleGAN2 semantics) and its derivatives, computed by one kernel in three
// modes so that the backward is itself differentiable (R1 in the discriminator needs the double backward).
//
// Activation codes (`act`): 0 linear, 1 relu, 2 lrelu, 3 tanh, 4 sigmoid, 5 elu, 6 selu, 7 softplus, 8 swish
// (the order of gan3dkit.ops.bias_act.ACTIVATIONS). With v = x + b (b broadcast along `dim`) and
// mask = [|gain * act(v)| <= clamp] (1 when clamp < 0, i.e. no clamp; torch.clamp's gradient mask):
//
// bias_act_fwd(x, b, dim, act, alpha, gain, clamp) -> y = clamp(gain * act(v, alpha), -clamp, clamp)
//   x: [...] contiguous float32/float64; b: [x.size(dim)] or empty (no bias); clamp < 0: no clamp.
// bias_act_bwd(g, x, b, dy, order, dim, act, alpha, gain, clamp) -> same shape as x
//   order 1: g * gain * act'(v) * mask          (g: the upstream gradient of y; dy unused, may be empty)
//   order 2: g * dy * gain * act''(v) * mask    (g: the upstream gradient of the order-1 output, dy: the order-1 g)
//   The gradient of the bias is the sum of these over every axis but `dim` (done by the caller).
#pragma once
#include <ATen/core/Tensor.h>

#include "utils/checks.h"

at::Tensor bias_act_cpu(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g, const at::Tensor& dy,
                        int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp);
#ifdef WITH_CUDA
at::Tensor bias_act_cuda(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g, const at::Tensor& dy,
                         int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp);
#endif

inline void bias_act_check(const at::Tensor& x, const at::Tensor& b, int64_t dim, int64_t act) {
  GAN3DKIT_CHECK_INPUT(x);
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "bias_act: the compiled kernel takes float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(act >= 0 && act <= 8, "bias_act: unknown activation code ", act);
  if (b.numel() > 0) {
    GAN3DKIT_CHECK_INPUT(b);
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim ", dim, " is out of range for a ", x.dim(), "-D input");
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must have shape [x.size(dim)]");
    TORCH_CHECK(b.scalar_type() == x.scalar_type() && b.device() == x.device(),
                "bias_act: b must match x's dtype and device");
  }
}

inline at::Tensor bias_act_dispatch(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g,
                                    const at::Tensor& dy, int64_t order, int64_t dim, int64_t act, double alpha,
                                    double gain, double clamp) {
  if (x.is_cuda()) {
#ifdef WITH_CUDA
    return bias_act_cuda(x, b, g, dy, order, dim, act, alpha, gain, clamp);
#else
    GAN3DKIT_NO_CUDA("bias_act");
#endif
  }
  return bias_act_cpu(x, b, g, dy, order, dim, act, alpha, gain, clamp);
}

inline at::Tensor bias_act_fwd(const at::Tensor& x, const at::Tensor& b, int64_t dim, int64_t act, double alpha,
                               double gain, double clamp) {
  bias_act_check(x, b, dim, act);
  return bias_act_dispatch(x, b, at::Tensor(), at::Tensor(), 0, dim, act, alpha, gain, clamp);
}

inline at::Tensor bias_act_bwd(const at::Tensor& g, const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy,
                               int64_t order, int64_t dim, int64_t act, double alpha, double gain, double clamp) {
  bias_act_check(x, b, dim, act);
  TORCH_CHECK(order == 1 || order == 2, "bias_act_bwd: order must be 1 or 2, got ", order);
  GAN3DKIT_CHECK_INPUT(g);
  TORCH_CHECK(g.sizes() == x.sizes() && g.scalar_type() == x.scalar_type() && g.device() == x.device(),
              "bias_act_bwd: g must match x in shape, dtype and device");
  if (order == 2) {
    GAN3DKIT_CHECK_INPUT(dy);
    TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type() && dy.device() == x.device(),
                "bias_act_bwd: dy must match x in shape, dtype and device");
  }
  return bias_act_dispatch(x, b, g, dy, order, dim, act, alpha, gain, clamp);
}
