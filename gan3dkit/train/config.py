"""Typed training configuration (model + optimiser + loss + schedules + run control) and its presets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..methods.eg3d import LossConfig
from ..methods.registry import (
    DEFAULT_METHOD,
    MethodSpec,
    default_method_config,
    get_method,
    method_of,
    method_sections,
    migrate_layout,
)
from ..networks.config import DiscriminatorConfig, GeneratorConfig
from ..networks.presets import get_preset as get_model_preset
from ..utils.config import ConfigError, check_ranges, from_dict, to_dict


@dataclass
class OptimConfig:
    batch: int = 32
    """Total batch size over all processes."""
    glr: float = 0.0025
    """Generator Adam learning rate (EG3D --glr)."""
    dlr: float = 0.002
    """Discriminator Adam learning rate (EG3D --dlr)."""
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    g_reg_interval: int = 4
    """Density regularisation every N generator steps (lazy; lr and betas are adjusted as in StyleGAN2)."""
    d_reg_interval: int = 16
    """R1 every N discriminator steps (lazy)."""


@dataclass
class ScheduleConfig:
    ema_kimg: float | None = None
    """G_ema half-life in kimg; None = batch * 10 / 32 (EG3D)."""
    ema_rampup: float | None = 0.05
    """EMA ramp-up (EG3D 0.05; EG3D turns it off on resume, gan3dkit resumes exactly instead)."""


@dataclass
class RunConfig:
    kimg: float = 25000.0
    """Train until this many thousand real images have been shown."""
    max_steps: int | None = None
    """Stop after this many steps (testing/benchmarks); None = run to kimg."""
    max_minutes: float | None = None
    """Stop after this much wall-clock time in this call (a checkpoint is written); resuming continues exactly."""
    tick_kimg: float = 4.0
    snapshot_ticks: int = 50
    """Checkpoint + sample grid every N ticks (and at the end)."""
    seed: int = 0
    workers: int = 2
    cpu_threads: int | None = None
    """Intra-op threads when training on CPU; None = CPU cores minus loader workers (at least 1). On small machines
    a second OpenMP thread that shares a core with a loader worker busy-waits and slows training several-fold."""
    xflip: bool = False
    """Mirror augmentation; the camera is mirrored with the image (unlike EG3D --mirror)."""
    allow_tf32: bool = True
    """EG3D forces TF32 off; gan3dkit allows it by default (faster on Ampere/Hopper)."""
    mixed_precision: bool = True
    """fp16 where EG3D uses it (SR blocks, D top resolutions; CUDA only). False builds those blocks in fp32; the
    checkpoint's weights are the same either way (fp16 is a compute mode, parameters stay fp32)."""
    grid_size: int = 8
    """Samples in the tick grids (rgb, raw, depth)."""
    init: str | None = None
    """Start a new run from this checkpoint's G, D and G_ema weights (a fine-tune: fresh optimisers, kimg from 0,
    as EG3D's --resume into a new run). Ignored when the run resumes its own checkpoint."""


@dataclass
class TrainConfig:
    method: Any = field(default_factory=default_method_config)
    """The training method's own config (its registered config class; `method_name` names it). Its sections read
    as `cfg.method.<section>` and are set with `--set <section>.<key>=...` (or `method.<section>.<key>`)."""
    preset: str = "tiny"
    data: str = ""
    out: str = ""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def spec(self) -> MethodSpec:
        """The registered method whose config `method` holds."""
        return method_of(self.method)

    @property
    def method_name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict:
        """JSON layout: every section, with `method` = {"name": ..., <the method's sections>}."""
        data = to_dict(self)
        data["method"] = {"name": self.method_name, **to_dict(self.method)}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Parse the JSON layout of `to_dict` (and the older one, `migrate_layout`); unknown keys are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"TrainConfig: expected an object, got {type(data).__name__}")
        data = migrate_layout(data)
        method = data.get("method", {"name": DEFAULT_METHOD})
        if not isinstance(method, dict) or not isinstance(method.get("name"), str):
            raise ConfigError(f"method: expected an object with a name, got {method!r}")
        spec = get_method(method["name"], ConfigError)
        cfg = from_dict(cls, {k: v for k, v in data.items() if k != "method"})
        cfg.method = from_dict(spec.config(), {k: v for k, v in method.items() if k != "name"}, "method.")
        return cfg

    def with_method(self, name: str) -> TrainConfig:
        """A copy training method `name` with its default config (the other sections kept)."""
        return TrainConfig.from_dict({**self.to_dict(), "method": {"name": name}})

    def resolve_key(self, key: str) -> str:
        """The full path of a config key: `<section>.<key>` of a method section is `method.<section>.<key>`."""
        head = key.split(".", 1)[0]
        if head not in self.__dataclass_fields__ and head in method_sections(self.method):
            return "method." + key
        return key

    def validate(self) -> None:
        """Raise ``ValueError`` on settings that contradict each other.

        EG3D derives the generator's ``c_gen_conditioning_zero`` from ``--gen_pose_cond``; here they are two fields
        (the generator needs its own at inference), so they must agree: a generator trained on zero conditioning
        but sampled with real cameras (or the reverse) renders off-distribution images.
        """
        spec, name = self.spec, self.method_name
        if self.discriminator.c_dim != self.d_c_dim:
            raise ValueError(
                f"method {name} needs discriminator.c_dim={self.d_c_dim}, got {self.discriminator.c_dim} "
                "(train_preset(name, method) sets it; --set discriminator.c_dim=...)"
            )
        if (spec.pose_source == "learned") != (self.generator.learned_pose is not None):
            raise ValueError(
                f"method {name} {'needs' if spec.pose_source == 'learned' else 'has no use for'} "
                "generator.learned_pose (train_preset(name, method) sets it)"
            )
        if self.generator.c_gen_conditioning_zero == self.loss.gen_pose_cond:
            raise ValueError(
                f"loss.gen_pose_cond={self.loss.gen_pose_cond} needs "
                f"generator.c_gen_conditioning_zero={not self.loss.gen_pose_cond} (EG3D sets it to "
                "not --gen_pose_cond); set both"
            )
        if spec.check is not None:
            spec.check(self)
        check_ranges(self, NUMERIC_RULES)

    @property
    def d_c_dim(self) -> int:
        """D's conditioning width for this method (the registry's, which may depend on the method's config)."""
        return self.spec.disc_c_dim(self.method)

    @property
    def ema_kimg(self) -> float:
        return self.schedule.ema_kimg if self.schedule.ema_kimg is not None else self.optim.batch * 10 / 32


