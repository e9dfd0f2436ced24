# SPDX-License-Identifier: Apache-2.0
"""Architecture/rendering presets: a CPU-sized ``tiny`` and EG3D's published FFHQ, AFHQ and ShapeNet settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gan3dkit.cameras import LABEL_DIM

from .config import (
    DiscriminatorConfig,
    GeneratorConfig,
    MappingConfig,
    RenderingConfig,
    SuperResConfig,
    SynthesisConfig,
    config_from_dict,
    config_to_dict,
)

#: EG3D's normalised focal lengths (eg3d.md §2.3, §2.6).
FFHQ_FOCAL = 4.2647
SHAPENET_FOCAL = 1.7074


@dataclass
class ModelPreset:
    """A named generator + discriminator architecture (training hyper-parameters live elsewhere)."""

    description: str
    """One line shown in listings and ``--help``."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    """Generator architecture and rendering."""
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    """Discriminator architecture."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelPreset:
        """Inverse of ``to_dict`` (strict)."""
        return config_from_dict(cls, dict(data))


def _ffhq_rendering(pivot: tuple[float, float, float]) -> RenderingConfig:
    return RenderingConfig(
        plane_axes="eg3d",
        box_warp=1.0,
        ray_start=2.25,
        ray_end=3.3,
        depth_resolution=48,
        depth_resolution_importance=48,
        white_back=False,
        avg_camera_radius=2.7,
        avg_camera_pivot=pivot,
        focal=FFHQ_FOCAL,
    )


def _eg3d(
    img_resolution: int, rendering: RenderingConfig, gen_pose_cond: bool
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """EG3D's train.py architecture for a dataset resolution (SR module chosen by resolution, as there)."""
    kind = {512: "8xdc", 256: "4x", 128: "2x"}[img_resolution]
    gen = GeneratorConfig(
        mapping=MappingConfig(
            z_dim=512, c_dim=LABEL_DIM, w_dim=512, num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998
        ),
        synthesis=SynthesisConfig(channel_base=32768, channel_max=512, conv_clamp=None),
        rendering=rendering,
        superres=SuperResConfig(kind=kind, num_fp16_res=4, conv_clamp=256.0, noise_mode="none", antialias=True),
        img_resolution=img_resolution,
        neural_rendering_resolution=64,
        triplane_resolution=256,
        triplane_channels=32,
        num_fp16_res=0,
        c_scale=1.0,
        c_gen_conditioning_zero=not gen_pose_cond,
    )
    disc = DiscriminatorConfig(
        img_resolution=img_resolution,
        channel_base=32768,
        channel_max=512,
        num_fp16_res=4,
        conv_clamp=256.0,
        mbstd_group_size=4,
        mbstd_num_channels=1,
        c_dim=LABEL_DIM,
        cmap_dim=None,
        mapping_layers=8,
        disc_c_noise=0.0,
        dual=True,
    )
    return gen, disc


def tiny() -> ModelPreset:
    """CPU-sized EG3D: 64² images, 32² rendering, 3x16x64² planes, 12+12 samples, 2x SR, small D."""
    gen = GeneratorConfig(
        mapping=MappingConfig(z_dim=64, c_dim=LABEL_DIM, w_dim=64, num_layers=2),
        synthesis=SynthesisConfig(channel_base=1024, channel_max=64),
        rendering=RenderingConfig(
            depth_resolution=12,
            depth_resolution_importance=12,
            decoder_hidden_dim=32,
            decoder_output_dim=16,
            focal=FFHQ_FOCAL,
            avg_camera_pivot=(0.0, 0.0, 0.0),  # the synthetic heads' look-at point (FFHQ's pivot is (0, 0, 0.2))
        ),
        superres=SuperResConfig(kind="2x", channels=(32, 16)),
        img_resolution=64,
        neural_rendering_resolution=32,
        triplane_resolution=64,
        triplane_channels=16,
        c_gen_conditioning_zero=True,  # trained without generator pose conditioning (EG3D: not --gen_pose_cond)
    )
    disc = DiscriminatorConfig(
        img_resolution=64, channel_base=1024, channel_max=64, mapping_layers=2, mbstd_group_size=4
    )
    return ModelPreset("Tiny EG3D for CPU tests and smoke runs (64² output, FFHQ-like cameras).", gen, disc)


def ffhq512() -> ModelPreset:
    """EG3D FFHQ 512² (``--cfg=ffhq --gen_pose_cond=True``): 8XDC SR, 48+48 samples, near/far 2.25/3.3."""
    gen, disc = _eg3d(512, _ffhq_rendering((0.0, 0.0, 0.2)), gen_pose_cond=True)
    return ModelPreset("EG3D FFHQ 512² (released ffhq512-64/128 architecture, XY/XZ/ZX planes).", gen, disc)


def ffhq256() -> ModelPreset:
    """EG3D FFHQ 256²: like ffhq512 with the 4X SR module."""
    gen, disc = _eg3d(256, _ffhq_rendering((0.0, 0.0, 0.2)), gen_pose_cond=True)
    return ModelPreset("EG3D FFHQ 256² (4X super-resolution).", gen, disc)


def afhq512() -> ModelPreset:
    """EG3D AFHQv2 cats 512²: FFHQ settings with pivot (0, 0, -0.06)."""
    gen, disc = _eg3d(512, _ffhq_rendering((0.0, 0.0, -0.06)), gen_pose_cond=True)
    return ModelPreset("EG3D AFHQv2 cats 512² (released afhqcats512-128 architecture).", gen, disc)


def shapenet128() -> ModelPreset:
    """EG3D ShapeNet cars 128²: 64+64 samples, box 1.6, near/far 0.1/2.6, white background, 2X SR, no GPC."""
    rendering = RenderingConfig(
        plane_axes="eg3d",
        box_warp=1.6,
        ray_start=0.1,
        ray_end=2.6,
        depth_resolution=64,
        depth_resolution_importance=64,
        white_back=True,
        avg_camera_radius=1.7,
        avg_camera_pivot=(0.0, 0.0, 0.0),
        focal=SHAPENET_FOCAL,
    )
    gen, disc = _eg3d(128, rendering, gen_pose_cond=False)
    return ModelPreset("EG3D ShapeNet cars 128² (released shapenetcars128-64 architecture).", gen, disc)


#: Preset factories by name; each call returns fresh configs.
PRESETS: dict[str, Callable[[], ModelPreset]] = {
    "tiny": tiny,
    "ffhq512": ffhq512,
    "ffhq256": ffhq256,
    "afhq512": afhq512,
    "shapenet128": shapenet128,
}


def get_preset(name: str) -> ModelPreset:
    """A fresh preset by name.

    Raises:
        KeyError: For an unknown name; the message lists the known ones.
    """
    try:
        factory = PRESETS[name]
    except KeyError:
        raise KeyError(f"Unknown model preset {name!r}; available presets: {', '.join(sorted(PRESETS))}.") from None
    return factory()
