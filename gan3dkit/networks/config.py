# SPDX-License-Identifier: Apache-2.0
"""Typed, JSON-round-trippable configs for the tri-plane generator and the dual discriminator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gan3dkit.cameras import LABEL_DIM
from gan3dkit.render.volume import RenderingConfig
from gan3dkit.utils.config import from_dict as config_from_dict
from gan3dkit.utils.config import to_dict as config_to_dict

__all__ = [
    "DiscriminatorConfig",
    "GeneratorConfig",
    "LearnedPoseConfig",
    "MappingConfig",
    "RenderingConfig",
    "SUPERRES_KINDS",
    "SuperResConfig",
    "SynthesisConfig",
    "config_from_dict",
    "config_to_dict",
]

T = TypeVar("T")

#: Super-resolution modules by name (EG3D: 8xdc for 512², 4x for 256², 2x for 128²; "none" = no SR).
SUPERRES_KINDS: tuple[str, ...] = ("2x", "4x", "8xdc", "none")
NOISE_MODES: tuple[str, ...] = ("random", "const", "none")
FUSED_MODCONV_MODES: tuple[str, ...] = ("always", "never", "inference_only")


class _DictMixin:
    """``to_dict`` / ``from_dict`` for config dataclasses (strict; shared implementation in ``utils.config``)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Inverse of ``to_dict``: unknown keys or wrongly typed values raise ``ValueError``."""
        return config_from_dict(cls, dict(data))


def _is_pow2(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


# ---------------------------------------------------------------------------------------------- configs
@dataclass
class MappingConfig(_DictMixin):
    """StyleGAN2 mapping network z (+ camera label c) -> w."""

    z_dim: int = 512
    """Latent z dimensionality (0 = no z)."""
    c_dim: int = LABEL_DIM
    """Conditioning label dimensionality (EG3D: the 25-float camera label; 0 = unconditional)."""
    w_dim: int = 512
    """Intermediate latent w dimensionality."""
    num_layers: int = 2
    """Fully connected layers after the input (EG3D ``--map-depth`` default 2; StyleGAN2 uses 8)."""
    embed_features: int | None = None
    """Width of the c embedding (None = w_dim)."""
    layer_features: int | None = None
    """Width of the hidden layers (None = w_dim)."""
    lr_multiplier: float = 0.01
    """Equalised learning-rate multiplier of the fully connected layers."""
    w_avg_beta: float = 0.998
    """Decay of the tracked mean of w (used for truncation); updated only with ``update_emas=True``."""
    activation: str = "lrelu"
    """Activation of the hidden layers (a ``bias_act`` name)."""

    def __post_init__(self) -> None:
        _check(
            self.z_dim >= 0 and self.c_dim >= 0 and self.z_dim + self.c_dim > 0,
            "MappingConfig: need z_dim + c_dim > 0.",
        )
        _check(self.w_dim >= 1 and self.num_layers >= 1, "MappingConfig: w_dim and num_layers must be >= 1.")
        _check(0.0 <= self.w_avg_beta <= 1.0 and self.lr_multiplier > 0, "MappingConfig: bad w_avg_beta/lr_multiplier.")


@dataclass
class SynthesisConfig(_DictMixin):
    """StyleGAN2 synthesis backbone ("skip" architecture) that produces the tri-planes."""

    channel_base: int = 32768
    """Channels at resolution r are ``min(channel_base // r, channel_max)``."""
    channel_max: int = 512
    """Upper bound of the channel count."""
    conv_clamp: float | None = None
    """Clamp of conv outputs (EG3D: 256 only when the backbone uses fp16, i.e. None by default)."""
    use_noise: bool = True
    """Per-layer noise inputs (with learned strength)."""
    noise_mode: str = "random"
    """Default noise: ``"random"`` (fresh per call), ``"const"`` (stored buffer) or ``"none"``."""
    fused_modconv: str = "inference_only"
    """Grouped-conv modulation: ``"always"``, ``"never"`` or ``"inference_only"`` (EG3D: fused in eval mode)."""

    def __post_init__(self) -> None:
        _check(self.channel_base >= 1 and self.channel_max >= 1, "SynthesisConfig: channel_base/max must be >= 1.")
        _check(self.noise_mode in NOISE_MODES, f"SynthesisConfig.noise_mode must be one of {NOISE_MODES}.")
        _check(
            self.fused_modconv in FUSED_MODCONV_MODES, f"SynthesisConfig.fused_modconv: one of {FUSED_MODCONV_MODES}."
        )


@dataclass
class SuperResConfig(_DictMixin):
    """Super-resolution from the neural rendering to the output image (StyleGAN2 synthesis blocks)."""

    kind: str = "8xdc"
    """``"2x"`` / ``"4x"`` (no-upsample block then a 2x block from img/2) or ``"8xdc"`` (two 2x blocks from img/4)."""
    channels: tuple[int, int] | None = None
    """Widths of the two blocks; None = EG3D's: (256, 128) for 8xdc, (128, 64) for 2x/4x."""
    num_fp16_res: int = 4
    """EG3D's ``sr_num_fp16_res``: > 0 runs every SR block in fp16 (on CUDA only; CPU is always fp32)."""
    conv_clamp: float | None = 256.0
    """Clamp of conv outputs (EG3D: 256 when ``num_fp16_res > 0``, else None)."""
    noise_mode: str = "none"
    """Noise of the SR layers (EG3D ``--sr_noise_mode``, default "none")."""
    antialias: bool = True
    """Antialiased bilinear resize of the rendering to the SR input resolution (EG3D ``sr_antialias``)."""
    latent: str = "w"
    """What drives the SR layers' styles: ``"w"`` (EG3D: the backbone's last w) or ``"one"`` (LP3D supplement A2:
    the latent replaced by a constant 1, so an encoder's tri-plane alone decides the image; EG3D is then fine-tuned
    that way: `gan3dkit train --stage lp3d-sr --init G.safetensors`)."""

    def __post_init__(self) -> None:
        if self.channels is not None:
            self.channels = tuple(self.channels)  # type: ignore[assignment]
        _check(self.latent in ("w", "one"), f"SuperResConfig.latent must be 'w' or 'one', got {self.latent!r}.")
        _check(self.kind in SUPERRES_KINDS, f"SuperResConfig.kind must be one of {SUPERRES_KINDS}, got {self.kind!r}.")
        _check(
            self.channels is None or (len(self.channels) == 2 and min(self.channels) >= 1),
            f"SuperResConfig.channels must be None or two positive ints, got {self.channels}.",
        )
        _check(self.noise_mode in NOISE_MODES, f"SuperResConfig.noise_mode must be one of {NOISE_MODES}.")
        _check(self.num_fp16_res >= 0, "SuperResConfig.num_fp16_res must be >= 0.")

    @property
    def block_channels(self) -> tuple[int, int]:
        """Resolved block widths."""
        if self.channels is not None:
            return self.channels
        return (256, 128) if self.kind == "8xdc" else (128, 64)


@dataclass
class LearnedPoseConfig(_DictMixin):
    """PoF3D's pose mapping (`MappingNetworkPose`, methods.md §1.3): (h, v) = (h_mean, v_mean) + MLP(untruncated w).

    Two layers FC(w_dim, w_dim, lrelu) -> FC(w_dim, 2), both with lr multiplier 0.01 (`--lr_multiplier_pose`);
    `linear = True` is PoF3D's `--linear_pose` (one FC). The camera is EG3D's LookAt pose at (h, v) on the sphere of
    `rendering.avg_camera_radius` about the origin, aimed at `rendering.avg_camera_pivot`, with `rendering.focal`.
    """

    h_mean: float = 1.5707963267948966
    """Mean azimuth added to the head's output (PoF3D: pi/2 for faces and cats, pi for cars)."""
    v_mean: float = 1.5707963267948966
    linear: bool = False
    lr_multiplier: float = 0.01
    clamp_h: tuple[float, float] | None = None
    """Clamp of h (PoF3D cars: [0, 2 pi]); None = no clamp."""
    clamp_v: tuple[float, float] | None = None
    """Clamp of v (PoF3D cars: [0, pi]); None = no clamp."""


@dataclass
class GeneratorConfig(_DictMixin):
    """EG3D tri-plane generator: mapping + StyleGAN2 backbone -> tri-planes -> volume rendering -> super-resolution."""

    mapping: MappingConfig = field(default_factory=MappingConfig)
    """Mapping network."""
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    """Tri-plane backbone."""
    rendering: RenderingConfig = field(default_factory=RenderingConfig)
    """Tri-plane sampling, decoder and volume rendering."""
    superres: SuperResConfig = field(default_factory=SuperResConfig)
    """Super-resolution module."""
    img_resolution: int = 512
    """Output image resolution."""
    img_channels: int = 3
    """Output image channels (RGB)."""
    neural_rendering_resolution: int = 64
    """Initial resolution of the volume rendering (the trainer may fade it, e.g. 64 -> 128)."""
    triplane_resolution: int = 256
    """Spatial size of each plane."""
    triplane_channels: int = 32
    """Feature channels per plane (the backbone outputs 3 * this)."""
    num_fp16_res: int = 0
    """Backbone blocks (highest resolutions) run in fp16 on CUDA (EG3D ``--g_num_fp16_res``, default 0)."""
    c_scale: float = 1.0
    """Multiplier of the camera label fed to the mapping network (EG3D ``--c-scale``)."""
    c_gen_conditioning_zero: bool = False
    """Feed zeros instead of the camera label to the mapping network (EG3D: True unless ``--gen_pose_cond``)."""
    learned_pose: LearnedPoseConfig | None = None
    """PoF3D: the generator predicts its own camera from w (``pose_mapping``); None = cameras are inputs (EG3D)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent settings."""
        self.rendering.validate()
        _check(
            _is_pow2(self.img_resolution) and self.img_resolution >= 4, "GeneratorConfig.img_resolution: power of 2."
        )
        _check(
            _is_pow2(self.triplane_resolution) and self.triplane_resolution >= 4,
            "GeneratorConfig.triplane_resolution must be a power of 2 >= 4.",
        )
        _check(
            self.neural_rendering_resolution >= 1 and self.triplane_channels >= 1 and self.img_channels == 3,
            "GeneratorConfig: neural_rendering_resolution, triplane_channels >= 1 and img_channels == 3.",
        )
        _check(self.num_fp16_res >= 0, "GeneratorConfig.num_fp16_res must be >= 0.")
        sr_div = {"8xdc": 4, "2x": 2, "4x": 2, "none": 1}[self.superres.kind]
        _check(
            self.img_resolution // sr_div >= 4,
            f"GeneratorConfig: img_resolution {self.img_resolution} too small for SR {self.superres.kind!r}.",
        )


@dataclass
class DiscriminatorConfig(_DictMixin):
    """StyleGAN2 residual discriminator, camera-conditioned, on image (+ upsampled raw image when ``dual``)."""

    img_resolution: int = 512
    """Input resolution (the SR image's)."""
    img_channels: int = 3
    """Channels per image; the dual input has twice as many."""
    channel_base: int = 32768
    """Channels at resolution r are ``min(channel_base // r, channel_max)``."""
    channel_max: int = 512
    """Upper bound of the channel count."""
    num_fp16_res: int = 4
    """Blocks at the highest resolutions run in fp16 on CUDA (EG3D ``--d_num_fp16_res``)."""
    conv_clamp: float | None = 256.0
    """Clamp of conv outputs (EG3D: 256 when ``num_fp16_res > 0``)."""
    mbstd_group_size: int = 4
    """Minibatch-std group size (the batch must be divisible by min(group, batch))."""
    mbstd_num_channels: int = 1
    """Minibatch-std feature channels (0 disables the layer)."""
    c_dim: int = LABEL_DIM
    """Conditioning label dimensionality (0 = unconditional)."""
    cmap_dim: int | None = None
    """Projection dimensionality (None = channels at 4x4)."""
    mapping_layers: int = 8
    """Layers of the c mapping network (EG3D keeps StyleGAN2's default 8 for D)."""
    mapping_lr_multiplier: float = 0.01
    """Learning-rate multiplier of the c mapping network."""
    disc_c_noise: float = 0.0
    """Add ``N(0, 1) * c.std(batch) * disc_c_noise`` to c (EG3D ``--disc_c_noise``)."""
    dual: bool = True
    """Dual discrimination: concatenate the raw rendering resized to ``img_resolution`` (6 input channels)."""
    raw_resize_mode: str = "antialiased"
    """How image_raw is resized: ``"antialiased"`` (EG3D) or ``"none"`` (plain bilinear)."""

    def __post_init__(self) -> None:
        _check(
            _is_pow2(self.img_resolution) and self.img_resolution >= 8,
            "DiscriminatorConfig.img_resolution must be a power of 2 >= 8.",
        )
        _check(self.mbstd_num_channels >= 0 and self.mbstd_group_size >= 1, "DiscriminatorConfig: bad mbstd settings.")
        _check(self.c_dim >= 0 and self.mapping_layers >= 1, "DiscriminatorConfig: c_dim >= 0, mapping_layers >= 1.")
        _check(
            self.raw_resize_mode in ("antialiased", "none"), "DiscriminatorConfig.raw_resize_mode: antialiased|none."
        )
        _check(
            self.disc_c_noise >= 0 and self.num_fp16_res >= 0, "DiscriminatorConfig: disc_c_noise, num_fp16_res >= 0."
        )

    @property
    def resolved_cmap_dim(self) -> int:
        """Projection dimensionality actually used (0 when unconditional)."""
        if self.c_dim == 0:
            return 0
        return self.cmap_dim if self.cmap_dim is not None else min(self.channel_base // 4, self.channel_max)
