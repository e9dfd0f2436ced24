"""PoF3D (`pof3d`): the generator learns its own pose distribution from w; a pose-aware D (seed 001, methods.md §1).

Mechanics follow the public code (VivianSZF/pof3d @6666513, `training/loss_pose.py`, `training/networks_stylegan2.py`
`MappingNetworkPose`, `training/dual_discriminator.py`) with the FFHQ script (`ffhq.sh`) values as defaults:
- G's camera is (h, v) = (pi/2, pi/2) + MLP(untruncated w), lr multiplier 0.01 (`LearnedPoseConfig`); the real
  images' labels are never read and the mapping has no camera input (`generator.mapping.c_dim = 0`: PoF3D's
  `embed_features = 0`; PoF3D asserts GPC swapping is off).
- D has a camera head on its 4x4 features and is conditioned on its own detached prediction (c_dim 2).
- Gmain: softplus(-D(G(z))) + softplus(-D(G(z) at the flipped camera)) [`flip_to_dis`] +
  pose_gd_weight * MSE(pose_G(w.detach()), D_cam(G(z)).detach()) [only the pose mapping learns from it].
- Dmain: dis_cam_weight * MSE(D_cam(G(z)), pose_G(z).detach()) [G supervises D's camera head] +
  flip_to_disd_weight * (softplus(D(G(z))) + softplus(D(G(z) at the flipped camera))) + softplus(-D(x)).
- The flip ("symmetry", `flip_type = flip_both`): per batch, with probability 1/2 the yaw mirror of cam2world
  (negate entries [2,0], [0,1], [0,2], [0,3]), else the pitch mirror ([2,1], [0,1], [1,0], [1,2], [1,3]), applied to
  the camera outside synthesis so the minibatch-std layer never mixes flipped and unflipped images.
Differences, on purpose: one G render serves D's camera loss and D's fake loss (PoF3D renders twice, with the same
w and camera, differing only in rendering noise), and G's pose-consistency term reuses Gmain's render (PoF3D renders
again from the detached w: the same image). PoF3D's bugs listed in methods.md §1.5 are not reproduced; GeoD is off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..cameras import LABEL_DIM, PosePrior
from ..cameras.camera import Cameras, as_cameras
from ..networks import TriPlaneGenerator
from ..networks.config import LearnedPoseConfig
from ..networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from .eg3d import EG3DLoss, StepState
from .posefree import FakeLayout, PoseConfig, prior_preset, resolve_prior
from .registry import BuildContext, TrainSettings

_YAW_FLIP = ((2, 0), (0, 1), (0, 2), (0, 3))
_PITCH_FLIP = ((2, 1), (0, 1), (1, 0), (1, 2), (1, 3))
_YAW_FLIP_SHAPENET = ((0, 0), (2, 1), (2, 2), (2, 3))


@dataclass
class PoF3DConfig:
    """PoF3D's weights (ffhq.sh: dis_cam_weight 2, pose_gd_weight 1; cat.sh: 10 / 10; shapenet_cars.sh: 2 / 2)."""

    dis_cam_weight: float = 2.0
    """Weight of D's camera-head loss MSE(D_cam(G(z)), pose_G(z).detach()) in Dmain (`--dis_cam_weight`)."""
    pose_gd_weight: float = 1.0
    """Weight of G's pose-consistency loss MSE(pose_G(w.detach()), D_cam(G(z)).detach()) in Gmain."""
    flip_to_dis: bool = True
    """Also show D a render at the flipped camera in Gmain and Dmain (the symmetry term)."""
    flip_to_disd_weight: float = 1.0
    """Weight of both fake terms in Dmain when flipping (`--flip_to_disd_weight`; scripts: 1)."""
    flip_type: Literal["flip_both", "flip_both_shapenet"] = "flip_both"
    """Mirror sets of cam2world entries: faces/cats (`flip_both`) or ShapeNet cars (`flip_both_shapenet`)."""
    head_hidden: int | None = None
    """Hidden width of D's camera head; None = half of D's 4x4 feature width (PoF3D: 8192 -> 4096 -> 2)."""
    mechanism: Literal["full", "learned_only"] = "full"
    """How the combinations (hyperpose+pof3d, eg3d-posereg+pof3d) learn the camera distribution. 'full': PoF3D's
    own mechanism, a pose-aware D (a camera branch supervised by G's poses, the logits conditioned on its detached
    prediction: discriminator.c_dim 2) and the G-D pose consistency term (`pose_gd_weight`); PoF3D's ablation
    without it: depth error 0.29 -> 1.30 (seed 001). 'learned_only': the pose mapping learns only through the
    render (discriminator.c_dim 0). The pof3d method itself is always 'full'."""


