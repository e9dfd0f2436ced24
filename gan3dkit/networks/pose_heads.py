# SPDX-License-Identifier: Apache-2.0
"""Pose heads: a D pose branch on the 4x4 features (EG3D†, HyperPose, PoF3D) and PoF3D's pose mapping of w."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3dkit.cameras.camera import Cameras
from gan3dkit.cameras.samplers import lookat_cam2world
from gan3dkit.render.volume import RenderingConfig

from .config import DiscriminatorConfig, LearnedPoseConfig
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

    The pose branch shares the residual trunk and the epilogue's minibatch-std + conv, then has its own two FC
    layers, so one forward pass serves both. The logit branch never reads a camera label: with ``c_dim = 0`` it is
    EG3D's dual D without pose input (seed 000 §A.1); with ``c_dim = out_dim`` it is PoF3D's pose-aware D,
    conditioned on its own detached prediction (the pseudo label, methods.md §1.4). PoF3D runs D twice (predict,
    then condition); the trunk is deterministic, so one pass gives the same values and gradients.
    With a ``camera`` branch (HyperPose + PoF3D, seed 000 §B.2) D has both heads: the pose embedding and PoF3D's
    camera prediction, and the logits are conditioned on the camera branch's detached output
    (``c_dim = camera.out_dim``); ``with_head=True`` then returns ``(logits, head, camera)``.
    Module names of the shared part are those of ``DualDiscriminator``.
    """

    def __init__(self, config: DiscriminatorConfig, head: PoseHeadConfig, camera: PoseHeadConfig | None = None
                 ) -> None:
        cond = head.out_dim if camera is None else camera.out_dim
        if config.c_dim not in (0, cond):
            raise ValueError(
                f"a pose-head discriminator takes no camera input: discriminator.c_dim must be 0 (or {cond} "
                f"to condition on its own prediction), got {config.c_dim}"
            )
        super().__init__(config)
        in_features = self.b4.fc.in_features
        self.pose_head = PoseHead(in_features, head)
        self.camera_head = None if camera is None else PoseHead(in_features, camera)

    def forward(  # type: ignore[override]
        self,
        img: Mapping[str, Tensor] | Tensor,
        c: Tensor | None = None,
        update_emas: bool = False,
        with_head: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        del c, update_emas  # the camera label is never read
        feat = self.features(img)
        head = self.pose_head(feat)
        camera = None if self.camera_head is None else self.camera_head(feat)
        cond = head if camera is None else camera
        logits = self.b4.head(feat, self.camera_embedding(cond.detach()) if self.c_dim > 0 else None)
        if not with_head:
            return logits
        return (logits, head) if camera is None else (logits, head, camera)


class LearnedPose(nn.Module):
    """PoF3D's pose mapping: ``w [B, w_dim] -> (h, v) [B, 2]``, and EG3D camera labels for those angles."""

    def __init__(self, w_dim: int, cfg: LearnedPoseConfig, rendering: RenderingConfig) -> None:
        super().__init__()
        self.cfg = copy.deepcopy(cfg)
        self.radius, self.pivot, self.focal = rendering.avg_camera_radius, rendering.avg_camera_pivot, rendering.focal
        lr = cfg.lr_multiplier
        if cfg.linear:
            self.fc = FullyConnectedLayer(w_dim, 2, lr_multiplier=lr)
        else:
            self.fc0 = FullyConnectedLayer(w_dim, w_dim, activation="lrelu", lr_multiplier=lr)
            self.fc1 = FullyConnectedLayer(w_dim, 2, lr_multiplier=lr)

    def forward(self, w: Tensor) -> Tensor:  # [B, w_dim] (untruncated) -> [B, 2] = (h, v) radians
        out = self.fc(w) if self.cfg.linear else self.fc1(self.fc0(w))
        h = out[:, 0] + self.cfg.h_mean
        v = out[:, 1] + self.cfg.v_mean
        if self.cfg.clamp_h is not None:
            h = h.clamp(*self.cfg.clamp_h)
        if self.cfg.clamp_v is not None:
            v = v.clamp(*self.cfg.clamp_v)
        return torch.stack([h, v], dim=1)

    @torch.no_grad()
    def match_moments(self, w: Tensor, h: Tensor, v: Tensor) -> None:
        """Rescale and shift the last layer so (h, v) on these w [N, w_dim] have the mean and std of the target
        samples h [N], v [N] (a start from a chosen distribution; the clamps are not applied)."""
        last = self.fc if self.cfg.linear else self.fc1
        x = w if self.cfg.linear else self.fc0(w)
        out = last(x)  # [N, 2], before the (h_mean, v_mean) offsets
        for i, (target, offset) in enumerate(((h, self.cfg.h_mean), (v, self.cfg.v_mean))):
            target = target.to(out)
            scale = target.std() / out[:, i].std().clamp_min(1e-12)
            shift = target.mean() - offset - scale * out[:, i].mean()
            assert last.bias is not None
            last.weight[i] *= scale  # out_i -> scale * out_i + shift
            last.bias[i] = (scale * last.bias[i] * last.bias_gain + shift) / last.bias_gain

    def camera_batch(self, hv: Tensor) -> Cameras:  # [B, 2] -> B cameras, differentiable in hv
        """EG3D's LookAt camera at (h, v): theta = h, phi = arccos(1 - 2 v / pi) (`lookat_cam2world`)."""
        return Cameras.from_matrices(lookat_cam2world(hv[:, 0], hv[:, 1], self.radius, self.pivot), self.focal)

    def cameras(self, hv: Tensor) -> Tensor:  # [B, 2] -> [B, 25], differentiable in hv
        """`camera_batch` as labels: the record G's learned-pose output and the metrics' samples keep."""
        return self.camera_batch(hv).to_label()
