"""Encoder architectures by name: typed config, size presets matched to a generator, a builder; `register_arch`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..utils.config import from_dict, to_dict
from .lp3d import LP3DConfig, LP3DEncoder
from .lp3d_release import LP3DReleaseConfig, LP3DReleaseEncoder, lt_defaults
from .triplanenet import TriPlaneNetConfig, TriPlaneNetEncoder

#: Size presets: "paper" = the published sizes; "small" = a GPU-friendly fraction; "tiny" = seconds on a CPU.
SIZES = ("paper", "small", "tiny")
#: The training families distillation knows (`models.build_student`, `steps`, `pretrained.load_backbone_weights`
#: dispatch on them): a new arch of one of these is one module; a new family needs those edits (docs/encoders.md).
FAMILIES = ("lp3d", "triplanenet")


@dataclass(frozen=True)
class ArchSpec:
    name: str
    family: str
    """One of FAMILIES: which distillation objective, schedule and pretrained backbone the arch trains with."""
    config_cls: type
    description: str
    make_config: Callable[[Any, str], Any]  # (generator, size) -> config
    build: Callable[[Any, Any], nn.Module]  # (config, generator) -> encoder
    load_backbone: Callable[[nn.Module, str | None], str] | None = None
    """(encoder, --backbone-weights or None) -> a one-line description, for runs without --random-init; None: the
    family's (lp3d: ResNet34 into `encoder.backbone`; triplanenet: IR-SE-50 into `psp` and `offsets`)."""


def _lp3d_config(G: Any, size: str, lt: bool) -> LP3DConfig:
    gc = G.config
    base = dict(input_resolution=max(64, gc.img_resolution), triplane_resolution=gc.triplane_resolution,
                triplane_channels=gc.triplane_channels, lt=lt)  # fmt: skip
    if lt:
        base["low_vit_blocks"] = 2
    if size == "small":
        base.update(resnet_widths=(32, 64, 128, 256), resnet_blocks=(2, 2, 2, 2), deeplab_channels=128,
                    low_vit_dim=256, fuse_vit_dim=256, high_channels=64)  # fmt: skip
    elif size == "tiny":
        base.update(resnet_widths=(16, 32, 64, 128), resnet_blocks=(1, 1, 1, 1), deeplab_channels=32,
                    aspp_rates=(2, 4, 6), low_vit_dim=64, low_vit_heads=2, fuse_vit_dim=64, high_channels=32,
                    low_vit_blocks=1 if lt else 2)  # fmt: skip
    elif size != "paper":
        raise ValueError(f"unknown encoder size {size!r}; choose one of {SIZES}")
    return LP3DConfig(**base)


def _lp3d_release_config(G: Any, size: str, lt: bool) -> LP3DReleaseConfig:
    """The public code's layout (`lp3d_release`); its sizes are fixed by the release ("paper") or tiny for tests."""
    cfg = lt_defaults() if lt else LP3DReleaseConfig()
    if size == "tiny":
        cfg = dataclasses.replace(cfg, resnet_widths=(16, 32),
                                  resnet_blocks=(1, 1), deeplab_channels=32, aspp_rates=(2, 4, 6), vit_dim=64,
                                  f_blocks=1, f_heads=2, f_channels=32, high_channels=32, fuse_channels=(64, 32))
    elif size != "paper":
        raise ValueError(f"the released LP3D layout has sizes paper or tiny, got {size!r}")
    r = G.config.triplane_resolution  # the release's output is half its input size (512 -> 256)
    return dataclasses.replace(cfg, input_resolution=2 * r, triplane_resolution=r,
                               triplane_channels=G.config.triplane_channels)


def _tpn_config(G: Any, size: str, version: int) -> TriPlaneNetConfig:
    gc = G.config
    base = dict(version=version, input_resolution=max(64, min(256, gc.img_resolution)),
                triplane_resolution=gc.triplane_resolution, triplane_channels=gc.triplane_channels,
                num_ws=int(G.num_ws), w_dim=int(G.w_dim))  # fmt: skip
    if size == "small":
        base.update(widths=(32, 64, 128, 256), units=(2, 2, 4, 2), offset_widths=(32, 64, 128, 256),
                    offset_units=(2, 2, 4, 2), decoder_widths=(256, 192, 128, 48),
                    head_channels=48)  # fmt: skip
    elif size == "tiny":
        base.update(widths=(16, 32, 64, 64), units=(1, 1, 1, 1), offset_widths=(16, 16, 32, 32),
                    offset_units=(1, 1, 1, 1), decoder_widths=(32, 32, 32, 16),
                    head_channels=16)  # fmt: skip
    elif size != "paper":
        raise ValueError(f"unknown encoder size {size!r}; choose one of {SIZES}")
    return TriPlaneNetConfig(**base)


