"""Encoders: networks that map images to latents and cameras of a 3D GAN, trained on its own renders."""

# LP3D (+LT) and TriPlaneNet v1/v2, distilled from a generator (gan3dkit distill-encoder / encode).
from .base import CameraModel, EncoderOutput  # noqa: E402
from .config import DISTILL_PRESETS, DistillConfig  # noqa: E402
from .registry import (  # noqa: E402
    ARCHS,
    EXTERNAL_ARCHS,
    ArchSpec,
    arch_config,
    build_encoder,
    get_arch,
    register_arch,
    unregister_arch,
)
