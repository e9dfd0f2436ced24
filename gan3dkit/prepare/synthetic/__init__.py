"""Synthetic datasets with ground truth: procedural heads and cars, analytically ray-cast, exact depth and mask."""

from __future__ import annotations

from .build import build_synthetic, sample_scene, sample_seed
from .families import FAMILIES, build_scene, default_prior, implicit, param_names, render_batch, sample_params

__all__ = ["FAMILIES", "build_scene", "build_synthetic", "default_prior", "implicit", "param_names", "render_batch",
           "sample_params", "sample_scene", "sample_seed"]
