"""HyperPose (`hyperpose`): a D pose embedding learned by soft contrastive + non-match losses on fakes (seed 000).

What seed 000 fixes (supplement §A.1, §D, Table C): EG3D's generator; D without pose input and with a branch that
outputs an m-dimensional pose embedding (m = 24; 96 for LSUN Church; structure is captured only with m >= 24,
§E); poses of fakes drawn from a predefined prior p_xi (Table C); total loss L_GAN + lambda1 * L_soft-con +
lambda2 * L_non-match with lambda1 = lambda2 = 0.7 / 0.9 / 0.5 / 0.5 for LSUN Bedroom / Church / AFHQ / CUB;
horizontal flips as augmentation; batch 48; for AFHQ EG3D's pose-bias handling "with only a probability of 0.2".

What it leaves open, and the choices made here (all fields of `HyperPoseConfig`):
- **Pose similarity** between two fakes: a Gaussian kernel k_ij = exp(-theta_ij^2 / (2 sigma^2)) of the angle
  theta_ij between their viewing directions (camera positions on the sphere about the origin). It depends on the poses
  only, not on how the prior parameterises them, and has no wrap-around for 360-degree priors. sigma = 0.3 rad: about
  the pose spread of the face-like priors, so each anchor has several soft positives in a batch.
- **Soft contrastive loss** (soft InfoNCE): for each fake i, the target distribution over the other fakes j is
  q_ij = softmax_j(log k_ij) and the prediction p_ij = softmax_j(e_i . e_j / tau); L_soft-con = mean_i
  CE(q_i, p_i). tau = 0.1 (SimCLR's usual range). Embeddings e are L2-normalised.
- **Pairing rule** ("twin"): of B fakes, B/2 scenes z_k are each rendered twice, once at their own pose xi_k and
  once at the pose of the next scene xi_{k+1} (a cyclic shift, so no scene is paired with its own pose). Every
  batch then holds same-pose / different-scene pairs and same-scene / different-pose pairs at no extra rendering
  cost; both renders of a scene share the mapping's conditioning, so they are the same scene.
- **Non-match loss**, the term that separates pose from scene: pull together different-scene / same-pose pairs,
  (1 - e_i . e_j), and stop same-scene / different-pose pairs from being more alike than their poses are,
  relu(e_i . e_j - k_ij). A D that encodes the scene in the embedding pays for both.
- **Flips**: with probability `flip_prob` per pose pair, both renders sharing a pose are mirrored and their
  cameras mirrored with them (`Cameras.mirror`), so pose pairs survive and a flipped scene counts as a new scene.
  Real images are flipped by `run.xflip` (their labels, mirrored too, are never read).
- **Phases**: the objective is shared, so both terms enter Gmain (G learns to render pose-congruent images) and
  Dmain (D's embedding learns from detached fakes). Real images only pass through the logit branch.
- **Pose-bias handling with p = 0.2** (AFHQ): read as EG3D's generator pose conditioning where the mapping sees
  the rendering camera with probability 0.2 and another fake's camera otherwise, i.e. `loss.gen_pose_cond =
  true`, `loss.gpc_reg_prob = 0.8` (EG3D's own AFHQ value): the `afhq256` preset sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from ..cameras.camera import Cameras, as_cameras
from ..networks.pose_heads import PoseHeadConfig
from .posefree import (
    FakeLayout,
    PoseConfig,
    PoseFreeLoss,
    PriorRuntime,
    build_pose_free,
    prior_preset,
    view_directions,
)
from .registry import BuildContext, TrainSettings


@dataclass
class HyperPoseConfig:
    embed_dim: int = 24
    """Pose embedding dimension m (seed 000 §D: 24 for LSUN Bedroom, AFHQ and CUB; 96 for LSUN Church)."""
    lambda_soft: float = 0.5
    """lambda1, weight of the soft contrastive loss (Table C datasets: 0.7 / 0.9 / 0.5 / 0.5)."""
    lambda_nonmatch: float = 0.5
    """lambda2, weight of the non-match loss (the supplement gives one value per dataset for both)."""
    tau: float = 0.1
    """Temperature of the embedding similarities e_i . e_j / tau."""
    sigma: float = 0.3
    """Width (radians of viewing-direction angle) of the pose-similarity kernel."""
    pairing: Literal["twin", "independent"] = "twin"
    """'twin': B/2 scenes each rendered at its own and its neighbour's pose; 'independent': B unrelated fakes
    (then the non-match loss has no pairs and only the soft contrastive term acts)."""
    flip_prob: float = 0.5
    """Probability that a pose pair of fakes is mirrored (image and camera) before D."""
    same_pose_tol: float = 1e-4
    """Viewing directions closer than this angle (radians) count as the same pose."""
    head_hidden: int | None = None
    """Hidden width of the embedding branch; None = half of D's 4x4 feature width."""


@dataclass
class HyperPoseMethodConfig:
    """The `hyperpose` method's config: the fake-pose prior and the pose embedding's losses."""

    pose: PoseConfig = field(default_factory=PoseConfig)
    hyperpose: HyperPoseConfig = field(default_factory=HyperPoseConfig)


#: Seed 000 §D / Table C per preset: (embedding dimension m, lambda1 = lambda2).
TABLE_C = {"lsun_bedroom256": (24, 0.7), "lsun_church256": (96, 0.9), "afhq256": (24, 0.5), "cub256": (24, 0.5)}


def hyperpose_preset(cfg: TrainSettings, preset: str) -> None:
    """Preset hook: the dataset's prior, and Table C's m and lambdas for its datasets."""
    prior_preset(cfg, preset)
    if preset in TABLE_C:
        m, lam = TABLE_C[preset]
        cfg.method.hyperpose = HyperPoseConfig(embed_dim=m, lambda_soft=lam, lambda_nonmatch=lam)


