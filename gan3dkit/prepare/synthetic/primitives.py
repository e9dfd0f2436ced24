"""Analytic convex primitives (ellipsoid, box, cylinder, clipped by half-spaces): ray entry, implicit, normals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

KINDS = ("ellipsoid", "box", "cylinder")
Vec3 = tuple[Tensor, Tensor, Tensor]  # structure-of-arrays 3-vectors: x, y, z components of one shape


@dataclass(frozen=True)
class Group:
    """K primitives of one kind, each clipped by P half-spaces, for B scenes.

    Every primitive lives in a local unit frame p = a @ x + b (x in world). In that frame the solid is the unit ball
    (ellipsoid), the cube max|p_i| <= 1 (box) or p_x^2 + p_y^2 <= 1, |p_z| <= 1 (cylinder along local z),
    intersected with P half-spaces n . p <= h (unit n). All are convex, so a ray enters once: the entry distance is
    the largest of the constraints' entry distances, the exit the smallest, and the ray hits when entry <= exit and
    entry > 0. Matrix products are written out as sums in a fixed order instead of matmul/reduction kernels, so a
    scene renders to the same bits in any batch or chunk, and exactly mirrored scenes give exactly mirrored numbers.
    """

    kind: str
    a: Tensor         # [B, K, 3, 3] world -> local linear part
    b: Tensor         # [B, K, 3] local offset: p = a @ x + b
    planes: Tensor    # [B, K, P, 4] local half-spaces (n, h): n . p <= h, |n| = 1
    scale: Tensor     # [B, K] shortest semi-axis (world units per local unit; normalises the implicit)
    albedo: Tensor    # [B, K, 3] base colour
    specular: Tensor  # [B, K] Blinn-Phong highlight strength

    @property
    def size(self) -> int:
        return self.a.shape[1]


def apply(a: Tensor, v: Tensor) -> Tensor:
    """a [..., 3, 3] @ v [..., 3] -> [..., 3], written out (fixed summation order, broadcasting)."""
    return torch.stack([a[..., i, 0] * v[..., 0] + a[..., i, 1] * v[..., 1] + a[..., i, 2] * v[..., 2]
                        for i in range(3)], dim=-1)


def dot(u: Tensor, v: Tensor) -> Tensor:
    """[..., 3] . [..., 3] -> [...], summed in a fixed order."""
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def normalize(v: Tensor) -> Tensor:
    return v / dot(v, v).sqrt().clamp_min(1e-12)[..., None]


def make_group(kind: str, centre: Tensor, semi: Tensor, albedo: Tensor, rot: Tensor | None = None,
               planes: Tensor | None = None, specular: Tensor | float = 0.0) -> Group:
    """Build a group from centres [B, K, 3], semi-axes [B, K, 3] (cylinder: radius, radius, half-length), optional
    rotations [B, K, 3, 3] (columns = local axes in world) and local planes [B, K, P, 4]; a = diag(1/semi) R^T."""
    if kind not in KINDS:
        raise ValueError(f"primitive kind must be one of {KINDS}, got {kind!r}")
    if rot is None:
        rot = torch.eye(3, dtype=centre.dtype).expand(*centre.shape[:2], 3, 3)
    a = rot.transpose(-1, -2) / semi[..., :, None]
    b = -apply(a, centre)
    if planes is None:
        planes = centre.new_zeros(*centre.shape[:2], 0, 4)
    spec = torch.as_tensor(specular, dtype=centre.dtype).expand(centre.shape[:2])
    return Group(kind, a.contiguous(), b, planes, semi.min(dim=-1).values, albedo, spec.contiguous())


#: Entry distance of a miss in `entry_distance` (finite, so that differences never give NaN; hits are < MISS / 10).
MISS = 1e30
_TINY = 1e-30


@dataclass(frozen=True)
class RayCoeffs:
    """Per-primitive coefficients of one group for fixed camera centres (each [B, K, 1]), see `ray_coeffs`."""

    quad: list[tuple[int, int, Tensor]]                 # qa = sum c_ij d_i d_j (off-diagonal terms doubled)
    lin: list[Tensor]                                   # qb = sum w_i d_i
    qc: Tensor | None                                   # |p_o|_D^2 - 1
    slabs: list[tuple[list[Tensor], Tensor, Tensor]]    # (local axis row a_i, -1 - p_o,i, 1 - p_o,i)
    planes: list[tuple[list[Tensor], Tensor, Tensor]]   # (world normal a^T n, h - n.p_o, exit numerator)


def ray_coeffs(group: Group, origins: Tensor) -> RayCoeffs:
    """Precompute what `entry_distance` needs per primitive for cameras at origins [B, 3].

    Quadrics are evaluated in world coordinates to save work per (ray, primitive): with p = a x + b and
    D = diag(1, 1, 1) (ellipsoid) or diag(1, 1, 0) (cylinder), |p(o + t d)|_D^2 = 1 is qa t^2 + 2 qb t + qc = 0 with
    qa = d^T (a^T D a) d (six per-ray products), qb = (a^T D p_o) . d and qc = |p_o|_D^2 - 1 (per primitive).
    Planes use their world normals a^T n; only box and cylinder slabs need local direction components.
    """
    a = group.a                                                # [B, K, 3, 3]
    at = a.transpose(-1, -2)
    po = apply(a, origins[:, None, :]) + group.b               # [B, K, 3] camera centre in local frames

    def split(v: Tensor) -> list[Tensor]:                      # [B, K, 3] -> 3 x [B, K, 1]
        return [v[..., i, None].contiguous() for i in range(3)]

    quad: list[tuple[int, int, Tensor]] = []
    lin: list[Tensor] = []
    qc = None
    if group.kind != "box":
        diag = torch.tensor((1.0, 1.0, 1.0 if group.kind == "ellipsoid" else 0.0), dtype=a.dtype)
        rows = [a[..., m, :] for m in range(3) if diag[m] > 0]  # non-zero rows of D a, [B, K, 3] each
        q = sum(r[..., :, None] * r[..., None, :] for r in rows)  # [B, K, 3, 3] a^T D a (symmetric)
        assert isinstance(q, Tensor)
        quad = [(i, j, (q[..., i, j, None] * (1.0 if i == j else 2.0)).contiguous())
                for i, j in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))]
        lin = split(apply(at, po * diag))
        qc = (dot(po * diag, po) - 1.0)[..., None].contiguous()
    axes = {"box": (0, 1, 2), "cylinder": (2,), "ellipsoid": ()}[group.kind]
    slabs = [(split(a[:, :, i]), (-1.0 - po[..., i, None]).contiguous(), (1.0 - po[..., i, None]).contiguous())
             for i in axes]
    planes = []
    for j in range(group.planes.shape[2]):
        n = group.planes[:, :, j]                              # [B, K, 4]
        room = (n[..., 3] - dot(n[..., :3], po))[..., None]    # [B, K, 1]: > 0 = camera inside the half-space
        exit_num = torch.where(room >= 0, room, torch.ones_like(room))  # outside: never an exit (see entry_distance)
        planes.append((split(apply(at, n[..., :3])), room.contiguous(), exit_num.contiguous()))
    return RayCoeffs(quad, lin, qc, slabs, planes)


def entry_distance(c: RayCoeffs, d: Vec3) -> Tensor:
    """Ray entry distance [B, K, n] (>= MISS on a miss) of unit directions given as three component tensors
    [B, 1, n] (structure-of-arrays: the ray index is the contiguous inner loop), from the cameras `c` is for.

    Written with arithmetic only (no where/masked_fill/sqrt, which are several times slower on CPU): a negative
    discriminant becomes a negative root (entry > exit); a plane n . (p_o + t a d) <= h with nd = n . a d and
    room = h - n . p_o gives the entry room / min(nd, -tiny) and the exit room / max(nd, tiny) (for a camera outside
    the half-space the exit numerator is 1: moving away makes the entry huge instead).
    """
    t0: Tensor | None = None
    t1: Tensor | None = None
    if c.qc is not None:
        i, j, w = c.quad[0]
        qa = w * (d[i] * d[j])
        for i, j, w in c.quad[1:]:
            qa += w * (d[i] * d[j])
        qb = _dot_rays(c.lin, d)                               # [B, K, n]
        disc = qb * qb
        disc -= qa * c.qc
        sq = disc.abs().rsqrt_().reciprocal_().mul_(disc.sign_())  # sign(disc) sqrt|disc|: a miss has entry > exit
        inv = qa.clamp_min_(_TINY).reciprocal_()               # a ray along a cylinder's axis has qa = 0
        t0, t1 = (qb + sq).mul_(inv).neg_(), sq.sub_(qb).mul_(inv)
    for row, lo_num, hi_num in c.slabs:                        # |p_i| <= 1 along the ray
        inv = _dot_rays(row, d).reciprocal_()
        ta, tb = lo_num * inv, inv.mul_(hi_num)
        lo, hi = torch.minimum(ta, tb), torch.maximum(ta, tb)
        t0 = lo if t0 is None else torch.maximum(t0, lo, out=t0)
        t1 = hi if t1 is None else torch.minimum(t1, hi, out=t1)
    assert t0 is not None and t1 is not None
    for normal, room, exit_num in c.planes:                    # n . p <= h along the ray
        nd = _dot_rays(normal, d)                              # [B, K, n]
        torch.maximum(t0, room / nd.clamp_max(-_TINY), out=t0)
        torch.minimum(t1, exit_num / nd.clamp_min_(_TINY), out=t1)
    bad = (t0 - t1).sign_().clamp_min_(0)                      # 1 where entry > exit (a miss)
    bad += torch.neg(t0).sign_().clamp_min_(0)                 # 1 where the entry is behind the camera
    return torch.nan_to_num_(t0.add_(bad.mul_(MISS)), nan=MISS, posinf=MISS, neginf=MISS)


def _dot_rays(w: list[Tensor], d: Vec3) -> Tensor:
    """Per-primitive vector components (3 x [B, K, 1]) dotted with ray directions (3 x [B, 1, n]) -> [B, K, n]."""
    out = w[0] * d[0]
    out += w[1] * d[1]
    out += w[2] * d[2]
    return out


def local_fields(kind: str, p: Vec3, planes: list[tuple[Tensor, ...]], grad: bool = False
                 ) -> tuple[Tensor, Vec3 | None]:
    """Largest constraint value (<= 0 inside, local units) at local points p (3 component tensors of one shape),
    and, with grad=True, the gradient of that active constraint (3 tensors).

    Constraints: ellipsoid |p| - 1; box |p_i| - 1; cylinder sqrt(p_x^2 + p_y^2) - 1 and |p_z| - 1; planes n . p - h
    (each plane a tuple (n_x, n_y, n_z, h) broadcastable against p).
    """
    x, y, z = p
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    cands: list[tuple[Tensor, Callable[..., tuple[Tensor, ...]]]] = []
    if kind == "ellipsoid":
        r = (x * x + y * y + z * z).sqrt()
        rc = r.clamp_min(1e-12)
        cands.append((r - 1, lambda: (x / rc, y / rc, z / rc)))
    elif kind == "cylinder":
        r = (x * x + y * y).sqrt()
        rc = r.clamp_min(1e-12)
        cands.append((r - 1, lambda: (x / rc, y / rc, zero)))
        cands.append((z.abs() - 1, lambda: (zero, zero, torch.where(z < 0, -one, one))))
    else:
        for i, c in enumerate((x, y, z)):
            cands.append((c.abs() - 1, lambda i=i, c=c: tuple(torch.where(c < 0, -one, one) if j == i else zero
                                                              for j in range(3))))  # type: ignore[misc]
    for nx, ny, nz, h in planes:
        cands.append((nx * x + ny * y + nz * z - h, lambda nx=nx, ny=ny, nz=nz: (nx + zero, ny + zero, nz + zero)))
    f, g = cands[0][0], (cands[0][1]() if grad else None)
    for fc, gc in cands[1:]:
        if g is not None:
            upd = fc > f
            g = tuple(torch.where(upd, new, old) for new, old in zip(gc(), g, strict=False))  # type: ignore[assignment]
        f = torch.maximum(f, fc)
    return f, cast(Vec3 | None, g)


def group_implicit(group: Group, x: Tensor) -> Tensor:
    """Normalised implicit of the group's union at world points x [B, N, 3] -> [B, N].

    Per primitive: the largest constraint (local units) times its shortest semi-axis, so |value| is at most the
    world distance to the surface near it; union = min over primitives.
    """
    xs = [x[:, None, :, i] for i in range(3)]                 # [B, 1, N]
    p = tuple(group.a[..., i, 0, None] * xs[0] + group.a[..., i, 1, None] * xs[1]
              + group.a[..., i, 2, None] * xs[2] + group.b[..., i, None] for i in range(3))  # [B, K, N]
    planes = [tuple(group.planes[:, :, j, c, None] for c in range(4)) for j in range(group.planes.shape[2])]
    f, _ = local_fields(group.kind, p, planes)                 # type: ignore[arg-type]
    return (f * group.scale[..., None]).min(dim=1).values


def surface_frame(group: Group, index: Tensor, x: Vec3) -> tuple[Vec3, Vec3]:
    """Local coordinates and unit world normals (3 x [M] each) of surface points x (3 x [M]) on the primitives
    `index` [M] (= scene * K + k). The normal is the gradient of the active constraint mapped to world by a^T."""
    def rows(t: Tensor) -> list[Tensor]:  # [B, K, ...] -> prod(...) x [M], one contiguous gather per entry
        return [r.index_select(0, index) for r in t.reshape(t.shape[0] * t.shape[1], -1).t().contiguous()]

    a, b, pl = rows(group.a), rows(group.b), rows(group.planes)
    p = tuple(a[3 * i] * x[0] + a[3 * i + 1] * x[1] + a[3 * i + 2] * x[2] + b[i] for i in range(3))
    planes = [tuple(pl[4 * j + c] for c in range(4)) for j in range(group.planes.shape[2])]
    _, g = local_fields(group.kind, p, planes, grad=True)     # type: ignore[arg-type]
    assert g is not None
    nw = tuple(a[j] * g[0] + a[3 + j] * g[1] + a[6 + j] * g[2] for j in range(3))
    inv = (nw[0] * nw[0] + nw[1] * nw[1] + nw[2] * nw[2]).sqrt().clamp_min(1e-12).reciprocal()
    return p, (nw[0] * inv, nw[1] * inv, nw[2] * inv)  # type: ignore[return-value]
