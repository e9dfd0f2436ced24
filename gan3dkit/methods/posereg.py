"""EG3D† (`eg3d-posereg`): EG3D without poses; D regresses (pitch, yaw) of fakes (seed 000, supplement §A).

Seed 000 §A.1: the pose-conditioning input of EG3D's D is removed and a second branch predicts
xi_hat = (pitch, yaw) in R^2 from the image. §A.2, Eq. (A)-(B): L_regression = E_{z, xi ~ p_xi} ||xi_hat - xi||
(l1 or l2) on **fake images only**, added with weight lambda_regression to EG3D's objective. The supplement does not
say which phases the term enters; the objective L(D, G) is shared, so here it enters both: D's branch learns to
read the pose of (detached) fakes in Dmain, and G is pushed in Gmain to render images whose pose D reads as the
rendering pose. Real images only pass through the logit branch; their labels are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from ..cameras.camera import Cameras
from ..networks.pose_heads import PoseHeadConfig
from .posefree import FakeLayout, PoseConfig, PoseFreeLoss, PriorRuntime, build_pose_free, pose_angles, prior_preset
from .registry import BuildContext, TrainSettings


@dataclass
class PoseRegConfig:
    """EG3D† settings (seed 000 §A; the weight and the norm are left open there, so both are fields)."""

    lambda_regression: float = 1.0
    """Weight of L_regression in both G and D phases. Seed 000 gives no value; 1 matches PoF3D's pose MSE weights
    (`dis_cam_weight` 2, `pose_gd_weight` 1 in its FFHQ script) in magnitude."""
    norm: Literal["l1", "l2"] = "l2"
    """||.||: 'l1' = mean absolute error, 'l2' = mean squared error of the two angles (radians)."""
    head_hidden: int | None = None
    """Hidden width of the regression branch; None = half of D's 4x4 feature width (PoF3D's camera head)."""


@dataclass
class PoseRegMethodConfig:
    """The `eg3d-posereg` method's config: the fake-pose prior and the regression branch."""

    pose: PoseConfig = field(default_factory=PoseConfig)
    posereg: PoseRegConfig = field(default_factory=PoseRegConfig)


def posereg_preset(cfg: TrainSettings, preset: str) -> None:
    """Preset hook: the preset dataset's prior."""
    prior_preset(cfg, preset)


def regression_loss(pred: torch.Tensor, target: torch.Tensor, norm: str) -> torch.Tensor:
    """Mean over the batch and both angles of |pred - target| (l1) or (pred - target)^2 (l2); pred, target [B, 2]."""
    diff = pred - target
    return diff.abs().mean() if norm == "l1" else diff.square().mean()


class PoseRegLoss(PoseFreeLoss):
    method_cfg: PoseRegConfig

    def aux_loss(self, head: torch.Tensor, c: Cameras, phase: str, layout: FakeLayout
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        target = pose_angles(c).to(head.dtype)  # [B, 2] rendering pose: known for fakes
        loss = regression_loss(head, target, self.method_cfg.norm)
        err = (head.detach() - target).abs().mean(0)
        stats = {
            f"Loss/{phase}/pose_reg": loss.item(),
            f"Pose/{phase}/abs_err_pitch": err[0].item(),
            f"Pose/{phase}/abs_err_yaw": err[1].item(),
        }
        return loss * self.method_cfg.lambda_regression, stats


def build_posereg(ctx: BuildContext) -> PriorRuntime:
    cfg: PoseRegConfig = ctx.method_cfg.posereg
    return build_pose_free(ctx, PoseHeadConfig(out_dim=2, hidden_dim=cfg.head_hidden), PoseRegLoss, cfg)
