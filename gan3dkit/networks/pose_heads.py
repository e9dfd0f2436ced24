# SPDX-License-Identifier: Apache-2.0
"""Pose-free discriminators: EG3D's dual D without camera input, plus a pose head on its 4x4 features."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DiscriminatorConfig
from .discriminator import DualDiscriminator
from .layers import FullyConnectedLayer


@dataclass
class PoseHeadConfig:
    """A two-layer head on D's flattened 4x4 features (the same place as PoF3D's camera head, methods.md §1.4)."""

    out_dim: int = 2
    """2 for (pitch, yaw) regression (EG3D†); m for a HyperPose embedding (24, or 96 for LSUN Church)."""
    hidden_dim: int | None = None
    """Hidden width; None = half the input width (PoF3D: 8192 -> 4096 -> 2)."""
    normalize: bool = False
    """L2-normalise the output (HyperPose's embedding lives on the unit sphere)."""
    lr_multiplier: float = 1.0


class PoseHead(nn.Module):
    """``feat [B, F] -> [B, out_dim]``: FC(lrelu) -> FC, optionally L2-normalised."""

    def __init__(self, in_features: int, cfg: PoseHeadConfig) -> None:
        super().__init__()
        self.cfg = copy.deepcopy(cfg)
        hidden = cfg.hidden_dim or max(in_features // 2, 1)
        self.fc0 = FullyConnectedLayer(in_features, hidden, activation="lrelu", lr_multiplier=cfg.lr_multiplier)
        self.fc1 = FullyConnectedLayer(hidden, cfg.out_dim, lr_multiplier=cfg.lr_multiplier)

    def forward(self, feat: Tensor) -> Tensor:
        out = self.fc1(self.fc0(feat.to(torch.float32)))
        return F.normalize(out, dim=1) if self.cfg.normalize else out


class PoseHeadDiscriminator(DualDiscriminator):
    """``D(img) -> logits [B, 1]`` or ``D(img, with_head=True) -> (logits, head [B, out_dim])``.

    The logit branch is EG3D's dual discriminator with ``c_dim = 0`` (no pose input, seed 000 §A.1); the pose
    branch shares the residual trunk and the epilogue's minibatch-std + conv, then has its own two FC layers, so
    one forward pass serves both. Module names of the shared part are those of ``DualDiscriminator``.
    """

    def __init__(self, config: DiscriminatorConfig, head: PoseHeadConfig) -> None:
        if config.c_dim != 0:
            raise ValueError(
                f"a pose-free discriminator takes no camera input: discriminator.c_dim must be 0, got {config.c_dim}"
            )
        super().__init__(config)
        in_features = self.b4.fc.in_features
        self.pose_head = PoseHead(in_features, head)

    def forward(  # type: ignore[override]
        self,
        img: Mapping[str, Tensor] | Tensor,
        c: Tensor | None = None,
        update_emas: bool = False,
        with_head: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        del c, update_emas  # the camera label is never read
        feat = self.features(img)
        logits = self.b4.head(feat, None)
        return (logits, self.pose_head(feat)) if with_head else logits