@dataclass
class PoF3DMethodConfig:
    """The `pof3d` method's config: its weights, and `pose` (only `pose.init_learned` and the prior it starts at)."""

    pose: PoseConfig = field(default_factory=PoseConfig)
    pof3d: PoF3DConfig = field(default_factory=PoF3DConfig)


#: Presets trained on cats, where PoF3D's cat.sh values apply to the methods with a pof3d section.
CAT_PRESETS = ("afhq512", "afhq256")


def learned_pose_preset(cfg: TrainSettings, preset: str, objects: bool = False) -> None:
    """PoF3D's release scripts per dataset (methods.md §1.2): ffhq.sh is the default section; cat.sh for the cat
    presets (dis_cam_weight 10, pose_gd_weight 10, R1 gamma 5, neural rendering fixed at 64: `--gamma 5
    --neural_rendering_resolution_final 64`); with `objects`, shapenet_cars.sh for white-background objects (2 / 2,
    the ShapeNet flip, h in [0, 2 pi], v in [0, pi], h_mean pi). The mapping has no camera input and no GPC."""
    cfg.generator.learned_pose = LearnedPoseConfig()  # PoF3D ffhq.sh / cat.sh: h_mean pi/2, no clamp
    if preset in CAT_PRESETS:
        cfg.method.pof3d = PoF3DConfig(dis_cam_weight=10.0, pose_gd_weight=10.0)
        cfg.loss.r1_gamma, cfg.loss.nrr_final = 5.0, None
    elif objects and cfg.generator.rendering.white_back:  # ShapeNet-like objects
        cfg.generator.learned_pose = LearnedPoseConfig(h_mean=math.pi, clamp_h=(0.0, 2 * math.pi),
                                                       clamp_v=(0.0, math.pi))
        cfg.method.pof3d = PoF3DConfig(dis_cam_weight=2.0, pose_gd_weight=2.0, flip_type="flip_both_shapenet")
    cfg.loss.gen_pose_cond = False
    cfg.generator.c_gen_conditioning_zero = True
    cfg.generator.mapping.c_dim = 0  # PoF3D's mapping has no camera input (`embed_features = 0`)


def pof3d_preset(cfg: TrainSettings, preset: str) -> None:
    """Preset hook of `pof3d`: the dataset's prior (for `pose.init_learned`) and PoF3D's per-dataset script."""
    prior_preset(cfg, preset)
    learned_pose_preset(cfg, preset, objects=True)


def combination_preset(base: Callable[[TrainSettings, str], None]) -> Callable[[TrainSettings, str], None]:
    """The preset hook of a combination with PoF3D: its base method's, then PoF3D's learned camera (cats: cat.sh)."""

    def hook(cfg: TrainSettings, preset: str) -> None:
        base(cfg, preset)
        learned_pose_preset(cfg, preset)

    return hook


def check_full_mechanism(cfg: TrainSettings) -> None:
    """Check hook of `pof3d`: the method is PoF3D's full mechanism."""
    if cfg.method.pof3d.mechanism != "full":
        raise ValueError("pof3d.mechanism=learned_only is for the combinations with PoF3D; the pof3d method is "
                         "PoF3D's full mechanism")


def combination_d_c_dim(method_cfg: Any) -> int:
    """D's conditioning width of a combination with PoF3D: its pose reading (2), or none without the pose-aware D."""
    return 0 if method_cfg.pof3d.mechanism == "learned_only" else 2


def flip_cameras(c: Cameras | torch.Tensor, kind: Literal["yaw", "pitch"], flip_type: str = "flip_both"
                 ) -> Cameras | torch.Tensor:
    """PoF3D's camera mirror: negate a fixed set of cam2world entries (`Cameras.negate_entries`), intrinsics
    unchanged. Cameras give cameras; [B, 25] labels (G's output record) give labels."""
    entries = _PITCH_FLIP if kind == "pitch" else (_YAW_FLIP_SHAPENET if flip_type == "flip_both_shapenet"
                                                   else _YAW_FLIP)
    if isinstance(c, Cameras):
        return c.negate_entries(entries)
    return Cameras.from_label(c).negate_entries(entries).to_label()


