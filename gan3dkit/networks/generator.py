# SPDX-License-Identifier: Apache-2.0
"""EG3D's tri-plane generator: mapping -> StyleGAN2 tri-planes -> volume rendering -> super-resolution."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from gan3dkit.cameras import LABEL_DIM, Cameras
from gan3dkit.render import ImportanceRenderer

from .config import GeneratorConfig
from .decoder import OSGDecoder
from .planes import render_planes
from .stylegan2 import StyleGAN2Backbone
from .superresolution import build_superresolution


class TriPlaneGenerator(nn.Module):
    """EG3D generator ``G(z, c)`` where ``c`` is the 25-float camera label ``[B, 25]`` (or ``Cameras`` to render).

    EG3D behaviours reproduced on purpose:

    - ``config.rendering.plane_axes`` defaults to ``"eg3d"``: planes XY, XZ, ZX (no YZ plane). Every released
      NVIDIA checkpoint was trained with it, so it must stay ``"eg3d"`` to load them; use ``"xy_xz_yz"`` for new
      models.
    - The mapping network sees ``c * c_scale``, or zeros when ``c_gen_conditioning_zero`` (no pose conditioning).
    - The super-resolution uses only the last w, and its noise mode comes from ``config.superres.noise_mode``.
    - Rendering is stochastic (depth jitter, random importance samples) unless ``deterministic_render=True``.

    Module and parameter names follow EG3D's (``backbone.mapping.fc0``, ``backbone.synthesis.b4.conv1``,
    ``decoder.net.0``, ``superresolution.block0``) so that converted state dicts map one to one. Unlike EG3D,
    ``synthesis(neural_rendering_resolution=...)`` does not overwrite ``self.neural_rendering_resolution``; the
    density-regularisation box quirk belongs to the trainer.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        config.validate()
        self.config = copy.deepcopy(config)
        cfg = self.config
        self.z_dim, self.c_dim, self.w_dim = cfg.mapping.z_dim, cfg.mapping.c_dim, cfg.mapping.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.backbone = StyleGAN2Backbone(
            cfg.mapping, cfg.synthesis, cfg.triplane_resolution, 3 * cfg.triplane_channels, cfg.num_fp16_res
        )
        self.num_ws = self.backbone.num_ws
        self.renderer = ImportanceRenderer(cfg.rendering)
        self.decoder = OSGDecoder(
            cfg.triplane_channels,
            cfg.rendering.decoder_hidden_dim,
            cfg.rendering.decoder_output_dim,
            cfg.rendering.decoder_lr_mul,
        )
        self.superresolution = build_superresolution(
            cfg.superres, cfg.rendering.decoder_output_dim, cfg.img_resolution, cfg.mapping.w_dim
        )
        if cfg.learned_pose is not None:  # PoF3D: the camera is a function of w
            from .pose_heads import LearnedPose

            self.pose_mapping = LearnedPose(cfg.mapping.w_dim, cfg.learned_pose, cfg.rendering)
        #: Current neural rendering resolution (the trainer fades it; a call may override it).
        self.neural_rendering_resolution = cfg.neural_rendering_resolution
        self._last_planes: Tensor | None = None

    # ---------------------------------------------------------------------------------------------- mapping
    def mapping(
        self,
        z: Tensor,
        c: Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Tensor:  # z [B, z_dim], c [B, 25] -> ws [B, num_ws, w_dim]
        """Map z and the conditioning camera to ws (``c * c_scale``, zeros if ``c_gen_conditioning_zero``)."""
        cond = None
        if self.c_dim > 0:
            cond = c[:, : self.c_dim]
            cond = torch.zeros_like(cond) if self.config.c_gen_conditioning_zero else cond * self.config.c_scale
        return self.backbone.mapping(z, cond, truncation_psi, truncation_cutoff, update_emas)

    # ---------------------------------------------------------------------------------------------- synthesis
    def synthesize_planes(
        self, ws: Tensor, noise_mode: str | None = None, fused_modconv: str | bool | None = None
    ) -> Tensor:  # [B, num_ws, w_dim] -> [B, 3, C, H, W]
        """Run the backbone and split its output into three feature planes."""
        planes = self.backbone.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
        return planes.view(planes.shape[0], 3, self.config.triplane_channels, planes.shape[-2], planes.shape[-1])

    def synthesis(
        self,
        ws: Tensor,  # [B, num_ws, w_dim]
        c: Tensor | Cameras,  # [B, 25] labels (EG3D's input) or Cameras: the rendering camera
        *,
        neural_rendering_resolution: int | None = None,
        update_emas: bool = False,
        cache_backbone: bool = False,
        use_cached_backbone: bool = False,
        noise_mode: str | None = None,
        fused_modconv: str | bool | None = None,
        deterministic_render: bool = False,
    ) -> dict[str, Tensor]:
        """Render ws from camera ``c``.

        Args:
            ws: Latents ``[B, num_ws, w_dim]``.
            c: Camera labels ``[B, 25]`` (OpenCV cam2world + normalised intrinsics), or ``Cameras``.
            neural_rendering_resolution: Rendering resolution for this call (default: the current one).
            update_emas: Unused (kept for EG3D's signature; the mapping updates ``w_avg``).
            cache_backbone: Keep the planes for a later ``use_cached_backbone`` call.
            use_cached_backbone: Reuse the cached planes (same ws assumed) instead of running the backbone.
            noise_mode: Backbone noise ``"random"``, ``"const"`` or ``"none"`` (default: ``config.synthesis``).
            fused_modconv: Override of the modulated-conv path (see ``resolve_fused_modconv``).
            deterministic_render: No depth jitter and evenly spaced importance samples.

        Returns:
            ``image [B, 3, R, R]`` (about [-1, 1]), ``image_raw [B, 3, r, r]``, ``image_depth [B, 1, r, r]`` (ray
            distance), ``feature_image [B, C, r, r]`` and ``planes [B, 3, C, H, W]``, with ``r`` the rendering
            resolution.
        """
        del update_emas
        if isinstance(c, Tensor):  # the label edge: EG3D's G takes [B, >=25] and reads the first 25
            if c.ndim != 2 or c.shape[1] < LABEL_DIM or c.shape[0] != ws.shape[0]:
                raise ValueError(f"TriPlaneGenerator: c must be [B={ws.shape[0]}, {LABEL_DIM}], got {tuple(c.shape)}.")
            c = Cameras.from_label(c[:, :LABEL_DIM].float())
        elif len(c) != ws.shape[0]:
            raise ValueError(f"TriPlaneGenerator: {len(c)} cameras for {ws.shape[0]} latents.")
        if use_cached_backbone and self._last_planes is not None:
            planes = self._last_planes
        else:
            planes = self.synthesize_planes(ws, noise_mode, fused_modconv)
        if cache_backbone:
            self._last_planes = planes
        out = self.render_planes(planes, c, ws, neural_rendering_resolution=neural_rendering_resolution,
                                 deterministic_render=deterministic_render, fused_modconv=fused_modconv)
        return {**out, "planes": planes}

    def render_planes(
        self,
        planes: Tensor,  # [B, 3, C, H, W]
        cameras: Cameras | Tensor,  # Cameras or [B, 25] labels
        ws: Tensor,  # [B, num_ws, w_dim]; the super-resolution reads the last w
        *,
        neural_rendering_resolution: int | None = None,
        deterministic_render: bool = False,
        fused_modconv: str | bool | None = None,
        depth_resolution: int | None = None,
        depth_resolution_importance: int | None = None,
    ) -> dict[str, Tensor]:
        """Render given tri-planes with this generator's renderer, decoder and SR (``synthesis`` after the planes).

        Returns ``image``, ``image_raw``, ``image_depth`` and ``feature_image`` as ``synthesis`` does (see
        ``networks.planes.render_planes``); the resolution defaults to the current neural rendering resolution.
        """
        nrr = self.neural_rendering_resolution if neural_rendering_resolution is None else neural_rendering_resolution
        return render_planes(self.renderer, self.decoder, self.superresolution, planes, cameras, ws, nrr,
                             deterministic=deterministic_render, fused_modconv=fused_modconv,
                             depth_resolution=depth_resolution, depth_resolution_importance=depth_resolution_importance)

    # ---------------------------------------------------------------------------------------------- field queries
    def sample(
        self,
        coordinates: Tensor,
        directions: Tensor,
        z: Tensor,
        c: Tensor,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: str | None = None,
    ) -> dict[str, Tensor]:  # coords [B, N, 3] -> {"rgb": [B, N, C], "sigma": [B, N, 1]} (raw sigma)
        """Evaluate the radiance field of ``G(z, c)`` at world points (EG3D ``G.sample``)."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.sample_mixed(coordinates, directions, ws, noise_mode=noise_mode)

    def sample_mixed(
        self,
        coordinates: Tensor,
        directions: Tensor,
        ws: Tensor,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: str | None = None,
        chunk: int | None = None,
    ) -> dict[str, Tensor]:  # -> {"rgb": [B, N, C], "sigma": [B, N, 1]}
        """Evaluate the field for given ws (EG3D ``G.sample_mixed``; psi/cutoff/update_emas unused, as there)."""
        del truncation_psi, truncation_cutoff, update_emas
        planes = self.synthesize_planes(ws, noise_mode)
        return self.renderer.sample_points(planes, self.decoder, coordinates, directions, chunk=chunk)

    def forward(
        self,
        z: Tensor,
        c: Tensor,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        neural_rendering_resolution: int | None = None,
        update_emas: bool = False,
        cache_backbone: bool = False,
        use_cached_backbone: bool = False,
        noise_mode: str | None = None,
        fused_modconv: str | bool | None = None,
        deterministic_render: bool = False,
    ) -> dict[str, Tensor]:
        """``synthesis(mapping(z, c), c)``; ``c`` both conditions and poses (as in EG3D's ``G(z, c)``)."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesis(
            ws,
            c,
            neural_rendering_resolution=neural_rendering_resolution,
            cache_backbone=cache_backbone,
            use_cached_backbone=use_cached_backbone,
            noise_mode=noise_mode,
            fused_modconv=fused_modconv,
            deterministic_render=deterministic_render,
        )
