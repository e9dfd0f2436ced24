"""Method registry: name -> MethodSpec (its config class, data needs, hooks and runtime builder)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..utils.config import ConfigError

if TYPE_CHECKING:  # the table below is read by `gan3dkit --help`, which must not import torch
    import torch

    from ..cameras.camera import Cameras
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

    def fake_cameras(self, n: int) -> Cameras:
        """n rendering cameras for fake images, drawn from the global torch RNG (so resume is exact)."""
        ...

    def grid_cameras(self, n: int, generator: torch.Generator) -> Cameras:
        """n fixed cameras for the tick grids."""
        ...


class TrainSettings(Protocol):
    """The parts of a TrainConfig a method's hooks read and set (the method's own config is `method`)."""

    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    loss: LossConfig
    method: Any


@dataclass
class BuildContext:
    """Everything a method's builder may read: the network and loss configs, its own config, data and device."""

    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    loss: LossConfig
    method_cfg: Any
    """The method's own config object (an instance of `MethodSpec.config`)."""
    batch: int
    cameras: Cameras | None
    """The dataset's cameras (mirrored copies included with xflip); None for pose-free methods (never read)."""
    dataset_prior: dict[str, Any] | None
    """The pose prior recorded in the dataset's meta (a `PosePrior.to_dict()` record), or None."""
    device: torch.device


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    build: Callable[[BuildContext], MethodRuntime]
    config: Callable[[], type]
    """The method's config dataclass, its own (a config object names its method by its class), returned lazily:
    the built-in ones live in modules that import torch. Its fields are the method's sections (`pose`,
    `hyperpose`, ...; none for EG3D): `TrainConfig.method` holds an instance, and `--set SECTION.KEY=...` reaches
    them."""
    needs_labels: bool = True
    """True: fake poses are drawn from the dataset's camera labels and D is pose-conditioned (EG3D). False: the
    labels are never read in training (the trainer does not load them)."""
    pose_source: str = "labels"
    """Where fake poses come from: 'labels' (the dataset), 'prior' (a pose prior) or 'learned' (G's own pose
    mapping)."""
    d_c_dim: int | Callable[[Any], int] | None = None
    """D's conditioning width: None (the EG3D camera label, `cameras.LABEL_DIM`), 0 (no camera input) or 2 (its
    own predicted pose), or a function of the method's config."""
    preset: Callable[[TrainSettings, str], None] | None = None
    """Hook: adjust a fresh TrainConfig of the named preset for this method (its sections' per-dataset values and
    the network settings it needs)."""
    check: Callable[[TrainSettings], None] | None = None
    """Hook: raise ValueError on settings this method cannot train with (after the generic checks)."""
    source: str = ""
    """Paper section the method follows."""

    def disc_c_dim(self, method_cfg: Any) -> int:
        """D's conditioning width for this method with config `method_cfg`."""
        if self.d_c_dim is None:
            from ..cameras import LABEL_DIM  # here, not at import: `gan3dkit --help` reads this table without torch

            return LABEL_DIM
        return self.d_c_dim if isinstance(self.d_c_dim, int) else self.d_c_dim(method_cfg)

    def default_config(self) -> Any:
        return self.config()()


def lazy(module: str, attr: str) -> Callable[..., Any]:
    """A function that imports `gan3dkit.methods.<module>` on its first call and calls `attr` there."""

    def call(*args: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)(*args)

    return call


def lazy_class(module: str, attr: str) -> Callable[[], type]:
    """A loader of the class `attr` of `gan3dkit.methods.<module>` (imported when first needed)."""

    def load() -> type:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)

    return load


