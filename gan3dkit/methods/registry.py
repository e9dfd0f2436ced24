"""Method registry: name -> MethodSpec (what it needs from the data, its config section, a runtime builder)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..cameras import LABEL_DIM

if TYPE_CHECKING:  # the table below is read by `gan3dkit --help`, which must not import torch
    import torch

    from ..cameras.priors import PosePrior
    from ..networks.config import DiscriminatorConfig, GeneratorConfig
    from .eg3d import LossConfig


class MethodRuntime(Protocol):
    """What the generic trainer needs from a method."""

    G: torch.nn.Module
    D: torch.nn.Module
    loss: Any  # has step_state(nimg), real_images(u8, st) and accumulate_gradients(phase, real, real_c, z, c, gain, st)
    pose_prior: PosePrior | None
    """The prior fake poses are drawn from (pose-free methods); None when they come from the dataset labels."""

    def fake_cameras(self, n: int) -> torch.Tensor:
        """[n, 25] rendering cameras for fake images, drawn from the global torch RNG (so resume is exact)."""
        ...

    def grid_cameras(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """[n, 25] fixed cameras for the tick grids."""
        ...


@dataclass
class BuildContext:
    """Everything a method's builder may read: the network and loss configs, its own section, data and device."""

    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    loss: LossConfig
    method_cfg: Any
    """The method's own config section (None for methods without one)."""
    batch: int
    cameras: torch.Tensor | None
    """[N, 25] dataset labels (mirrored copies included with xflip); None for pose-free methods (never read)."""
    prior: PosePrior | None
    """The resolved pose prior for pose-free methods; None for methods that read the labels."""
    device: torch.device
    more: dict[str, Any] = field(default_factory=dict)
    """Further config sections the method reads, by name (`MethodSpec.also`; e.g. 'pof3d' for the combinations)."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    build: Callable[[BuildContext], MethodRuntime]
    needs_labels: bool = True
    """True: fake poses are drawn from the dataset's camera labels and D is pose-conditioned (EG3D). False: the
    labels are never read in training (the trainer does not load them)."""
    pose_source: str = "labels"
    """Where fake poses come from: 'labels' (the dataset), 'prior' (a pose prior) or 'learned' (G's own pose
    mapping, PoF3D)."""
    d_c_dim: int = LABEL_DIM
    """D's conditioning width: 25 (EG3D camera label), 0 (no camera input) or 2 (PoF3D: its own predicted pose)."""
    section: str | None = None
    """Name of the method's own TrainConfig section (e.g. 'hyperpose'), or None."""
    also: tuple[str, ...] = ()
    """Further TrainConfig sections the builder reads (`BuildContext.more`): 'pof3d' for the combinations."""
    source: str = ""
    """Paper section the method follows."""


def _lazy(module: str, fn: str) -> Callable[[BuildContext], MethodRuntime]:
    def build(ctx: BuildContext) -> MethodRuntime:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), fn)(ctx)

    return build


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "eg3d",
            "EG3D with known camera poses: fakes rendered at dataset poses, pose-conditioned D",
            _lazy("eg3d_method", "build_eg3d"),
            source="Chan et al. 2022 (EG3D)",
        ),
        MethodSpec(
            "eg3d-posereg",
            "EG3D† without poses: prior poses, unconditional D + a (pitch, yaw) regression branch on fakes",
            _lazy("posereg", "build_posereg"),
            needs_labels=False,
            pose_source="prior",
            d_c_dim=0,
            section="posereg",
            source="seed 000 (HyperPose supplement) §A",
        ),
        MethodSpec(
            "hyperpose",
            "HyperPose without poses: prior poses, D pose embedding trained by soft contrastive + non-match losses",
            _lazy("hyperpose", "build_hyperpose"),
            needs_labels=False,
            pose_source="prior",
            d_c_dim=0,
            section="hyperpose",
            source="seed 000 (HyperPose) §D, Table C",
        ),
        MethodSpec(
            "pof3d",
            "PoF3D without poses: G learns its camera from w, D conditioned on its own pose prediction",
            _lazy("pof3d", "build_pof3d"),
            needs_labels=False,
            pose_source="learned",
            d_c_dim=2,
            section="pof3d",
            source="seed 001 (PoF3D); VivianSZF/pof3d training/loss_pose.py, ffhq.sh",
        ),
        MethodSpec(
            "hyperpose+pof3d",
            "HyperPose's contrastive D with PoF3D's learned camera distribution (pose-aware D + G-D pose "
            "consistency; pof3d.mechanism=learned_only: the pose mapping learns through the render only)",
            _lazy("hyperpose_pof3d", "build_hyperpose_pof3d"),
            needs_labels=False,
            pose_source="learned",
            d_c_dim=2,
            section="hyperpose",
            also=("pof3d",),
            source="seed 000 §B.2, Table B (HyperPose + PoF3D)",
        ),
        MethodSpec(
            "eg3d-posereg+pof3d",
            "EG3D† with PoF3D's learned camera distribution: D regresses the learned pose of fakes (pose-aware D + "
            "G-D pose consistency; pof3d.mechanism=learned_only: the pose mapping learns through the render only)",
            _lazy("posereg_pof3d", "build_posereg_pof3d"),
            needs_labels=False,
            pose_source="learned",
            d_c_dim=2,
            section="posereg",
            also=("pof3d",),
            source="seed 000 §B.2, Table B (EG3D† + PoF3D)",
        ),
    )
}


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]


def learned_pose_methods() -> list[str]:
    return [name for name, spec in METHODS.items() if spec.pose_source == "learned"]


def pose_free_methods() -> list[str]:
    return [name for name, spec in METHODS.items() if not spec.needs_labels]


def methods_help() -> str:
    """One line per method, for `gan3dkit train --help`."""
    return "; ".join(f"{n}: {s.description}" for n, s in METHODS.items())