def pose_similarity(dirs: torch.Tensor, sigma: float) -> torch.Tensor:  # [B, 3] unit -> [B, B] in (0, 1]
    """Gaussian kernel of the angle between viewing directions: exp(-theta^2 / (2 sigma^2))."""
    cos = (dirs @ dirs.T).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    return torch.exp(-theta.square() / (2 * sigma**2))


def soft_contrastive_loss(emb: torch.Tensor, sim: torch.Tensor, tau: float) -> torch.Tensor:
    """Soft InfoNCE: mean_i CE(softmax_j(log sim_ij), softmax_j(e_i . e_j / tau)) over j != i. emb [B, m] unit."""
    n = emb.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=emb.device)
    logits = (emb @ emb.T / tau).masked_fill(eye, float("-inf"))
    target = torch.log(sim.clamp_min(1e-30)).masked_fill(eye, float("-inf")).softmax(dim=1)
    log_p = logits.log_softmax(dim=1).masked_fill(eye, 0.0)
    return -(target * log_p).sum(dim=1).mean()


def nonmatch_loss(
    emb: torch.Tensor, sim: torch.Tensor, scene: torch.Tensor, same_pose: torch.Tensor
) -> tuple[torch.Tensor, int, int]:
    """Pull different-scene/same-pose pairs: 1 - cos; push same-scene/different-pose pairs: relu(cos - sim).

    emb [B, m] unit, sim [B, B] pose kernel, scene [B] scene ids, same_pose [B, B] bool. Returns (loss, number of
    pull pairs, number of push pairs); a term without pairs contributes 0.
    """
    n = emb.shape[0]
    cos = emb @ emb.T
    off = ~torch.eye(n, dtype=torch.bool, device=emb.device)
    same_scene = scene[:, None] == scene[None, :]
    pull = off & ~same_scene & same_pose
    push = off & same_scene & ~same_pose
    loss = emb.new_zeros(())
    if pull.any():
        loss = loss + (1 - cos[pull]).mean()
    if push.any():
        loss = loss + F.relu(cos[push] - sim[push]).mean()
    return loss, int(pull.sum()) // 2, int(push.sum()) // 2


class HyperPoseLoss(PoseFreeLoss):
    method_cfg: HyperPoseConfig

    def _twin(self, n: int) -> bool:
        return self.method_cfg.pairing == "twin" and n >= 4 and n % 2 == 0

    def arrange_fakes(self, z: torch.Tensor, c: Cameras | torch.Tensor) -> tuple[torch.Tensor, Cameras]:
        """'twin' layout: z = [z_0..z_{h-1}, z_0..z_{h-1}], c = [c_0..c_{h-1}, c_{h-1}, c_0..c_{h-2}]."""
        c = as_cameras(c)
        if not self._twin(len(z)):
            return z, c
        h = len(z) // 2
        return torch.cat([z[:h], z[:h]]), Cameras.cat([c[:h], c[:h].roll(1)])

    def conditioning(self, c: Cameras, swap_prob: float | None) -> torch.Tensor:
        cond = super().conditioning(c, swap_prob)
        if self._twin(len(c)):  # both renders of a scene get the same mapping input: the same w
            h = len(c) // 2
            cond = torch.cat([cond[:h], cond[:h]])
        return cond

    def draw_layout(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(scene id [n], flip [n] bool) for the fakes of one phase; flips are drawn per pose pair."""
        p = self.method_cfg.flip_prob
        if self._twin(n):
            h = n // 2
            scene = torch.arange(h, device=device).repeat(2)
            flip_a = torch.rand(h, device=device) < p
            return scene, torch.cat([flip_a, torch.roll(flip_a, 1, 0)])
        return torch.arange(n, device=device), torch.rand(n, device=device) < p

    def prepare_fakes(self, gen: dict[str, torch.Tensor], c: Cameras
                      ) -> tuple[dict[str, torch.Tensor], Cameras, FakeLayout]:
        """Mirror the drawn pose pairs (images and cameras); a mirrored scene counts as another scene."""
        scene, flip = self.draw_layout(len(c), c.device)
        if bool(flip.any()):
            f = flip[:, None, None, None]
            gen = {k: torch.where(f, v.flip(-1), v) if k in ("image", "image_raw") else v for k, v in gen.items()}
            c = c.mirror().where(flip, c)
        return gen, c, FakeLayout(scene * 2 + flip.long(), flip)

    def aux_loss(self, head: torch.Tensor, c: Cameras, phase: str, layout: FakeLayout
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.method_cfg
        dirs = view_directions(c.to(torch.float64))
        sim = pose_similarity(dirs, cfg.sigma).to(head.dtype)
        same_pose = torch.arccos((dirs @ dirs.T).clamp(-1, 1)) < cfg.same_pose_tol
        soft = soft_contrastive_loss(head, sim, cfg.tau)
        nonmatch, n_pull, n_push = nonmatch_loss(head, sim, layout.scene, same_pose)
        stats = {f"Loss/{phase}/soft_con": soft.item(), f"Loss/{phase}/nonmatch": nonmatch.item()}
        if n_pull:
            stats[f"Pose/{phase}/pull_pairs"] = float(n_pull)
        return cfg.lambda_soft * soft + cfg.lambda_nonmatch * nonmatch, stats


def build_hyperpose(ctx: BuildContext) -> PriorRuntime:
    cfg: HyperPoseConfig = ctx.method_cfg.hyperpose
    head = PoseHeadConfig(out_dim=cfg.embed_dim, hidden_dim=cfg.head_hidden, normalize=True)
    return build_pose_free(ctx, head, HyperPoseLoss, cfg)
