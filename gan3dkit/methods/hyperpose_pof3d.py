"""HyperPose + PoF3D (`hyperpose+pof3d`): HyperPose's contrastive D with PoF3D's learned camera distribution.

Seed 000 §B.2 (Fig. Cb, Table B: FID 10.3 on LSUN Bedroom vs 10.8 with the predefined prior): PoF3D is
"integrated into our algorithm to estimate the camera distribution"; its "learnable module ... performs the role of
sampling camera poses". How PoF3D estimates that distribution (seed 001, methods.md §1.4-1.5) is two things beside
the pose mapping: a pose-aware D (a camera branch supervised by G's poses, D's logits conditioned on its detached
reading) and the G-D pose consistency term (only the pose mapping learns from it). Without them PoF3D's own
ablation reports depth error 1.30 instead of 0.29 (seed 001, "w/o pose-aware D").

`pof3d.mechanism` chooses (default 'full'):
- 'full': D has HyperPose's embedding branch (`hyperpose.embed_dim`, unit norm) and PoF3D's camera branch (h, v);
  the logits are conditioned on the camera branch's detached prediction (`discriminator.c_dim = 2`);
  Dmain adds `pof3d.dis_cam_weight * MSE(D_cam(fake), pose.detach())`, Gmain adds
  `pof3d.pose_gd_weight * MSE(pose_G(w.detach()), D_cam(G(z)).detach())`.
- 'learned_only': no camera branch and an unconditional D (`discriminator.c_dim = 0`): the pose mapping learns
  only through the render (the camera is differentiable) from HyperPose's and the GAN's losses.
Both keep HyperPose's objective, its twin pairing (scene k's second render at scene k-1's learned pose) and its
flips (a mirrored fake's camera target is mirrored too: h -> pi - h). PoF3D's symmetry renders (`flip_to_dis`) are
not added: HyperPose's own flips play that part; the combination is not specified further by seed 000.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from .hyperpose import HyperPoseConfig, HyperPoseLoss, HyperPoseMethodConfig, hyperpose_preset
from .pof3d import (
    LearnedPoseRuntime,
    PoF3DCombination,
    PoF3DConfig,
    combination_preset,
    learned_pose_generator,
    mirror_hv,
    pose_terms,
)
from .posefree import FakeLayout
from .registry import BuildContext


class HyperPosePoF3DLoss(PoF3DCombination, HyperPoseLoss):
    def learned_layout(self, x: torch.Tensor) -> torch.Tensor:
        """Twin layout: the second render of scene k takes scene k-1's pose."""
        if not self._twin(len(x)):
            return x
        h = len(x) // 2
        return torch.cat([x[:h], torch.roll(x[:h], 1, 0)])

    def pof3d_terms(self, gen: dict[str, torch.Tensor], heads: list[torch.Tensor], phase: str, layout: FakeLayout
                    ) -> tuple[torch.Tensor, dict[str, float]]:
        flip = layout.flip  # which fakes D saw mirrored (HyperPoseLoss.prepare_fakes)
        return pose_terms(self.G, heads[1], mirror_hv(gen["pose"], flip), gen["pose_w"], phase, self.pof3d,
                          to_pred=lambda hv: mirror_hv(hv, flip))


def build_hyperpose_pof3d(ctx: BuildContext) -> LearnedPoseRuntime:
    hp: HyperPoseConfig = ctx.method_cfg.hyperpose
    pof: PoF3DConfig = ctx.method_cfg.pof3d
    G = learned_pose_generator(ctx)
    head = PoseHeadConfig(out_dim=hp.embed_dim, hidden_dim=hp.head_hidden, normalize=True)
    camera = PoseHeadConfig(out_dim=2, hidden_dim=pof.head_hidden) if pof.mechanism == "full" else None
    D = PoseHeadDiscriminator(ctx.discriminator, head, camera).to(ctx.device)
    return LearnedPoseRuntime(G, D, HyperPosePoF3DLoss(G, D, ctx.loss, ctx.batch, hp, pof))


@dataclass
class HyperPosePoF3DMethodConfig(HyperPoseMethodConfig):
    """The `hyperpose+pof3d` method's config: HyperPose's sections and PoF3D's."""

    pof3d: PoF3DConfig = field(default_factory=PoF3DConfig)


#: Preset hook: HyperPose's per-dataset values, then PoF3D's learned camera (its cats script on cats).
hyperpose_pof3d_preset = combination_preset(hyperpose_preset)
