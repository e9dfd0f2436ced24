"""Map NVIDIA EG3D snapshots (G, G_ema, D records) and EG3D-fork state dicts onto gan3dkit configs and weights."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from ..networks import (
    DiscriminatorConfig,
    DualDiscriminator,
    GeneratorConfig,
    MappingConfig,
    RenderingConfig,
    SuperResConfig,
    SynthesisConfig,
    TriPlaneGenerator,
)
from ..networks.presets import FFHQ_FOCAL, SHAPENET_FOCAL
from ..train.config import TRAIN_PRESETS, TrainConfig, train_preset
from ..utils.errors import DataError
from .source_audit import audit_module_source
from .torchfile import ModuleTree, module_state, read_torch_file
from .unpickler import PersistentRecord, RefusedPickle, read_pickle

#: Persistent classes of EG3D's network modules that the converter knows (all others are refused by name).
EG3D_RECORD_CLASSES = frozenset(
    {
        "TriPlaneGenerator", "Generator", "MappingNetwork", "FullyConnectedLayer", "SynthesisNetwork",
        "SynthesisBlock", "SynthesisLayer", "ToRGBLayer", "SynthesisBlockNoUp", "SuperresolutionHybrid8XDC",
        "SuperresolutionHybrid4X", "SuperresolutionHybrid2X", "DualDiscriminator", "DiscriminatorBlock",
        "DiscriminatorEpilogue", "Conv2dLayer", "MinibatchStdLayer",
    }  # fmt: skip
)
#: EG3D's superresolution_module class names -> gan3dkit SuperResConfig.kind.
SR_MODULES = {
    "training.superresolution.SuperresolutionHybrid8XDC": "8xdc",
    "training.superresolution.SuperresolutionHybrid4X": "4x",
    "training.superresolution.SuperresolutionHybrid2X": "2x",
}
NETWORKS = ("G", "G_ema", "D")


class ArchitectureMismatch(DataError):
    """The file's networks do not fit gan3dkit's EG3D networks (the message names the keys)."""


@dataclass
class Converted:
    """A converted model: its TrainConfig, state dicts by network name, the rendering resolution and notes."""

    config: TrainConfig
    tensors: dict[str, dict[str, torch.Tensor]]
    nrr: int
    source: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    make_d: Callable[[TrainConfig], torch.nn.Module] | None = None
    """Builds D from the config (None: EG3D's DualDiscriminator)."""


def check_tree(name: str, rec: PersistentRecord, tree: ModuleTree, audit_source: bool,
               known: frozenset[str] = EG3D_RECORD_CLASSES) -> None:
    """Every record class in the tree is one of ``known``; the record's (never run) source defines names only."""
    for path, cls in tree.classes.items():
        where = f"{name}.{path}".rstrip(".")
        if "." in cls:  # ObjectStub: allow-listed by the unpickler already
            continue
        if cls not in known:
            raise ArchitectureMismatch(f"{where} is a {cls!r} record; gan3dkit maps only EG3D's networks")
    if audit_source:
        problems = audit_module_source(rec.module_src, rec.class_name)
        if problems:
            raise RefusedPickle(
                f"refused: the source text in the {name} record ({rec.class_name}) would run code at import: "
                + "; ".join(problems[:3])
                + " (gan3dkit never runs it, but the file has been tampered with; --no-audit-source skips this)"
            )


def _mapping(kw: dict[str, Any], z_dim: int, c_dim: int, w_dim: int) -> MappingConfig:
    mk = dict(kw.get("mapping_kwargs") or {})
    return MappingConfig(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        num_layers=int(mk.get("num_layers", 8)),  # StyleGAN2 MappingNetwork default; EG3D train.py passes 2
        embed_features=mk.get("embed_features"),
        layer_features=mk.get("layer_features"),
        lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mk.get("w_avg_beta", 0.998)),
        activation=str(mk.get("activation", "lrelu")),
    )


