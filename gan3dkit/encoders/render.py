"""The student's plane renderer (copies of G's decoder + SR), LP3D's per-sample camera augmentation, plane mirror."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..cameras.conventions import diagonal_fov_from_focal, focal_from_diagonal_fov
from ..cameras.rotations import ypr_to_cam2world
from ..networks.planes import render_planes

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


class PlaneRenderer(nn.Module):
    """The student's renderer: copies of G's OSG decoder and SR (fine-tunable) and what drives the SR's styles.

    ``sr_latent = "one"`` (LP3D supplement A2): a constant 1, which needs a generator whose SR was fine-tuned that
    way (``generator.superres.latent = "one"``, `gan3dkit train --stage lp3d-sr`); there is no ``const_w``.
    ``sr_latent = "learned"`` (the unofficial code, methods.md §5.2): a learned ``const_w [1, 1, w_dim]`` started at
    G's tracked mean w (``w_avg``), for generators whose SR reads w.
    """

    def __init__(self, G: TriPlaneGenerator, sr_latent: str = "learned") -> None:
        super().__init__()
        sr_one = getattr(G.superresolution, "latent", "w") == "one"
        if sr_latent not in ("one", "learned"):
            raise ValueError(f"lp3d.sr_latent must be one or learned, got {sr_latent!r}")
        if sr_latent == "one" and not sr_one:
            raise ValueError("LP3D's constant-1 SR latent (lp3d.sr_latent=one) needs a generator fine-tuned with it: "
                             "gan3dkit train --stage lp3d-sr --init G.safetensors ...; or --set lp3d.sr_latent=learned")
        if sr_latent == "learned" and sr_one:
            raise ValueError("this generator's SR reads a constant 1 (superres.latent=one): use lp3d.sr_latent=one")
        self.renderer = copy.deepcopy(G.renderer)
        self.decoder = copy.deepcopy(G.decoder)
        self.superresolution = copy.deepcopy(G.superresolution)
        self.const_w: nn.Parameter | None = None
        if sr_latent == "learned":
            w_avg = getattr(G.backbone.mapping, "w_avg", None)
            init = w_avg.detach().clone() if w_avg is not None else torch.zeros(G.w_dim)
            self.const_w = nn.Parameter(init.reshape(1, 1, -1))
        self.w_dim = G.w_dim

    def forward(
        self, planes: Tensor, cams: Cameras | Tensor, nrr: int, ws: Tensor | None = None, deterministic: bool = True
    ) -> dict[str, Tensor]:
        if ws is None:  # latent "one": the SR ignores the values and reads only the batch size
            ws = (planes.new_ones(planes.shape[0], 1, self.w_dim) if self.const_w is None
                  else self.const_w.expand(planes.shape[0], 1, -1))
        return render_planes(self.renderer, self.decoder, self.superresolution, planes, cams, ws, nrr,
                             deterministic=deterministic)


def mirror_planes(planes: Tensor, plane_axes: str) -> Tensor:  # [B, 3, C, R, R]
    """Planes of the world mirrored in x (x -> -x): flip each plane along the axis that holds x.

    Plane grids are sampled as (u = width, v = height); with ``"eg3d"`` planes (x, y), (x, z), (z, x) x is the width
    of planes 0 and 1 and the height of plane 2; with ``"xy_xz_yz"`` plane 2 is (y, z) and has no x.
    """
    p0, p1 = planes[:, 0].flip(-1), planes[:, 1].flip(-1)
    p2 = planes[:, 2].flip(-2) if plane_axes in ("eg3d", "eg3d_compat") else planes[:, 2]
    return torch.stack([p0, p1, p2], 1)


@dataclass
class CameraAugConfig:
    """LP3D camera distributions (supplement A2, FFHQ values), drawn per sample.

    Reference view: yaw ~ U(+-yaw_range), pitch ~ U(+-pitch_range) (the paper gives ranges, not distributions),
    FOV ~ N(generator FOV, fov_std_deg) (diagonal FOV, EG3D's convention), radius ~ N(generator radius,
    radius_std), principal point ~ N(0.5, principal_std) (14 px at 512² = 0.0273), roll ~ N(0, roll_std_deg).
    Multiview view: EG3D's fixed intrinsics, radius and zero roll, yaw ~ U(+-mv_yaw_range), pitch ~ U(+-pitch).
    AFHQ in the paper: fov 1.5, principal 25 px (0.0488), roll 6 degrees.
    """

    yaw_range_deg: float = 49.0
    pitch_range_deg: float = 26.0
    mv_yaw_range_deg: float = 36.0
    mv_pitch_range_deg: float = 26.0
    fov_std_deg: float = 1.0
    radius_std: float = 0.1
    principal_std: float = 14.0 / 512.0
    roll_std_deg: float = 2.0
    augment: bool = True
    """False: the reference view uses the fixed EG3D intrinsics/radius/roll too (LP3D's "no aug." ablation)."""


def sample_cameras(
    cfg: CameraAugConfig,
    n: int,
    radius: float,
    focal: float,
    lookat: tuple[float, float, float],
    reference: bool,
    generator: torch.Generator | None = None,
) -> tuple[Cameras, Tensor]:
    """(n cameras, [n, 3] (yaw, pitch, roll)); every sample draws its own yaw, pitch, focal, radius, pp, roll."""
    g = generator
    yaw_r = math.radians(cfg.yaw_range_deg if reference else cfg.mv_yaw_range_deg)
    pit_r = math.radians(cfg.pitch_range_deg if reference else cfg.mv_pitch_range_deg)
    yaw = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * yaw_r
    pitch = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * pit_r
    aug = reference and cfg.augment
    noise = torch.randn(n, 4, generator=g, dtype=torch.float64)
    roll = noise[:, 0] * math.radians(cfg.roll_std_deg) if aug else torch.zeros(n, dtype=torch.float64)
    rad = radius + noise[:, 1] * cfg.radius_std if aug else torch.full((n,), radius, dtype=torch.float64)
    fov = diagonal_fov_from_focal(focal)
    focals = torch.tensor(
        [focal_from_diagonal_fov(fov + float(d) * cfg.fov_std_deg) for d in noise[:, 2]] if aug else [focal] * n,
        dtype=torch.float64,
    )
    pp = 0.5 + torch.randn(n, 2, generator=g, dtype=torch.float64) * cfg.principal_std if aug else None
    c2w = ypr_to_cam2world(yaw, pitch, roll, rad, lookat)
    k = torch.zeros(n, 3, 3, dtype=torch.float64)
    k[:, 0, 0] = k[:, 1, 1] = focals
    k[:, 0, 2] = pp[:, 0] if pp is not None else 0.5
    k[:, 1, 2] = pp[:, 1] if pp is not None else 0.5
    k[:, 2, 2] = 1.0
    return Cameras(c2w.float(), k.float()), torch.stack([yaw, pitch, roll], -1).float()
