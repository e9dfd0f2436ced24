// SPDX-License-Identifier: Apache-2.0
// Branch-free exp / softplus / sigmoid that GCC and Clang auto-vectorise (float: ~2 ulp; double: libm).
// PyTorch vectorises these with Sleef; a scalar libm call per element would make the fused kernels slower than
// the reference, so float uses a Cephes-style exp and an atanh series for log1p on (0, 1].
// Every function is GAN3DKIT_HD: the CUDA kernels run the same polynomials, so the CPU parity tests cover them.
#pragma once
#include <cmath>
#include <cstdint>

#include "utils/hd.h"

namespace gan3dkit {
namespace fast {

// exp(x) for x <= 0 (the only range used below); x below -87 flushes towards 2^-126.
GAN3DKIT_HD float exp_neg(float x) {
  x = x < -87.0f ? -87.0f : x;  // a select, not fmaxf: fmaxf does not vectorise without -ffast-math
  // Round to nearest with the 1.5 * 2^23 trick (|x * log2 e| < 2^22): keeps the loop free of calls and branches.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * bits_to_float(bits);
}

// log1p(z) for z in [0, 1]: 2 atanh(s), s = z / (2 + z) <= 1/3, odd series to s^17 (relative error < 1e-8).
GAN3DKIT_HD float log1p_unit(float z) {
  const float s = z / (2.0f + z);
  const float s2 = s * s;
  float p = 1.0f / 17.0f;
  p = p * s2 + 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

// torch softplus(beta=1, threshold=20). No explicit threshold: for x > 16 the log1p term is below half an ulp of x,
// so the float result is exactly x, as torch's; a select would turn into a branch and block vectorisation.
GAN3DKIT_HD float softplus(float x) { return (x > 0.0f ? x : 0.0f) + log1p_unit(exp_neg(-std::fabs(x))); }

GAN3DKIT_HD float sigmoid(float x) {
  const float e = exp_neg(-std::fabs(x));
  const float inv = 1.0f / (1.0f + e);
  const float m = static_cast<float>(x >= 0.0f);  // arithmetic select: a ternary may become a branch
  return inv * (m + (1.0f - m) * e);
}

// sigmoid(x) rounds to exactly 1.0f for x > 20 (torch's threshold), so no branch is needed.
GAN3DKIT_HD float softplus_grad(float x) { return sigmoid(x); }

GAN3DKIT_HD double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
GAN3DKIT_HD double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
GAN3DKIT_HD double softplus_grad(double x) { return x > 20.0 ? 1.0 : sigmoid(x); }

}  // namespace fast
}  // namespace gan3dkit
