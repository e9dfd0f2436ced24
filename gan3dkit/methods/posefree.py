"""What the pose-free methods share: the pose prior they render at, pose angles of a camera, a D with a pose head.

A pose-free method never reads the dataset's camera labels in training: fakes are rendered at cameras sampled
from a prior (the dataset's recorded prior by default, any named preset, or field overrides), D takes no camera
input (``discriminator.c_dim = 0``) and has a pose head whose loss is computed on fakes only, whose poses are
known. Subclasses of `PoseFreeLoss` define that loss (`aux_loss`); everything else is EG3D's objective.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..cameras.camera import Cameras, as_cameras
from ..cameras.priors import AngleDist, PosePrior, get_prior
from ..networks import TriPlaneGenerator
from ..networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from .eg3d import EG3DLoss, StepState
from .registry import BuildContext, TrainSettings


@dataclass
class PoseConfig:
    """Where the fake poses of pose-free methods come from (never from the labels).

    `prior = "dataset"` takes the prior recorded in the dataset's meta (what `prepare` sampled its cameras from);
    any other value names a shipped preset (`gan3dkit data info` lists them). The optional fields override single
    parameters of the chosen prior, e.g. ``--set pose.yaw_std=0.15`` for a deliberately wrong spread.
    """

    prior: str = "dataset"
    yaw_kind: Literal["fixed", "gaussian", "uniform"] | None = None
    yaw_mean: float | None = None
    yaw_std: float | None = None
    pitch_kind: Literal["fixed", "gaussian", "uniform"] | None = None
    pitch_mean: float | None = None
    pitch_std: float | None = None
    radius: float | None = None
    focal: float | None = None
    init_learned: bool = False
    """Learned-pose methods (pof3d, hyperpose+pof3d): start G's pose mapping at this prior's yaw/pitch mean and std
    (moment matching of its last layer at build time) instead of PoF3D's random start; training then moves it.
    Unused by the prior methods. Off by default: PoF3D's scripts start from the random init."""


def resolve_prior(cfg: PoseConfig, dataset_prior: dict[str, Any] | None) -> PosePrior:
    """The prior `cfg` names, with its overrides applied; raises ValueError when it cannot be found."""
    if cfg.prior == "dataset":
        if not dataset_prior:
            raise ValueError(
                "the dataset records no pose prior; name one with --set pose.prior=NAME "
                "(e.g. lsun_bedroom, afhq, cub, synthetic_heads)"
            )
        prior = PosePrior.from_dict(dataset_prior)
    else:
        prior = get_prior(cfg.prior)

    def angle(base: AngleDist, kind: str | None, mean: float | None, std: float | None) -> AngleDist:
        return AngleDist(
            kind=kind or base.kind,  # type: ignore[arg-type]
            mean=base.mean if mean is None else mean,
            std=base.std if std is None else std,
            note=base.note if (kind, mean, std) == (None, None, None) else "overridden in the run config",
        )

    return dataclasses.replace(
        prior,
        yaw=angle(prior.yaw, cfg.yaw_kind, cfg.yaw_mean, cfg.yaw_std),
        pitch=angle(prior.pitch, cfg.pitch_kind, cfg.pitch_mean, cfg.pitch_std),
        radius=prior.radius if cfg.radius is None else cfg.radius,
        focal=prior.focal if cfg.focal is None else cfg.focal,
    )


def view_directions(c: Cameras | torch.Tensor) -> torch.Tensor:  # B cameras (or [B, 25] labels) -> [B, 3]
    """Unit vectors from the world origin to each camera: EG3D's samplers place cameras on a sphere about the
    origin whatever their look-at point, so these directions are what a pose similarity should compare."""
    cams = c if isinstance(c, Cameras) else Cameras.from_label(c)  # a label keeps its dtype
    return torch.nn.functional.normalize(cams.origins, dim=1)


def pose_angles(c: Cameras | torch.Tensor) -> torch.Tensor:  # B cameras (or [B, 25] labels) -> [B, 2]
    """(pitch, yaw) offsets from the frontal pose in EG3D's (v, h) angles: (v - pi/2, h - pi/2), radians.

    Inverts EG3D's position formula (`eg3d_positions`, a sphere about the origin): h = pi - atan2(z, x),
    v = pi/2 * (1 - y / r), so a prior N(pi/2, s) in h gives yaw offsets N(0, s) exactly. The yaw offset lies in
    (-pi, pi]: a full-circle prior has a wrap-around there.
    """
    d = view_directions(c)
    h = math.pi - torch.atan2(d[:, 2], d[:, 0])
    v = math.pi / 2 * (1 - d[:, 1])
    yaw = torch.remainder(h - math.pi / 2 + math.pi, 2 * math.pi) - math.pi
    return torch.stack([v - math.pi / 2, yaw], dim=1)