def _need(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ArchitectureMismatch(f"{where} has no {key!r}; is this an EG3D TriPlaneGenerator?")
    return d[key]


def generator_config(rec: PersistentRecord, tensors: dict[str, torch.Tensor], focal: float | None) -> GeneratorConfig:
    """GeneratorConfig from EG3D's constructor kwargs + rendering_kwargs; sizes EG3D hard-codes read from the weights.

    EG3D fixes the plane size (256), plane channels (32), decoder widths (64, 32) and SR block widths in code; here
    they are read from the tensor shapes so forks with other sizes convert too. ``plane_axes`` is ``"eg3d"``
    (every NVIDIA checkpoint was trained with the XY, XZ, ZX quirk). The focal length is not in the pickle:
    ShapeNet-like renderers (white_back) get 1.7074, others FFHQ's 4.2647, unless given.
    """
    kw = rec.init_kwargs
    rk = dict(_need(kw, "rendering_kwargs", "G"))
    if rk.get("ray_start") == "auto" or rk.get("ray_end") == "auto":
        raise ArchitectureMismatch("rendering_kwargs ray_start/ray_end 'auto' (ray-box bounds) is not supported")
    sr_name = str(_need(rk, "superresolution_module", "rendering_kwargs"))
    if sr_name not in SR_MODULES:
        raise ArchitectureMismatch(
            f"superresolution_module {sr_name!r} has no gan3dkit counterpart ({list(SR_MODULES)})"
        )
    blocks = sorted(int(k.split(".")[2][1:]) for k in tensors if k.startswith("backbone.synthesis.b"))
    if not blocks or "decoder.net.0.weight" not in tensors or "decoder.net.2.weight" not in tensors:
        raise ArchitectureMismatch("G has no backbone.synthesis.b*/decoder.net.{0,2} weights")
    plane_res = blocks[-1]
    plane_ch = tensors[f"backbone.synthesis.b{plane_res}.torgb.weight"].shape[0] // 3
    hidden, out1 = tensors["decoder.net.0.weight"].shape[0], tensors["decoder.net.2.weight"].shape[0]
    sr_fp16 = int(kw.get("sr_num_fp16_res", 0))
    white_back = bool(rk.get("white_back", False))
    sr_ch = tuple(int(tensors[f"superresolution.block{i}.torgb.weight"].shape[1]) for i in (0, 1))
    rendering = RenderingConfig(
        plane_axes="eg3d",
        box_warp=float(rk.get("box_warp", 1.0)),
        ray_start=float(_need(rk, "ray_start", "rendering_kwargs")),
        ray_end=float(_need(rk, "ray_end", "rendering_kwargs")),
        depth_resolution=int(_need(rk, "depth_resolution", "rendering_kwargs")),
        depth_resolution_importance=int(rk.get("depth_resolution_importance", 0)),
        white_back=white_back,
        density_noise=float(rk.get("density_noise", 0.0)),
        clamp_mode=str(rk.get("clamp_mode", "softplus")),
        disparity_space_sampling=bool(rk.get("disparity_space_sampling", False)),
        decoder_hidden_dim=int(hidden),
        decoder_output_dim=int(out1) - 1,
        decoder_lr_mul=float(rk.get("decoder_lr_mul", 1.0)),
        avg_camera_radius=float(rk.get("avg_camera_radius", 2.7)),
        avg_camera_pivot=cast(
            "tuple[float, float, float]", tuple(float(v) for v in rk.get("avg_camera_pivot", (0.0, 0.0, 0.2)))
        ),
        focal=float(focal if focal is not None else (SHAPENET_FOCAL if white_back else FFHQ_FOCAL)),
    )
    g_fp16 = int(kw.get("num_fp16_res", 0))
    return GeneratorConfig(
        mapping=_mapping(kw, int(_need(kw, "z_dim", "G")), int(_need(kw, "c_dim", "G")), int(_need(kw, "w_dim", "G"))),
        synthesis=SynthesisConfig(
            channel_base=int(kw.get("channel_base", 32768)),
            channel_max=int(kw.get("channel_max", 512)),
            conv_clamp=kw.get("conv_clamp"),
            fused_modconv=str(kw.get("fused_modconv_default", "inference_only")),
        ),
        rendering=rendering,
        superres=SuperResConfig(
            kind=SR_MODULES[sr_name],
            channels=sr_ch,  # type: ignore[arg-type]
            num_fp16_res=sr_fp16,
            conv_clamp=256.0 if sr_fp16 > 0 else None,  # EG3D SR: conv_clamp = 256 if use_fp16 else None
            noise_mode=str(rk.get("superresolution_noise_mode", "none")),
            antialias=bool(rk.get("sr_antialias", True)),
        ),
        img_resolution=int(_need(kw, "img_resolution", "G")),
        neural_rendering_resolution=int(rec.state.get("neural_rendering_resolution", 64)),
        triplane_resolution=plane_res,
        triplane_channels=int(plane_ch),
        num_fp16_res=g_fp16,
        c_scale=float(rk.get("c_scale", 0.0)),  # EG3D's mapping uses rendering_kwargs.get('c_scale', 0)
        c_gen_conditioning_zero=bool(rk.get("c_gen_conditioning_zero", False)),
    )


def discriminator_config(rec: PersistentRecord) -> DiscriminatorConfig:
    """DiscriminatorConfig from EG3D's DualDiscriminator kwargs (StyleGAN2 defaults where a key is absent)."""
    kw = rec.init_kwargs
    mk, ek = dict(kw.get("mapping_kwargs") or {}), dict(kw.get("epilogue_kwargs") or {})
    if kw.get("architecture", "resnet") != "resnet":
        raise ArchitectureMismatch(f"D architecture {kw['architecture']!r}: only 'resnet' (EG3D's) is supported")
    return DiscriminatorConfig(
        img_resolution=int(_need(kw, "img_resolution", "D")),
        img_channels=int(kw.get("img_channels", 3)),
        channel_base=int(kw.get("channel_base", 32768)),
        channel_max=int(kw.get("channel_max", 512)),
        num_fp16_res=int(kw.get("num_fp16_res", 4)),
        conv_clamp=kw.get("conv_clamp"),
        mbstd_group_size=int(ek.get("mbstd_group_size", 4)),
        mbstd_num_channels=int(ek.get("mbstd_num_channels", 1)),
        c_dim=int(_need(kw, "c_dim", "D")),
        cmap_dim=kw.get("cmap_dim"),
        mapping_layers=int(mk.get("num_layers", 8)),
        mapping_lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
        disc_c_noise=float(kw.get("disc_c_noise", 0.0)),
        dual=True,
    )


def match_state(name: str, src: dict[str, torch.Tensor], module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``src`` checked against ``module.state_dict()`` key by key and shape by shape (else ArchitectureMismatch)."""
    want = module.state_dict()
    missing = sorted(set(want) - set(src))
    extra = sorted(set(src) - set(want))
    shapes = [
        f"{k} {tuple(src[k].shape)} vs {tuple(want[k].shape)}"
        for k in want
        if k in src and src[k].shape != want[k].shape
    ]
    if missing or extra or shapes:
        parts = []
        for label, items in (("missing from the file", missing), ("not in gan3dkit's network", extra),
                             ("shape differs (file vs gan3dkit)", shapes)):  # fmt: skip
            if items:
                more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
                parts.append(f"{label}: {', '.join(items[:6])}{more}")
        raise ArchitectureMismatch(f"{name} does not match gan3dkit's EG3D network: " + "; ".join(parts))
    return {k: src[k].to(want[k].dtype) for k in want}


def train_config(gen: GeneratorConfig, disc: DiscriminatorConfig | None, method: str = "eg3d") -> TrainConfig:
    """A TrainConfig for fine-tuning: the closest preset's training values, EG3D's resume behaviour (no blur,
    no GPC fade, no EMA ramp-up), the NRR fixed at the converted one."""
    same = [n for n, f in TRAIN_PRESETS.items() if f().generator.img_resolution == gen.img_resolution]
    pivot = gen.rendering.avg_camera_pivot
    pick = next((n for n in same if train_preset(n).generator.rendering.avg_camera_pivot == pivot), None)
    cfg = train_preset(pick or (same[0] if same else "tiny"), method)
    cfg.generator = gen
    cfg.discriminator = disc if disc is not None else cfg.discriminator
    cfg.loss.gen_pose_cond = not gen.c_gen_conditioning_zero
    cfg.loss.nrr_initial, cfg.loss.nrr_final = gen.neural_rendering_resolution, None
    cfg.loss.blur_init_sigma, cfg.loss.gpc_reg_fade_kimg = 0.0, 0.0  # EG3D --resume without --resume_blur
    cfg.schedule.ema_rampup = None  # EG3D: ema_rampup = None on resume
    return cfg


def convert_eg3d_pickle(path: str | Path, focal: float | None = None, audit_source: bool = True) -> Converted:
    """Read an NVIDIA EG3D snapshot (``network-snapshot-*.pkl``, ``ffhq512-128.pkl`` ...) without running it."""
    data = read_pickle(path)
    if not isinstance(data, dict) or not all(k in data for k in ("G", "G_ema")):
        got = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ArchitectureMismatch(f"{path}: not an EG3D snapshot (expected a dict with G, G_ema[, D]; got {got})")
    notes, trees = [], {}
    for name in NETWORKS:
        rec = data.get(name)
        if rec is None:
            continue
        if not isinstance(rec, PersistentRecord):
            raise ArchitectureMismatch(f"{path}: {name} is {type(rec).__name__}, not a persistence record")
        want = "DualDiscriminator" if name == "D" else "TriPlaneGenerator"
        if rec.class_name != want:
            raise ArchitectureMismatch(f"{path}: {name} is a {rec.class_name!r}; gan3dkit converts EG3D's {want}")
        trees[name] = module_state(rec)
        check_tree(name, rec, trees[name], audit_source)
    for key in sorted(set(map(str, data)) - set(NETWORKS)):
        if data[key] is None:
            continue
        what = data[key].class_name if isinstance(data[key], PersistentRecord) else type(data[key]).__name__
        notes.append(f"not converted: {key} ({what})")
    gen = generator_config(data["G_ema"], trees["G_ema"].tensors, focal)
    disc = discriminator_config(data["D"]) if "D" in trees else None
    if disc is None:
        notes.append("the file has no D: train --resume is not possible")
    cfg = train_config(gen, disc)
    tensors = {n: t.tensors for n, t in trees.items()}
    return Converted(cfg, tensors, gen.neural_rendering_resolution, {"kind": "eg3d-pkl"}, notes)


def convert_state_dict(path: str | Path, config: TrainConfig, nrr: int | None = None) -> Converted:
    """A ``torch.save``'d state dict of an EG3D fork: flat (one G) or ``{G|G_ema|D: state_dict}``; the architecture
    comes from ``config`` (a preset or a config.json), since a state dict carries no constructor arguments."""
    data = read_torch_file(path)
    if (
        isinstance(data, dict)
        and any(k in data for k in NETWORKS)
        and all(isinstance(v, dict) for k, v in data.items() if k in NETWORKS)
    ):
        nets = {k: dict(data[k]) for k in NETWORKS if k in data}
        notes = [f"not converted: {k}" for k in sorted(map(str, data)) if k not in NETWORKS]
    elif isinstance(data, dict) and data and all(torch.is_tensor(v) for v in data.values()):
        nets, notes = {"G_ema": dict(data)}, ["a single state dict: used as G_ema (and G)"]
    else:
        raise ArchitectureMismatch(f"{path}: expected a state dict of tensors or {{G, G_ema, D: state dicts}}")
    if "G_ema" not in nets:
        nets["G_ema"] = nets["G"]
    for n, sd in nets.items():
        bad = [k for k, v in sd.items() if not torch.is_tensor(v)]
        if bad:
            raise ArchitectureMismatch(f"{path}: {n} holds non-tensors under {bad[:5]}")
    cfg = copy.deepcopy(config)
    if nrr is not None:
        cfg.generator.neural_rendering_resolution = nrr
    if "D" not in nets:
        notes.append("the file has no D: train --resume is not possible")
    cfg = train_config(cfg.generator, cfg.discriminator)
    return Converted(cfg, nets, cfg.generator.neural_rendering_resolution, {"kind": "state-dict"}, notes)


def build_modules(conv: Converted) -> dict[str, torch.nn.Module]:
    """gan3dkit modules holding the converted weights (strict key and shape check first)."""
    modules: dict[str, torch.nn.Module] = {}
    for name in NETWORKS:
        if name == "G" and "G" not in conv.tensors:
            continue
        if name not in conv.tensors:
            continue
        if name == "D":
            module = conv.make_d(conv.config) if conv.make_d else DualDiscriminator(conv.config.discriminator)
        else:
            module = TriPlaneGenerator(conv.config.generator)
        module.load_state_dict(match_state(name, conv.tensors[name], module))
        modules[name] = module.eval().requires_grad_(False)
    if "G" not in modules:
        modules["G"] = copy.deepcopy(modules["G_ema"])
    return modules
