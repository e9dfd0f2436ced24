# SPDX-License-Identifier: Apache-2.0
"""Differentiable EG3D/StyleGAN2 ops: pure-PyTorch references and compiled C++/CUDA twins behind an ``impl`` switch."""

from gan3dkit.ops._backend import backend_report, compiled_available
from gan3dkit.ops.bias_act import bias_act
from gan3dkit.ops.conv2d_resample import conv2d_resample
from gan3dkit.ops.importance_sampling import sample_pdf, smooth_weights, stratified_depths, unify_samples
from gan3dkit.ops.modulated_conv import modulated_conv2d
from gan3dkit.ops.ray_marching import mip_ray_march
from gan3dkit.ops.triplane import generate_planes, project_onto_planes, sample_from_planes
from gan3dkit.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "backend_report",
    "bias_act",
    "compiled_available",
    "conv2d_resample",
    "downsample2d",
    "filter2d",
    "generate_planes",
    "mip_ray_march",
    "modulated_conv2d",
    "project_onto_planes",
    "sample_from_planes",
    "sample_pdf",
    "setup_filter",
    "smooth_weights",
    "stratified_depths",
    "unify_samples",
    "upfirdn2d",
    "upsample2d",
]
