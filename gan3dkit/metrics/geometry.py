"""Geometry metrics: depth errors (normalised MSE, scale/shift-invariant L1/RMSE), pose errors, NFS, depth images."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import as_cameras
from ..ops import unify_samples
from ..render import ray_bundle

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


def _masked(valid: Tensor, x: Tensor) -> Tensor:
    return torch.where(valid, x, torch.zeros_like(x))


def depth_nmse(pred: Tensor, ref: Tensor, valid: Tensor) -> Tensor:  # [B, 1, H, W] x2, bool -> [B]
    """Carver/PoF3D depth error: standardise each map over its valid pixels (zero mean, unit std), then the mean
    squared difference over those pixels (the /10 rescale of Carver cancels in the standardisation). NaN where fewer
    than 2 valid pixels."""
    v = valid & torch.isfinite(pred) & torch.isfinite(ref)
    n = v.flatten(1).sum(1).double()

    def standardise(d: Tensor) -> Tensor:
        d = _masked(v, d.double())
        mean = d.flatten(1).sum(1) / n
        var = (_masked(v, d - mean.view(-1, 1, 1, 1)) ** 2).flatten(1).sum(1) / n
        return (d - mean.view(-1, 1, 1, 1)) / var.clamp_min(1e-24).sqrt().view(-1, 1, 1, 1)

    err = (_masked(v, standardise(pred) - standardise(ref)) ** 2).flatten(1).sum(1) / n
    return torch.where(n >= 2, err, torch.full_like(err, math.nan))


def depth_si_errors(pred: Tensor, ref: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:  # -> l1 [B], rmse [B]
    """Scale- and shift-invariant errors (LP3D, seed 003 Table 3): per image, fit s, t minimising
    sum (s * pred + t - ref)^2 over valid pixels (least squares), then L1 and RMSE of (s * pred + t - ref), in the
    units of `ref`."""
    v = valid & torch.isfinite(pred) & torch.isfinite(ref)
    n = v.flatten(1).sum(1).double().clamp_min(1)
    p, r = _masked(v, pred.double()).flatten(1), _masked(v, ref.double()).flatten(1)
    vm = v.flatten(1).double()
    mp, mr = p.sum(1) / n, r.sum(1) / n
    pc, rc = (p - mp[:, None]) * vm, (r - mr[:, None]) * vm
    s = (pc * rc).sum(1) / pc.square().sum(1).clamp_min(1e-24)
    t = mr - s * mp
    res = (s[:, None] * p + t[:, None] - r) * vm
    l1 = res.abs().sum(1) / n
    rmse = (res.square().sum(1) / n).sqrt()
    bad = v.flatten(1).sum(1) < 2
    return l1.masked_fill(bad, math.nan), rmse.masked_fill(bad, math.nan)


def head_rotation(yaw: Tensor, pitch: Tensor) -> Tensor:  # [B] x2 radians -> [B, 3, 3]
    """R = Ry(yaw) Rx(pitch) (roll 0): the object's rotation relative to the frontal view, identity at (0, 0)."""
    cy, sy, cp, sp = torch.cos(yaw), torch.sin(yaw), torch.cos(pitch), torch.sin(pitch)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).view(-1, 3, 3)
    return ry @ rx


def rotvec(r: Tensor) -> Tensor:  # [B, 3, 3] -> [B, 3] axis * angle (angles < pi)
    cos = ((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    angle = torch.acos(cos)
    axis = torch.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], -1)
    scale = torch.where(angle > 1e-6, angle / (2 * torch.sin(angle).clamp_min(1e-12)), torch.full_like(angle, 0.5))
    return axis * scale[:, None]


def pose_errors(true_yp: Tensor, pred_yp: Tensor) -> dict[str, Tensor]:  # [B, 2] x2 (yaw, pitch) radians
    """Per-sample errors: `rotvec_mse` (Carver's pose score: mean over the 3 components of the squared difference of
    rotation vectors), `geodesic_deg` (angle of R_true^T R_pred, as 2 asin(|R_true - R_pred|_F / 2 sqrt 2), stable
    near 0), `yaw_abs_deg` (wrapped) and `pitch_abs_deg`."""
    rt = head_rotation(true_yp[:, 0].double(), true_yp[:, 1].double())
    rp = head_rotation(pred_yp[:, 0].double(), pred_yp[:, 1].double())
    geo = 2 * torch.asin(((rt - rp).flatten(1).norm(dim=1) / (2 * math.sqrt(2))).clamp(max=1))
    dyaw = torch.remainder(pred_yp[:, 0].double() - true_yp[:, 0].double() + math.pi, 2 * math.pi) - math.pi
    return {
        "rotvec_mse": (rotvec(rt) - rotvec(rp)).square().mean(1),
        "geodesic_deg": torch.rad2deg(geo),
        "yaw_abs_deg": torch.rad2deg(dyaw.abs()),
        "pitch_abs_deg": torch.rad2deg((pred_yp[:, 1] - true_yp[:, 1]).double().abs()),
    }


