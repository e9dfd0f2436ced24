# SPDX-License-Identifier: Apache-2.0
"""EG3D's OSG decoder: mean of the tri-plane features -> small MLP -> raw density and colour features."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from gan3dkit.ops.triplane import sample_from_planes, triplane_decode

from .layers import FullyConnectedLayer

#: MipNeRF-style widening of the sigmoid so colours can reach exactly 0 and 1.
COLOR_EPS = 0.001


class OSGDecoder(nn.Module):
    """Decode tri-plane features into ``{"rgb": features, "sigma": raw density}`` (view direction ignored).

    ``FC(C -> hidden, lr_mul) -> softplus -> FC(hidden -> 1 + out, lr_mul)``; sigma is the raw first output (the
    ray marcher applies ``softplus(sigma - 1)``); features are ``sigmoid(x) * (1 + 2 * 0.001) - 0.001``.
    """

    def __init__(
        self, in_features: int, hidden_dim: int = 64, output_dim: int = 32, lr_multiplier: float = 1.0
    ) -> None:
        super().__init__()
        self.in_features, self.hidden_dim, self.output_dim = in_features, hidden_dim, output_dim
        self.net = nn.Sequential(
            FullyConnectedLayer(in_features, hidden_dim, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + output_dim, lr_multiplier=lr_multiplier),
        )

    def forward(
        self,
        sampled_features: Tensor,  # [B, P, N, C] per-plane features
        ray_directions: Tensor | None = None,  # [B, N, 3], unused
    ) -> dict[str, Tensor]:  # {"rgb": [B, N, output_dim], "sigma": [B, N, 1]}
        if sampled_features.ndim != 4 or sampled_features.shape[-1] != self.in_features:
            raise ValueError(
                f"OSGDecoder: features must be [B, P, N, {self.in_features}], got {tuple(sampled_features.shape)}."
            )
        x = sampled_features.mean(dim=1)  # [B, N, C]: the planes are averaged
        b, n, c = x.shape
        x = self.net(x.reshape(b * n, c)).reshape(b, n, 1 + self.output_dim)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * COLOR_EPS) - COLOR_EPS
        return {"rgb": rgb, "sigma": x[..., :1]}

    def decode_triplane(
        self,
        plane_axes_matrices: Tensor,  # [P, 3, 3]
        planes: Tensor,  # [B, P, C, H, W]
        coords: Tensor,  # [B, N, 3]
        ray_directions: Tensor | None = None,  # [B, N, 3], unused
        box_warp: float = 1.0,
    ) -> dict[str, Tensor]:  # {"rgb": [B, N, output_dim], "sigma": [B, N, 1]}
        """Sample the tri-planes at ``coords`` and decode: ``self(sample_from_planes(...))`` as one fused op.

        ``gan3dkit.ops.triplane_decode`` runs the compiled kernel where it is the default (``impl="auto"``) and
        otherwise the same torch ops as ``sample_from_planes`` + ``forward``. Subclasses that override ``forward``
        keep the two-step path.
        """
        if type(self).forward is not OSGDecoder.forward:
            feats = sample_from_planes(plane_axes_matrices, planes, coords, box_warp=box_warp, padding_mode="zeros")
            return self(feats, ray_directions)
        if planes.ndim != 5 or planes.shape[2] != self.in_features:
            raise ValueError(f"OSGDecoder: planes must be [B, P, {self.in_features}, H, W], got {tuple(planes.shape)}.")
        fc1, fc2 = cast(FullyConnectedLayer, self.net[0]), cast(FullyConnectedLayer, self.net[2])
        assert fc1.bias is not None and fc2.bias is not None
        dtype = planes.dtype
        rgb, sigma = triplane_decode(
            plane_axes_matrices,
            planes,
            coords,
            fc1.weight.to(dtype) * fc1.weight_gain,
            fc1.bias.to(dtype) * fc1.bias_gain,
            fc2.weight.to(dtype) * fc2.weight_gain,
            fc2.bias.to(dtype) * fc2.bias_gain,
            box_warp=box_warp,
            color_eps=COLOR_EPS,
        )
        return {"rgb": rgb, "sigma": sigma}
