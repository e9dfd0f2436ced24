// SPDX-License-Identifier: Apache-2.0
// Input checks shared by every op (second line of defence after the Python wrappers).
#pragma once
#include <ATen/core/Tensor.h>

#define GAN3DKIT_CHECK_CPU(x) TORCH_CHECK(!(x).is_cuda(), #x " must be a CPU tensor")
#define GAN3DKIT_CHECK_CUDA(x) TORCH_CHECK((x).is_cuda(), #x " must be a CUDA tensor")
#define GAN3DKIT_CHECK_CONTIGUOUS(x) TORCH_CHECK((x).is_contiguous(), #x " must be contiguous")
#define GAN3DKIT_CHECK_FLOAT(x) TORCH_CHECK((x).is_floating_point(), #x " must be a floating-point tensor")
#define GAN3DKIT_CHECK_DIM(x, d) TORCH_CHECK((x).dim() == (d), #x " must have " #d " dimensions, got ", (x).dim())
#define GAN3DKIT_CHECK_INPUT(x) \
  GAN3DKIT_CHECK_CONTIGUOUS(x);  \
  GAN3DKIT_CHECK_FLOAT(x)

#define GAN3DKIT_NO_CUDA(op) TORCH_CHECK(false, op ": gan3dkit's compiled core was built without CUDA support")
