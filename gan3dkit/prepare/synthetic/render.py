"""Ray casting and shading of synthetic scenes: exact pixel-centre depth and mask, supersampled colour."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from ...cameras.camera import Cameras
from ...render.rays import ray_bundle
from .primitives import MISS, Group, entry_distance, ray_coeffs, surface_frame
from .scene import Scene, Surface

#: Elements per [B, K, n] intermediate when tracing (rays are processed in chunks of about this size).
CHUNK_ELEMENTS = 1 << 18


def trace(groups: list[Group], origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest hit of rays from origins [B, 3] along unit dirs [B, N, 3].

    Returns the hit distance [B, N] (+inf on a miss) and the global primitive index [B, N] (long, -1 on a miss;
    primitives are numbered through the groups in order; on an exact tie the lower index wins). Each group is cast
    in chunks of rays sized so that its [B, K, n] intermediates hold about CHUNK_ELEMENTS values; the running
    minimum and its index are kept with arithmetic (min with indices and where are slow on CPU).
    """
    batch, num = dirs.shape[:2]
    comps = dirs.permute(2, 0, 1).contiguous()[:, :, None]    # [3, B, 1, N]
    best_t = dirs.new_full((batch, num), MISS)
    best_k = dirs.new_full((batch, num), -1.0)                 # float: updated arithmetically, exact for K < 2^24
    offset = 0
    for g in groups:
        coeffs = ray_coeffs(g, origins)
        step = max(1, CHUNK_ELEMENTS // max(1, batch * g.size))
        for s in range(0, num, step):
            d = (comps[0, ..., s:s + step], comps[1, ..., s:s + step], comps[2, ..., s:s + step])  # 3 x [B, 1, n]
            t = entry_distance(coeffs, d)                      # [B, K, n]
            bt, bk = best_t[:, s:s + step], best_k[:, s:s + step]
            for k in range(g.size):
                closer = (bt - t[:, k]).sign_().clamp_min_(0)  # 1 where primitive k is strictly nearer
                bk += closer.mul_(bk.neg().add_(offset + k))
                torch.minimum(bt, t[:, k], out=bt)
        offset += g.size
    hit = best_t < MISS / 10
    return torch.where(hit, best_t, float("inf")), torch.where(hit, best_k.long(), -1)


def shade(scene: Scene, origins: Tensor, dirs: Tensor, t: Tensor, prim: Tensor, resolution: int) -> Tensor:
    """Colour [3, B, N] in [0, 1] (channel-first) of traced rays, row-major over a resolution^2 image.

    Works on the M hit rays only, as [M] / [3, M] tensors so that every elementwise op runs on contiguous memory;
    gathers are per-row index_select and scatters per-row scatter_ (the fast paths on CPU).
    """
    num = t.shape[1]
    rows = (torch.arange(num, device=t.device) // resolution).to(t.dtype)
    v = ((rows + 0.5) / resolution)[None, None, :]                            # [1, 1, N]
    bg = scene.background.permute(2, 0, 1).contiguous()                       # [3, B, 2]
    out = (bg[..., 0, None] + (bg[..., 1, None] - bg[..., 0, None]) * v).contiguous()  # [3, B, N]
    flat = (prim >= 0).reshape(-1).nonzero().squeeze(1)                       # [M] hit rays, b * N + ray
    if flat.numel() == 0:
        return out
    bi = flat.div(num, rounding_mode="floor")
    k = prim.reshape(-1).index_select(0, flat)
    th = t.reshape(-1).index_select(0, flat)
    d = [c.reshape(-1).index_select(0, flat) for c in dirs.permute(2, 0, 1).contiguous()]  # 3 x [M]
    x = tuple(o.index_select(0, bi) + th * d[i] for i, o in enumerate(origins.t().contiguous()))
    local, normal = torch.empty(3, len(flat), dtype=th.dtype), torch.empty(3, len(flat), dtype=th.dtype)
    offset = 0
    for g in scene.groups:
        if len(scene.groups) == 1:
            p, n = surface_frame(g, bi * g.size + k, x)  # type: ignore[arg-type]
            local, normal = torch.stack(p), torch.stack(n)
        else:
            sel = ((k >= offset) & (k < offset + g.size)).nonzero().squeeze(1)
            if sel.numel():
                index = bi.index_select(0, sel) * g.size + (k.index_select(0, sel) - offset)
                p, n = surface_frame(g, index, tuple(c.index_select(0, sel) for c in x))  # type: ignore[arg-type]
                for i in range(3):
                    local[i].scatter_(0, sel, p[i])
                    normal[i].scatter_(0, sel, n[i])
        offset += g.size
    gk = bi * offset + k
    table = torch.cat([g.albedo for g in scene.groups], dim=1).reshape(-1, 3).t()
    albedo = torch.stack([row.index_select(0, gk) for row in table])                # [3, M]
    spec = torch.cat([g.specular for g in scene.groups], dim=1).reshape(-1).index_select(0, gk)
    tables = scene.tables()
    for prims, painter in scene.textures:
        sel = _isin(k, prims).nonzero().squeeze(1)
        if sel.numel():
            surf = Surface(bi.index_select(0, sel), k.index_select(0, sel),
                           tuple(r.index_select(0, sel) for r in local), tuple(c.index_select(0, sel) for c in x),
                           albedo.index_select(1, sel), tables)  # type: ignore[arg-type]
            painter(surf)
            for i in range(3):
                albedo[i].scatter_(0, sel, surf.albedo[i])
    light = [row.index_select(0, bi) for row in scene.light.t()]               # 3 x [M]
    lambert = (normal[0] * light[0] + normal[1] * light[1] + normal[2] * light[2]).clamp_min_(0)
    half = (light[0] - d[0], light[1] - d[1], light[2] - d[2])
    inv_len = (half[0] * half[0] + half[1] * half[1] + half[2] * half[2]).clamp_min_(1e-24).rsqrt_()
    cos_h = ((normal[0] * half[0] + normal[1] * half[1] + normal[2] * half[2]) * inv_len).clamp_min_(0)
    for _ in range(5):                                                        # cos_h ** 32
        cos_h.mul_(cos_h)
    amb, dif = scene.ambient.index_select(0, bi), scene.diffuse.index_select(0, bi)
    colour = albedo * (amb + dif * lambert) + dif * spec * cos_h              # [3, M]
    if scene.emissive:
        colour = torch.where(_isin(k, scene.emissive), albedo, colour)
    colour.clamp_(0, 1)
    for i in range(3):
        out[i].view(-1).scatter_(0, flat, colour[i])
    return out


def _isin(k: Tensor, prims: tuple[int, ...]) -> Tensor:
    mask = k == prims[0]
    for p in prims[1:]:
        mask |= k == p
    return mask


@torch.no_grad()
def render_scene(scene: Scene, cameras: Cameras, resolution: int, ssaa: int = 2) -> dict[str, Tensor]:
    """Render B scenes; see `gan3dkit.prepare.synthetic.render_batch` for the outputs.

    Depth and mask come from the exact pixel-centre rays of `ray_bundle(cameras, resolution)`. With ssaa > 1 the
    colour is the mean of an ssaa x ssaa grid of sub-pixel rays (`ray_bundle` at resolution * ssaa), so edges are
    anti-aliased: a silhouette pixel may mix object and background colour while its mask tells whether the centre
    ray hits.
    """
    batch, res = len(cameras), resolution
    origins, dirs = ray_bundle(cameras, res)
    origin = origins[:, 0]                                                    # [B, 3] (pinhole: one per camera)
    t, prim = trace(scene.groups, origin, dirs)
    mask = prim >= 0
    if ssaa == 1:
        rgb = shade(scene, origin, dirs, t, prim, res).reshape(3, batch, res, res)
    else:
        _, sub_dirs = ray_bundle(cameras, res * ssaa)
        sub_t, sub_prim = trace(scene.groups, origin, sub_dirs)
        sub = shade(scene, origin, sub_dirs, sub_t, sub_prim, res * ssaa).reshape(3, batch, res, ssaa, res, ssaa)
        rgb = cast(Tensor, sum(sub[:, :, :, i, :, j] for i in range(ssaa) for j in range(ssaa))) / float(ssaa * ssaa)
    image = (rgb.permute(1, 2, 3, 0) * 255.0).round().clamp(0, 255).to(torch.uint8)
    depth = torch.where(mask, t, float("inf")).reshape(batch, res, res).float()
    return {"image": image, "depth": depth, "mask": mask.reshape(batch, res, res)}