#: The registered methods by name: the built-ins (end of this module) and any `register_method` added.
METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (a name already taken is refused)."""
    if spec.name in METHODS:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    METHODS[spec.name] = spec
    return spec


def unregister_method(name: str) -> None:
    METHODS.pop(name, None)


def get_method(name: str, error: type[Exception] = ValueError) -> MethodSpec:
    """The registered method `name`; raises `error` naming the available ones."""
    if name not in METHODS:
        raise error(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]


def method_of(method_cfg: Any) -> MethodSpec:
    """The registered method whose config class `method_cfg` is an instance of."""
    hits = [spec for spec in METHODS.values() if type(method_cfg) is spec.config()]
    if len(hits) != 1:
        raise ValueError(f"{type(method_cfg).__name__} is the config of {len(hits)} registered methods, need one "
                         f"({', '.join(s.name for s in hits) or 'none'})")
    return hits[0]


def method_sections(method_cfg: Any) -> list[str]:
    """The section names of a method config (its dataclass fields)."""
    return [f.name for f in dataclasses.fields(method_cfg)]


#: Top-level sections of the TrainConfig layout before methods owned their config (`"method": NAME` beside them).
LEGACY_SECTIONS = ("pose", "posereg", "hyperpose", "pof3d")


def migrate_layout(data: dict[str, Any]) -> dict[str, Any]:
    """A TrainConfig dict of the older layout in the current one: the method's own sections move under
    `method` = {"name": NAME, ...}; the other methods' sections (unused by the run) are dropped."""
    if not isinstance(data.get("method", {}), str):
        return data
    data = dict(data)
    name = data.pop("method")
    old = {k: data.pop(k) for k in LEGACY_SECTIONS if k in data}
    sections = method_sections(get_method(name, ConfigError).default_config())
    return {**data, "method": {"name": name, **{k: v for k, v in old.items() if k in sections}}}


def learned_pose_methods() -> list[str]:
    return [name for name, spec in METHODS.items() if spec.pose_source == "learned"]


def pose_free_methods() -> list[str]:
    return [name for name, spec in METHODS.items() if not spec.needs_labels]


def _pose_free(name: str, description: str, module: str, config: str, source: str, pose_source: str = "prior",
               d_c_dim: int | Callable[[Any], int] = 0, check: str | None = None) -> MethodSpec:
    """A built-in pose-free method: `module` defines `build_<module>`, the class `config` and `<module>_preset`."""
    return MethodSpec(name, description, lazy(module, f"build_{module}"), lazy_class(module, config),
                      needs_labels=False, pose_source=pose_source, d_c_dim=d_c_dim,
                      preset=lazy(module, f"{module}_preset"), check=None if check is None else lazy(module, check),
                      source=source)


_COMBINED_C_DIM = lazy("pof3d", "combination_d_c_dim")
_LEARNED_ONLY = ("--set pof3d.mechanism=learned_only --set discriminator.c_dim=0: the pose mapping learns through "
                 "the render only")
for _spec in (
    MethodSpec("eg3d", "EG3D with known camera poses: fakes rendered at dataset poses, pose-conditioned D",
               lazy("eg3d_method", "build_eg3d"), lazy_class("eg3d_method", "EG3DMethodConfig"),
               source="Chan et al. 2022 (EG3D)"),
    _pose_free("eg3d-posereg", "EG3D† without poses: prior poses (section pose: the dataset's recorded prior by "
               "default), unconditional D + a (pitch, yaw) regression branch on fakes (section posereg)",
               "posereg", "PoseRegMethodConfig", "seed 000 (HyperPose supplement) §A"),
    _pose_free("hyperpose", "HyperPose without poses: prior poses (section pose), D pose embedding trained by soft "
               "contrastive + non-match losses (section hyperpose)", "hyperpose", "HyperPoseMethodConfig",
               "seed 000 (HyperPose) §D, Table C"),
    _pose_free("pof3d", "PoF3D without poses: G learns its camera from w, D conditioned on its own pose prediction "
               "(section pof3d; pose.init_learned starts the learned poses at the prior)", "pof3d",
               "PoF3DMethodConfig", "seed 001 (PoF3D); VivianSZF/pof3d training/loss_pose.py, ffhq.sh", "learned", 2,
               "check_full_mechanism"),
    _pose_free("hyperpose+pof3d", "HyperPose's contrastive D with PoF3D's learned camera distribution (pose-aware D + "
               f"G-D pose consistency; {_LEARNED_ONLY})", "hyperpose_pof3d", "HyperPosePoF3DMethodConfig",
               "seed 000 §B.2, Table B (HyperPose + PoF3D)", "learned", _COMBINED_C_DIM),
    _pose_free("eg3d-posereg+pof3d", "EG3D† with PoF3D's learned camera distribution: D regresses the learned pose of "
               f"fakes (pose-aware D + G-D pose consistency; {_LEARNED_ONLY})", "posereg_pof3d",
               "PoseRegPoF3DMethodConfig", "seed 000 §B.2, Table B (EG3D† + PoF3D)", "learned", _COMBINED_C_DIM),
):
    register_method(_spec)

#: The method a config without one trains (`--method`'s default): the first built-in, EG3D with known poses.
DEFAULT_METHOD = next(iter(METHODS))


def default_method_config() -> Any:
    """The config of `DEFAULT_METHOD` (TrainConfig's default)."""
    return get_method(DEFAULT_METHOD).default_config()
