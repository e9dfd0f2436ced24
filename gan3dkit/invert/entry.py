"""`invert` as one call: typed options -> validated config, loaded models, the inversion of every item, the report."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .config import InvertConfig, preset
from .inputs import InputError
from .run import Extras, Stage, invert_source

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

#: Loads a Ko et al. encoder checkpoint for a generator (encoders.ko.load_ko_encoder; passed in: encoders sit above).
EncoderLoader = Callable[[Path, "TriPlaneGenerator"], nn.Module]
ItemCallback = Callable[[int, int, dict], None]
OUTPUT_CHOICES = ("views", "video", "mesh")


@dataclass
class InvertOptions:
    """What `gan3dkit invert` was asked (one field per option; see its --help)."""

    source: Path
    ckpt: Path
    out: Path = Path("inversion")
    method: str | None = None
    algorithm: int = 1
    camera: str | None = None
    pose_opt: bool = False
    align: str = "auto"
    backend: str = "auto"
    steps: int | None = None
    tune_steps: int | None = None
    perceptual: str = "auto"
    vgg_weights: str | None = None
    pose_encoder: Path | None = None
    latent_encoder: Path | None = None
    outputs: tuple[str, ...] = OUTPUT_CHOICES
    mesh_res: int = 64
    frames: int = 24
    overrides: list[str] = field(default_factory=list)
    device: str = "cpu"
    resume: bool = True


def default_method(pose_opt: bool) -> str:
    """The method when none is named: Ko et al. when the pose is to be optimised, else PTI."""
    return "ko" if pose_opt else "pti"


def invert_config(opts: InvertOptions) -> InvertConfig:
    """The validated config of a request: the method's preset, the options, then the --set overrides."""
    from ..utils.config import apply_overrides
    from ..utils.errors import UsageError, check_number

    method = opts.method or default_method(opts.pose_opt)
    check_number("--steps", opts.steps, ge=1, integer=True, allow_none=True)
    check_number("--tune-steps", opts.tune_steps, ge=0, integer=True, allow_none=True)
    cfg = preset(method, opts.algorithm)
    cfg.pose_opt, cfg.perceptual = opts.pose_opt, opts.perceptual
    if opts.steps is not None:
        cfg.projector.steps = opts.steps
        cfg.pose.warmup_steps = min(cfg.pose.warmup_steps, max(0, opts.steps // 8))
    if opts.tune_steps is not None:
        cfg.tune.steps = opts.tune_steps
    cfg = apply_overrides(cfg, opts.overrides)
    cfg.validate()
    if (opts.pose_encoder or opts.latent_encoder) and method != "ko":
        raise UsageError(f"--pose-encoder / --latent-encoder are Ko et al.'s initialisers: use them with "
                         f"--method ko, not {method}")
    if opts.pose_encoder and cfg.pose_mode == "fixed":
        raise UsageError("--pose-encoder contradicts --algorithm 2 (the given camera stays fixed)")
    return cfg


def run_invert(opts: InvertOptions, *, load_encoder: EncoderLoader | None = None,
               on_ready: Callable[[InvertConfig], None] | None = None,
               progress: Callable[[], AbstractContextManager[tuple[ItemCallback, Stage]]] | None = None,
               ) -> dict[str, Any]:
    """Validate, load the generator (and Ko et al.'s encoders with `load_encoder`), invert every item of
    `opts.source` into `opts.out`. Once everything is loaded `on_ready(cfg)` runs and `progress()` is entered: it
    yields `(on_item, on_stage)`. An input that cannot be inverted is a DataError (exit 1)."""
    from ..generate.loading import load_generator
    from ..train.checkpoint import expect_kind
    from ..utils.device import resolve_device
    from ..utils.errors import DataError
    from ..utils.items import check_out_folder

    cfg = invert_config(opts)
    if not opts.source.exists():
        raise FileNotFoundError(f"input {opts.source} not found")
    check_out_folder(opts.out, opts.source)
    device = resolve_device(opts.device)
    for path, want, option in ((opts.pose_encoder, "ko-pose", "--pose-encoder"),
                               (opts.latent_encoder, "ko-latent", "--latent-encoder")):  # fmt: skip
        if path is not None:
            expect_kind(path, want, option)
    G, _ = load_generator(opts.ckpt, device=device)
    extras = Extras(vgg_weights=opts.vgg_weights, outputs=opts.outputs, mesh_resolution=opts.mesh_res,
                    video_frames=opts.frames)
    if opts.pose_encoder is not None or opts.latent_encoder is not None:
        if load_encoder is None:
            raise ValueError("run_invert: --pose-encoder / --latent-encoder need load_encoder")
        extras.pose_encoder = load_encoder(opts.pose_encoder, G).to(device) if opts.pose_encoder else None
        extras.latent_encoder = load_encoder(opts.latent_encoder, G).to(device) if opts.latent_encoder else None
    if on_ready is not None:
        on_ready(cfg)
    try:
        with progress() if progress is not None else nullcontext((None, None)) as (on_item, on_stage):
            return invert_source(G, opts.ckpt, opts.source, opts.out, cfg, camera=opts.camera, align=opts.align,
                                 backend=opts.backend, resume=opts.resume, extras=extras, on_item=on_item,
                                 on_stage=on_stage)
    except InputError as exc:
        raise DataError(str(exc)) from None