def mirror_hv(hv: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """(h, v) [B, 2] of the horizontally mirrored views where flip [B] is set: h -> pi - h (yaw negated)."""
    return torch.where(flip[:, None], torch.stack([math.pi - hv[:, 0], hv[:, 1]], dim=1), hv)


def pose_terms(G: TriPlaneGenerator, pred: torch.Tensor, target: torch.Tensor, pose_w: torch.Tensor, phase: str,
               cfg: PoF3DConfig, to_pred=None) -> tuple[torch.Tensor, dict[str, float]]:
    """PoF3D's G<->D pose terms on fakes (methods.md §1.5).

    pred [B, k]: D's camera reading of the fakes; target [B, k]: the poses they were rendered at (in pred's
    coordinates); pose_w [B, w_dim]: the w each pose came from. D phase: dis_cam_weight * MSE(pred, target.detach())
    (G supervises D's camera head). G phase: pose_gd_weight * MSE(to_pred(pose_mapping(pose_w.detach())),
    pred.detach()): only the pose mapping learns. `to_pred` maps the mapping's (h, v) into pred's coordinates.
    """
    if phase == "G":
        own = G.pose_mapping(pose_w.detach())
        gd = F.mse_loss(own if to_pred is None else to_pred(own), pred.detach())
        return cfg.pose_gd_weight * gd, {"Loss/G/pose_gd": gd.item()}
    cam_loss = F.mse_loss(pred, target.detach())
    return cfg.dis_cam_weight * cam_loss, {"Loss/D/cam": cam_loss.item()}


def learned_pose_stats(pose: torch.Tensor) -> dict[str, float]:
    p = pose.detach()
    return {"Pose/learned_h_mean": p[:, 0].mean().item(), "Pose/learned_v_mean": p[:, 1].mean().item(),
            "Pose/learned_h_std": p[:, 0].std().item() if len(p) > 1 else 0.0}


class LearnedPoseMixin:
    """run_G with the generator's own camera: c = pose_mapping(w) (for PoF3D and its compositions)."""

    G: TriPlaneGenerator

    def learned_layout(self, x: torch.Tensor) -> torch.Tensor:
        """Hook: rearrange per-sample pose data of a batch ([B, ...]); identity here."""
        return x

    def run_G(self, z: torch.Tensor, c: Cameras | torch.Tensor, st: StepState, update_emas: bool = False
              ) -> dict[str, torch.Tensor]:
        """G's output plus 'camera' [B, 25] (the label record of the cameras) and 'pose' [B, 2] (h, v) it rendered
        at, and 'pose_w' [B, w_dim]: the untruncated w each pose was read from (the layout may render a scene at
        another scene's pose). `c` only sizes the mapping's (unread) conditioning input."""
        ws = self.G.mapping(z, torch.zeros(len(c), LABEL_DIM, device=z.device), update_emas=update_emas)
        pose_w = self.learned_layout(ws[:, 0])
        pose = self.G.pose_mapping(pose_w)  # from the untruncated w
        cams = self.G.pose_mapping.camera_batch(pose)
        out = self.G.synthesis(ws, cams, neural_rendering_resolution=st.nrr, update_emas=update_emas)
        return {**out, "ws": ws, "camera": cams.to_label(), "pose": pose, "pose_w": pose_w}


class PoF3DCombination(LearnedPoseMixin):
    """What the combinations with PoF3D share (hyperpose+pof3d, eg3d-posereg+pof3d): poses from G's pose mapping,
    the `pof3d` section, and PoF3D's pose terms (`pof3d_terms`) unless `pof3d.mechanism = learned_only`.
    Mixed in before a `PoseFreeLoss` subclass, whose `learned_terms` hook this fills."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, cfg, batch: int, method_cfg, pof3d: PoF3DConfig
                 ) -> None:
        super().__init__(G, D, cfg, batch, method_cfg, None)  # type: ignore[call-arg]  # no prior: G's poses
        self.pof3d = pof3d

    def pof3d_terms(self, gen: dict[str, torch.Tensor], heads: list[torch.Tensor], phase: str, layout: FakeLayout
                    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def learned_terms(self, gen: dict[str, torch.Tensor], heads: list[torch.Tensor], phase: str, layout: FakeLayout
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        stats = learned_pose_stats(gen["pose"])
        if self.pof3d.mechanism == "learned_only":
            return heads[0].new_zeros(()), stats
        aux, more = self.pof3d_terms(gen, heads, phase, layout)
        return aux, {**stats, **more}


class PoF3DLoss(LearnedPoseMixin, EG3DLoss):
    def __init__(self, G: TriPlaneGenerator, D: torch.nn.Module, cfg, batch: int, method_cfg: PoF3DConfig) -> None:
        super().__init__(G, D, cfg, batch)
        self.method_cfg = method_cfg

    def _flip_kind(self) -> Literal["yaw", "pitch"]:
        return "yaw" if bool(torch.rand([]) < 0.5) else "pitch"

    def fake_terms(
        self, gen: dict[str, torch.Tensor], c: Cameras | torch.Tensor, st: StepState, phase: str,
        update_emas: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, float]]:
        mc = self.method_cfg
        logits, pred = self.D(self.d_input(gen, st), None, with_head=True)
        stats: dict[str, float] = {}
        sign = -1.0 if phase == "G" else 1.0  # G: softplus(-logits); D: softplus(logits)
        aux, stats = pose_terms(self.G, pred, gen["pose"], gen["ws"][:, 0], phase, mc)
        if phase == "D":
            aux = aux + (mc.flip_to_disd_weight - 1) * F.softplus(logits).mean()
        if mc.flip_to_dis:
            cam_f = flip_cameras(as_cameras(gen["camera"]), self._flip_kind(), mc.flip_type)
            flip = self.G.synthesis(gen["ws"], cam_f, neural_rendering_resolution=st.nrr, update_emas=update_emas)
            if phase == "D":
                flip = {k: flip[k].detach() for k in ("image", "image_raw")}
            logits_f = self.D(self.d_input(flip, st), None)
            weight = 1.0 if phase == "G" else mc.flip_to_disd_weight
            flip_loss = F.softplus(sign * logits_f).mean()
            aux = aux + weight * flip_loss
            stats[f"Loss/{phase}/flip"] = flip_loss.item()
        stats.update(learned_pose_stats(gen["pose"]))
        return logits, aux, stats


@dataclass
class LearnedPoseRuntime:
    """Runtime of the learned-pose methods; `fake_cameras` are placeholders (the loss uses G's own cameras)."""

    G: TriPlaneGenerator
    D: torch.nn.Module
    loss: EG3DLoss
    pose_prior: None = None

    def _frontal(self, n: int) -> Cameras:
        hv = torch.full((n, 2), math.pi / 2)
        return self.G.pose_mapping.camera_batch(hv).to(torch.float32)

    def fake_cameras(self, n: int) -> Cameras:
        return self._frontal(n)

    def grid_cameras(self, n: int, generator: torch.Generator) -> Cameras:
        return self._frontal(n)


def check_generator(ctx: BuildContext) -> None:
    if ctx.generator.learned_pose is None:
        raise ValueError("this method needs generator.learned_pose (train_preset(name, method) sets it)")
    if ctx.loss.gen_pose_cond or ctx.generator.mapping.c_dim != 0:
        # PoF3D's MappingNetwork has embed_features = 0: z alone. A c_dim = 25 mapping fed zeros is not the same: its
        # normalised camera embedding jumps from 0 to a unit vector once the embedding bias leaves 0, shifting w.
        raise ValueError("PoF3D's mapping is not camera-conditioned: set loss.gen_pose_cond=false and "
                         "generator.mapping.c_dim=0 (train_preset(name, method) does)")


def start_at_prior(G: TriPlaneGenerator, prior: PosePrior, n: int = 4096, seed: int = 0) -> None:
    """Move G's learned pose distribution to the prior's yaw/pitch mean and std (`pose.init_learned`), measured on
    n untruncated w of a private generator (the global RNG is untouched, so runs stay reproducible)."""
    gen = torch.Generator().manual_seed(seed)
    dev = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=gen).to(dev)
    with torch.no_grad():
        w = G.mapping(z, torch.zeros(n, G.c_dim, device=dev))[:, 0]
    h, v = prior.sample_hv(n, gen)
    G.pose_mapping.match_moments(w, h, v)


def learned_pose_generator(ctx: BuildContext) -> TriPlaneGenerator:
    """G with PoF3D's pose mapping (checked), optionally started at the prior (`pose.init_learned`)."""
    check_generator(ctx)
    G = TriPlaneGenerator(ctx.generator).to(ctx.device)
    pose: PoseConfig = ctx.method_cfg.pose
    if pose.init_learned:
        start_at_prior(G, resolve_prior(pose, ctx.dataset_prior))
    return G


def build_pof3d(ctx: BuildContext) -> LearnedPoseRuntime:
    cfg: PoF3DConfig = ctx.method_cfg.pof3d
    G = learned_pose_generator(ctx)
    D = PoseHeadDiscriminator(ctx.discriminator, PoseHeadConfig(out_dim=2, hidden_dim=cfg.head_hidden)).to(ctx.device)
    return LearnedPoseRuntime(G, D, PoF3DLoss(G, D, ctx.loss, ctx.batch, cfg))