@dataclass
class FakeLayout:
    """How a phase's fakes reached D: a scene id per fake (a mirrored scene counts as another) and which were
    mirrored; passed from `prepare_fakes` to the loss terms."""

    scene: torch.Tensor
    """[B] long."""
    flip: torch.Tensor
    """[B] bool."""

    @staticmethod
    def plain(n: int, device: torch.device) -> FakeLayout:
        """n unrelated, unmirrored fakes."""
        return FakeLayout(torch.arange(n, device=device), torch.zeros(n, dtype=torch.bool, device=device))


class PoseFreeLoss(EG3DLoss):
    """EG3D's objective with an unconditional D whose pose head is trained (and read by G) on fakes only."""

    def __init__(self, G: TriPlaneGenerator, D: torch.nn.Module, cfg: Any, batch: int, method_cfg: Any,
                 prior: PosePrior | None) -> None:
        super().__init__(G, D, cfg, batch)
        self.method_cfg, self.prior = method_cfg, prior

    def prepare_fakes(self, gen: dict[str, torch.Tensor], c: Cameras
                      ) -> tuple[dict[str, torch.Tensor], Cameras, FakeLayout]:
        """Hook: arrange (e.g. mirror) the fakes before D; returns them, their cameras and how they were arranged."""
        return gen, c, FakeLayout.plain(len(c), c.device)

    def fake_terms(
        self, gen: dict[str, torch.Tensor], c: Cameras | torch.Tensor, st: StepState, phase: str,
        update_emas: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, float]]:
        if "camera" in gen:  # a generator that chose its own cameras (G's output keeps them as labels)
            c = gen["camera"].detach()
        gen, c, layout = self.prepare_fakes(gen, as_cameras(c))
        logits, *heads = self.D(self.d_input(gen, st), None, with_head=True)
        aux, stats = self.aux_loss(heads[0], c, phase, layout)
        if "pose" in gen:  # learned poses: the combination's PoF3D terms
            more, more_stats = self.learned_terms(gen, heads, phase, layout)
            aux, stats = aux + more, {**stats, **more_stats}
        return logits, aux, stats

    def learned_terms(self, gen: dict[str, torch.Tensor], heads: list[torch.Tensor], phase: str, layout: FakeLayout
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """Hook for the learned-pose combinations: extra terms on G's poses and D's heads; none here."""
        return heads[0].new_zeros(()), {}

    def aux_loss(self, head: torch.Tensor, c: Cameras, phase: str, layout: FakeLayout
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """The method's weighted pose loss on D's head output for fakes rendered at cameras c."""
        raise NotImplementedError


@dataclass
class PriorRuntime:
    """A pose-free method's runtime: G, a pose-head D, its loss, and fake poses sampled from the prior."""

    G: torch.nn.Module
    D: torch.nn.Module
    loss: PoseFreeLoss
    pose_prior: PosePrior

    def fake_cameras(self, n: int) -> Cameras:
        return self.pose_prior.sample(n).to(torch.float32)

    def grid_cameras(self, n: int, generator: torch.Generator) -> Cameras:
        return self.pose_prior.sample(n, generator).to(torch.float32)


def build_pose_free(ctx: BuildContext, head: PoseHeadConfig, loss_cls: type[PoseFreeLoss], section: Any
                    ) -> PriorRuntime:
    """G, a pose-head D and `loss_cls` with the method's `section`, fake poses from the resolved `pose` prior."""
    prior = resolve_prior(ctx.method_cfg.pose, ctx.dataset_prior)
    G = TriPlaneGenerator(ctx.generator).to(ctx.device)
    D = PoseHeadDiscriminator(ctx.discriminator, head).to(ctx.device)
    return PriorRuntime(G, D, loss_cls(G, D, ctx.loss, ctx.batch, section, prior), prior)


#: The pose prior of each preset's dataset (`pose.prior` of the pose-free methods; others: the dataset's own).
PRESET_PRIORS = {"tiny_objects": "synthetic_objects", "lsun_bedroom256": "lsun_bedroom",
                 "lsun_church256": "lsun_church", "afhq256": "afhq", "cub256": "cub"}


def prior_preset(cfg: TrainSettings, preset: str) -> None:
    """Preset hook of the pose-free methods: the preset's dataset prior in the `pose` section."""
    if preset in PRESET_PRIORS:
        cfg.method.pose = PoseConfig(prior=PRESET_PRIORS[preset])
