# SPDX-License-Identifier: Apache-2.0
"""EG3D-style networks: typed configs, presets, StyleGAN2 layers, tri-plane generator and dual discriminator."""

from gan3dkit.render.volume import ImportanceRenderer, RenderOutput

from .config import (
    SUPERRES_KINDS,
    DiscriminatorConfig,
    GeneratorConfig,
    MappingConfig,
    RenderingConfig,
    SuperResConfig,
    SynthesisConfig,
    config_from_dict,
    config_to_dict,
)
from .decoder import OSGDecoder
from .discriminator import DiscriminatorBlock, DiscriminatorEpilogue, DualDiscriminator
from .generator import TriPlaneGenerator
from .layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    MinibatchStdLayer,
    filtered_resizing,
    normalize_2nd_moment,
)
from .presets import PRESETS, ModelPreset, get_preset
from .stylegan2 import StyleGAN2Backbone, SynthesisBlock, SynthesisLayer, SynthesisNetwork, ToRGBLayer
from .superresolution import (
    NoSuperResolution,
    SuperResolution2X,
    SuperResolution4X,
    SuperResolution8XDC,
    build_superresolution,
)

__all__ = [
    "PRESETS",
    "SUPERRES_KINDS",
    "Conv2dLayer",
    "DiscriminatorBlock",
    "DiscriminatorConfig",
    "DiscriminatorEpilogue",
    "DualDiscriminator",
    "FullyConnectedLayer",
    "GeneratorConfig",
    "ImportanceRenderer",
    "MappingConfig",
    "MappingNetwork",
    "MinibatchStdLayer",
    "ModelPreset",
    "NoSuperResolution",
    "OSGDecoder",
    "RenderOutput",
    "RenderingConfig",
    "StyleGAN2Backbone",
    "SuperResConfig",
    "SuperResolution2X",
    "SuperResolution4X",
    "SuperResolution8XDC",
    "SynthesisBlock",
    "SynthesisConfig",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGBLayer",
    "TriPlaneGenerator",
    "build_superresolution",
    "config_from_dict",
    "config_to_dict",
    "filtered_resizing",
    "get_preset",
    "normalize_2nd_moment",
]
