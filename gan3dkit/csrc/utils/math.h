// SPDX-License-Identifier: Apache-2.0
// Scalar helpers matching PyTorch's CPU definitions (softplus threshold 20, logistic sigmoid).
#pragma once
#include <cmath>

#include "utils/hd.h"

namespace gan3dkit {

// torch.nn.functional.softplus(x) with beta = 1, threshold = 20.
template <typename T>
GAN3DKIT_HD T softplus(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}

// d softplus / dx, as PyTorch computes it (1 above the threshold).
template <typename T>
GAN3DKIT_HD T softplus_grad(T x) {
  return x > T(20) ? T(1) : T(1) / (T(1) + std::exp(-x));
}

template <typename T>
GAN3DKIT_HD T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace gan3dkit