#: Allowed ranges of the numeric settings (checked by TrainConfig.validate; NaN/inf are refused when parsed).
NUMERIC_RULES: dict[str, dict[str, Any]] = {
    "optim.batch": {"ge": 1},
    "optim.glr": {"gt": 0},
    "optim.dlr": {"gt": 0},
    "optim.betas": {"ge": 0, "lt": 1},
    "optim.eps": {"gt": 0},
    "optim.g_reg_interval": {"ge": 1},
    "optim.d_reg_interval": {"ge": 1},
    "schedule.ema_kimg": {"gt": 0, "allow_none": True},
    "schedule.ema_rampup": {"ge": 0, "allow_none": True},
    "run.kimg": {"gt": 0},
    "run.max_steps": {"ge": 1, "allow_none": True},
    "run.max_minutes": {"gt": 0, "allow_none": True},
    "run.tick_kimg": {"gt": 0},
    "run.snapshot_ticks": {"ge": 1},
    "run.workers": {"ge": 0},
    "run.cpu_threads": {"ge": 1, "allow_none": True},
    "run.grid_size": {"ge": 1},
    "loss.r1_gamma": {"ge": 0},
}


def _base(preset: str) -> TrainConfig:
    model = get_model_preset(preset)
    return TrainConfig(preset=preset, generator=model.generator, discriminator=model.discriminator)


def _loss(cfg: TrainConfig, **values: object) -> LossConfig:
    """EG3D loss values for a preset; the NRR starts at the generator's neural_rendering_resolution."""
    return LossConfig(nrr_initial=cfg.generator.neural_rendering_resolution, **values)  # type: ignore[arg-type]


def tiny() -> TrainConfig:
    """CPU preset: tiny networks, batch 4, short fades; a step takes seconds on 2 cores."""
    cfg = _base("tiny")
    cfg.optim = OptimConfig(batch=4, glr=0.0025, dlr=0.002)
    cfg.loss = _loss(cfg, r1_gamma=1.0, blur_init_sigma=2.0, blur_fade_kimg=16.0, gen_pose_cond=False)
    cfg.schedule = ScheduleConfig(ema_kimg=0.5, ema_rampup=0.05)
    cfg.run = RunConfig(kimg=20.0, tick_kimg=0.2, snapshot_ticks=10, workers=1)
    return cfg


def ffhq512() -> TrainConfig:
    """EG3D ffhq512-64 (docs/models.md): --cfg=ffhq --batch=32 --gamma=1 --gen_pose_cond=True; fine-tune with
    loss.nrr_final=128 for the 128 model."""
    cfg = _base("ffhq512")
    cfg.optim = OptimConfig(batch=32)
    cfg.loss = _loss(cfg, r1_gamma=1.0, gen_pose_cond=True, gpc_reg_prob=0.5)
    return cfg


def ffhq256() -> TrainConfig:
    """EG3D FFHQ at 256 (SR 4x): same training values as ffhq512."""
    cfg = ffhq512()
    model = get_model_preset("ffhq256")
    cfg.preset, cfg.generator, cfg.discriminator = "ffhq256", model.generator, model.discriminator
    return cfg


