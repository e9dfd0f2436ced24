"""EG3D† + PoF3D (`eg3d-posereg+pof3d`): EG3D†'s pose regression with PoF3D's learned camera distribution.

Seed 000 §B.2 and Table B (LSUN Bedroom: "camera distribution: learnable, pose-related: pose regression", FID
12.4 vs 12.8 with the predefined prior): the rendering pose xi of a fake is no longer drawn from p_xi but read by
PoF3D's pose mapping from its w (seed 001: G(z, Psi(z))); D's second branch regresses (pitch, yaw) of fakes and
L_regression = ||xi_hat - xi|| (`posereg.norm`, weight `posereg.lambda_regression`) compares it with that learned
pose (detached: the target is the pose G rendered at), in both phases as in `eg3d-posereg`.

`pof3d.mechanism` chooses how the camera distribution is estimated (default 'full', as hyperpose+pof3d):
- 'full': PoF3D's pose-aware D: the logits are conditioned on D's own detached (pitch, yaw) reading
  (`discriminator.c_dim = 2`), and Gmain adds the G-D pose consistency term
  `pof3d.pose_gd_weight * MSE(angles(pose_G(w.detach())), xi_hat(G(z)).detach())`, angles = the (pitch, yaw)
  of the camera built from (h, v), as the regression target (only the pose mapping learns).
  D's regression branch *is* PoF3D's camera head here: its Dmain supervision by G's poses is L_regression, so
  `pof3d.dis_cam_weight` is not added on top (it would weight the same MSE twice).
- 'learned_only': EG3D†'s unconditional D (`discriminator.c_dim = 0`); the pose mapping learns only through the
  render.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from .pof3d import (
    LearnedPoseRuntime,
    PoF3DCombination,
    PoF3DConfig,
    combination_preset,
    learned_pose_generator,
    pose_terms,
)
from .posefree import FakeLayout, pose_angles
from .posereg import PoseRegConfig, PoseRegLoss, PoseRegMethodConfig, posereg_preset
from .registry import BuildContext


@dataclass
class PoseRegPoF3DMethodConfig(PoseRegMethodConfig):
    """The `eg3d-posereg+pof3d` method's config: EG3D†'s sections and PoF3D's."""

    pof3d: PoF3DConfig = field(default_factory=PoF3DConfig)


#: Preset hook: EG3D†'s (the dataset's prior), then PoF3D's learned camera (its cats script on cats).
posereg_pof3d_preset = combination_preset(posereg_preset)


class PoseRegPoF3DLoss(PoF3DCombination, PoseRegLoss):
    def angles(self, hv: torch.Tensor) -> torch.Tensor:  # [B, 2] (h, v) -> [B, 2] (pitch, yaw), differentiable
        """EG3D†'s (pitch, yaw) of the camera G renders at for (h, v): the regression target's coordinates."""
        return pose_angles(self.G.pose_mapping.camera_batch(hv))

    def pof3d_terms(self, gen: dict[str, torch.Tensor], heads: list[torch.Tensor], phase: str, layout: FakeLayout
                    ) -> tuple[torch.Tensor, dict[str, float]]:
        if phase == "D":  # L_regression is D's camera supervision here
            return heads[0].new_zeros(()), {}
        return pose_terms(self.G, heads[0], pose_angles(gen["camera"]), gen["pose_w"], phase, self.pof3d,
                          to_pred=self.angles)


def build_posereg_pof3d(ctx: BuildContext) -> LearnedPoseRuntime:
    reg: PoseRegConfig = ctx.method_cfg.posereg
    pof: PoF3DConfig = ctx.method_cfg.pof3d
    G = learned_pose_generator(ctx)
    D = PoseHeadDiscriminator(ctx.discriminator, PoseHeadConfig(out_dim=2, hidden_dim=reg.head_hidden)).to(ctx.device)
    return LearnedPoseRuntime(G, D, PoseRegPoF3DLoss(G, D, ctx.loss, ctx.batch, reg, pof))
