"""Encoders: networks that map images to latents and cameras of a 3D GAN, trained on its own renders."""

# LP3D (+LT) and TriPlaneNet v1/v2, distilled from a generator (gan3dkit distill-encoder / encode).
from .base import CameraModel, EncoderOutput  # noqa: E402
from .config import DISTILL_PRESETS, DistillConfig  # noqa: E402
from .registry import ARCHS, EXTERNAL_ARCHS, arch_config, build_encoder, get_arch  # noqa: E402