def afhq512() -> TrainConfig:
    """EG3D afhqcats512-128: --gamma=5 --gen_pose_cond=True --gpc_reg_prob=0.8 --nrr_final=128 (ADA not included)."""
    cfg = _base("afhq512")
    cfg.optim = OptimConfig(batch=32)
    cfg.loss = _loss(cfg, r1_gamma=5.0, gen_pose_cond=True, gpc_reg_prob=0.8, nrr_final=128)
    return cfg


def shapenet128() -> TrainConfig:
    """EG3D shapenetcars128-64: --cfg=shapenet --gamma=0.3, no GPC."""
    cfg = _base("shapenet128")
    cfg.optim = OptimConfig(batch=32)
    cfg.loss = _loss(cfg, r1_gamma=0.3, gen_pose_cond=False)
    return cfg


def tiny_objects() -> TrainConfig:
    """CPU preset for the synthetic 360-degree objects: tiny networks with EG3D's ShapeNet rendering constants."""
    cfg = tiny()
    cfg.preset = "tiny_objects"
    r = cfg.generator.rendering
    r.box_warp, r.ray_start, r.ray_end, r.white_back = 1.6, 0.1, 2.6, True
    r.avg_camera_radius, r.focal = 1.7, 1.7074
    return cfg


def _table_c_256(preset: str, **loss: object) -> TrainConfig:
    """Seed 000's Table C datasets at 256² (seed 000; 512² only in its supplement §C): EG3D's 256² networks,
    batch 48 (§D), FFHQ's rendering constants (seed 000 gives none; the Table C priors put the camera at radius 2.7
    with focal 4.2647 like FFHQ). The methods' per-dataset values (prior, m, lambdas) are their preset hooks'."""
    cfg = ffhq256()
    cfg.preset = preset
    cfg.optim = OptimConfig(batch=48)
    cfg.loss = _loss(cfg, r1_gamma=1.0, gen_pose_cond=bool(loss.pop("gen_pose_cond", False)), **loss)
    cfg.generator.c_gen_conditioning_zero = not cfg.loss.gen_pose_cond
    cfg.generator.rendering.avg_camera_pivot = (0.0, 0.0, 0.0)
    cfg.run.xflip = True  # seed 000 §D: horizontal flips as augmentation
    return cfg


def lsun_bedroom256() -> TrainConfig:
    """LSUN Bedroom 256² (seed 000 Table C prior; m = 24, lambda = 0.7)."""
    return _table_c_256("lsun_bedroom256")


def lsun_church256() -> TrainConfig:
    """LSUN Church 256² (seed 000 Table C prior; m = 96, lambda = 0.9)."""
    return _table_c_256("lsun_church256")


def afhq256() -> TrainConfig:
    """AFHQ 256² (seed 000: m = 24, lambda = 0.5; pose-bias handling with p = 0.2 read as EG3D's GPC with the
    true pose 20 % of the time: gpc_reg_prob = 0.8, EG3D's own AFHQ value; R1 gamma 5 as EG3D's AFHQ)."""
    cfg = _table_c_256("afhq256", gen_pose_cond=True, gpc_reg_prob=0.8)
    cfg.loss.r1_gamma = 5.0
    return cfg


def cub256() -> TrainConfig:
    """CUB 256² (seed 000: m = 24, lambda = 0.5; birds on white via `prepare cub`'s masks)."""
    return _table_c_256("cub256")


def lp3d_sr_stage(base: TrainConfig, ckpt: str) -> TrainConfig:
    """LP3D supplement A2: the whole EG3D fine-tuned with the SR latent replaced by a constant 1, for 6.8M images
    (FFHQ FID 4.05), starting from `ckpt` trained with `base` (its own config)."""
    cfg = TrainConfig.from_dict(base.to_dict())
    cfg.generator.superres.latent = "one"
    cfg.run.init = ckpt
    cfg.run.kimg = 6800.0
    return cfg


#: `gan3dkit train --stage NAME --init CKPT`: configs derived from the checkpoint's own.
TRAIN_STAGES: dict[str, Callable[[TrainConfig, str], TrainConfig]] = {"lp3d-sr": lp3d_sr_stage}


TRAIN_PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "tiny": tiny,
    "tiny_objects": tiny_objects,
    "ffhq512": ffhq512,
    "ffhq256": ffhq256,
    "afhq512": afhq512,
    "shapenet128": shapenet128,
    "lsun_bedroom256": lsun_bedroom256,
    "lsun_church256": lsun_church256,
    "afhq256": afhq256,
    "cub256": cub256,
}


def train_preset(name: str, method: str = DEFAULT_METHOD) -> TrainConfig:
    """A fresh TrainConfig for a named preset and method: the method's config with its preset hook's values, and
    D's conditioning width (pose-free methods: an unconditional D, c_dim 0)."""
    if name not in TRAIN_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(TRAIN_PRESETS)}")
    cfg = TRAIN_PRESETS[name]()
    spec = get_method(method)
    cfg.method = spec.default_config()
    if spec.preset is not None:
        spec.preset(cfg, name)
    cfg.discriminator.c_dim = cfg.d_c_dim
    return cfg