#: The registered archs by name: the built-ins below and any `register_arch` added (the registry every lookup reads).
ARCHS: dict[str, ArchSpec] = {
    "lp3d": ArchSpec("lp3d", "lp3d", LP3DConfig, "LP3D: DeepLabV3 (no BN) + Segformer + high-res branch",
                     lambda G, s: _lp3d_config(G, s, False), lambda c, G: LP3DEncoder(c)),
    "lp3d-lt": ArchSpec("lp3d-lt", "lp3d", LP3DConfig, "LP3D-LT: 2 low ViT blocks, E_high on backbone features",
                        lambda G, s: _lp3d_config(G, s, True), lambda c, G: LP3DEncoder(c)),
    "lp3d-release": ArchSpec("lp3d-release", "lp3d", LP3DReleaseConfig,
                             "LP3D as Live3DPortrait builds it (loads its released files; convert lp3d)",
                             lambda G, s: _lp3d_release_config(G, s, False), lambda c, G: LP3DReleaseEncoder(c)),
    "lp3d-lt-release": ArchSpec("lp3d-lt-release", "lp3d", LP3DReleaseConfig,
                                "LP3D-LT as Live3DPortrait builds it (loads its released LT file)",
                                lambda G, s: _lp3d_release_config(G, s, True), lambda c, G: LP3DReleaseEncoder(c)),
    "triplanenet-v1": ArchSpec("triplanenet-v1", "triplanenet", TriPlaneNetConfig,
                               "TriPlaneNet v1: pSp W+ + offset U-Net on [y, x - y]",
                               lambda G, s: _tpn_config(G, s, 1), lambda c, G: TriPlaneNetEncoder(c, G)),
    "triplanenet-v2": ArchSpec("triplanenet-v2", "triplanenet", TriPlaneNetConfig,
                               "TriPlaneNet v2: 9-channel offset input, mirror loss, adversarial stage",
                               lambda G, s: _tpn_config(G, s, 2), lambda c, G: TriPlaneNetEncoder(c, G)),
}  # fmt: skip
#: Archs built by other modules (dispatched by the CLI): Ko et al.'s pose / latent encoders (gan3dkit.encoders.ko_task).
EXTERNAL_ARCHS = ("ko-pose", "ko-latent")


def register_arch(spec: ArchSpec) -> ArchSpec:
    """Add an encoder arch to the registry (a name already taken, or a family distillation does not know, is
    refused); `distill-encoder --arch`, `encode` and `load_encoder` then find it."""
    if spec.name in ARCHS or spec.name in EXTERNAL_ARCHS:
        raise ValueError(f"an encoder arch named {spec.name!r} is already registered")
    if spec.family not in FAMILIES:
        raise ValueError(f"encoder arch {spec.name!r}: unknown family {spec.family!r}; choose one of "
                         f"{', '.join(FAMILIES)} (a new family needs its distillation step: docs/encoders.md)")
    ARCHS[spec.name] = spec
    return spec


def unregister_arch(name: str) -> None:
    ARCHS.pop(name, None)


def arch_names() -> list[str]:
    """Every arch `distill-encoder --arch` takes: the registered ones, then Ko et al.'s."""
    return [*ARCHS, *EXTERNAL_ARCHS]


def get_arch(name: str, label: str = "encoder arch") -> ArchSpec:
    """The registered arch `name`; unknown names raise ValueError (one line, `label` naming the option)."""
    if name not in ARCHS:
        raise ValueError(f"unknown {label} {name!r}; choose one of: {', '.join(arch_names())}")
    return ARCHS[name]


def arch_config(name: str, G: Any, size: str = "paper", overrides: dict[str, Any] | None = None) -> Any:
    """The arch's config for generator G at a size preset, with field overrides applied (strictly typed)."""
    spec = get_arch(name)
    cfg = spec.make_config(G, size)
    if overrides:
        cfg = from_dict(spec.config_cls, {**to_dict(cfg), **overrides})
    gc = G.config
    if (cfg.triplane_resolution, cfg.triplane_channels) != (gc.triplane_resolution, gc.triplane_channels):
        raise ValueError(
            f"encoder tri-plane {cfg.triplane_channels}x{cfg.triplane_resolution}² does not match the generator's "
            f"{gc.triplane_channels}x{gc.triplane_resolution}²"
        )
    return cfg


def build_encoder(name: str, cfg: Any, G: Any) -> nn.Module:
    spec = get_arch(name)
    if not isinstance(cfg, spec.config_cls):
        cfg = from_dict(spec.config_cls, dict(cfg))
    return spec.build(dataclasses.replace(cfg), G)