def _quantile(x: Tensor, q: float) -> Tensor:
    """torch.quantile (linear interpolation) over all elements, without its 16M-element limit."""
    flat = x.flatten().sort().values
    pos = q * (flat.numel() - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return flat[lo] + (flat[hi] - flat[lo]) * (pos - lo)


def cut_weights(raw_sigma: Tensor, depths: Tensor, cut_quantile: float) -> tuple[Tensor, Tensor]:
    """3DGP's MipRayMarcher with `cut_quantile`: softplus(sigma - 1) at interval midpoints (EG3D's density bias),
    densities below the batch-wide quantile set to 0, alpha compositing; returns (weights, midpoint depths),
    each [B, M, S-1, 1]."""
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    sigma = F.softplus((raw_sigma[:, :, :-1] + raw_sigma[:, :, 1:]) / 2 - 1)
    if cut_quantile > 0:
        sigma = torch.where(sigma < _quantile(sigma, cut_quantile), torch.zeros_like(sigma), sigma)
    alpha = 1 - torch.exp(-sigma * deltas)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], 2), 2)
    return alpha * trans[:, :, :-1], (depths[:, :, :-1] + depths[:, :, 1:]) / 2


@torch.no_grad()
def render_cut_depth(G: TriPlaneGenerator, ws: Tensor, cams: Tensor, nrr: int,
                     cut_quantile: float = 0.5) -> Tensor:  # -> [B, 1, r, r]
    """Depth as 3DGP's NFS renders it: same samples as G's renderer (stratified + importance), densities cut at the
    batch quantile, depth = sum_i w_i z_i *without* dividing by sum_i w_i (3DGP comments that division out)."""
    renderer, cfg = G.renderer, G.renderer.config
    origins, dirs = ray_bundle(as_cameras(cams), nrr)
    planes = G.synthesize_planes(ws)
    b, m, _ = origins.shape
    depths = renderer.sample_stratified((b, m), cfg.depth_resolution, True, None, origins.device, origins.dtype)
    colors, sigma = renderer.evaluate_samples(planes, G.decoder, origins, dirs, depths, None)
    if cfg.depth_resolution_importance > 0:
        weights, _ = cut_weights(sigma, depths, cut_quantile)
        fine = renderer.sample_importance(depths, weights, cfg.depth_resolution_importance)
        colors_f, sigma_f = renderer.evaluate_samples(planes, G.decoder, origins, dirs, fine, None)
        depths, colors, sigma = unify_samples(depths, colors, sigma, fine, colors_f, sigma_f)
    weights, z_mid = cut_weights(sigma, depths, cut_quantile)
    return (weights * z_mid).sum(2).permute(0, 2, 1).reshape(b, 1, nrr, nrr)


def non_flatness(depth: Tensor, lo: float, hi: float, bins: int = 64) -> Tensor:  # [B, 1, H, W] -> [B]
    """exp(entropy) of each map's depth histogram (3DGP): depth clamped to [lo, hi], `bins` equal bins on [lo, hi]
    (torch.histc), p = counts / total, entropy = -sum p log(p + 1e-12) in nats. NFS = mean over maps."""
    d = depth.flatten(1).float().clamp(lo, hi)
    hist = torch.stack([torch.histc(row, bins=bins, min=lo, max=hi) for row in d])
    p = hist / hist.sum(1, keepdim=True)
    return torch.exp(-(p * torch.log(p + 1e-12)).sum(1))


def depth_to_uint8(depth: Tensor, valid: Tensor | None = None) -> Tensor:  # [B, 1, H, W] -> uint8 [B, 3, H, W]
    """Depth-FID image: per map, v = (d_max - d) / (d_max - d_min) over valid finite pixels (near = 255, far = 0),
    invalid/background pixels 0, rounded to uint8 and repeated to 3 channels."""
    v = torch.isfinite(depth) if valid is None else valid & torch.isfinite(depth)
    big = torch.finfo(torch.float32).max
    d = depth.float()
    d_min = torch.where(v, d, torch.full_like(d, big)).flatten(1).min(1).values.view(-1, 1, 1, 1)
    d_max = torch.where(v, d, torch.full_like(d, -big)).flatten(1).max(1).values.view(-1, 1, 1, 1)
    x = ((d_max - d) / (d_max - d_min).clamp_min(1e-12)).clamp(0, 1)
    x = torch.where(v, x, torch.zeros_like(x))
    return (x * 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
