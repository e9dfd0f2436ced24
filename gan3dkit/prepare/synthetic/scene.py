"""Scene containers shared by the synthetic families: parameter spaces, scenes, surfaces, palettes, rotations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .primitives import Group, Vec3, dot, normalize  # noqa: F401  (re-exported for the families)


@dataclass(frozen=True)
class ParamSpace:
    """A family's scene parameter vector: named entries, each uniform in [low, high].

    Entries marked asymmetric are the only ones that break the scene's x-mirror symmetry (marks, an earring, a swept
    hairline, the light's x component); `sample(..., symmetric=True)` sets them to 0, which must switch the asymmetry
    off (each family's scene builder treats 0 as "absent").
    """

    specs: tuple[tuple[str, float, float, bool], ...]  # (name, low, high, asymmetric)

    @property
    def names(self) -> list[str]:
        return [s[0] for s in self.specs]

    @property
    def dim(self) -> int:
        return len(self.specs)

    def sample(self, n: int, generator: torch.Generator | None, symmetric: bool = False) -> Tensor:
        """[n, D] float32: one `torch.rand(n, D)` draw (float64) mapped to the ranges, then rounded to float32."""
        low = torch.tensor([s[1] for s in self.specs], dtype=torch.float64)
        high = torch.tensor([s[2] for s in self.specs], dtype=torch.float64)
        params = low + (high - low) * torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        if symmetric:
            asym = torch.tensor([s[3] for s in self.specs])
            params[:, asym] = 0.0
        return params.float()

    def getter(self, params: Tensor) -> Callable[[str], Tensor]:
        """`get(name)` -> params[:, column] ([B]); checks the vector length once."""
        if params.ndim != 2 or params.shape[1] != self.dim:
            raise ValueError(f"scene parameters must be [B, {self.dim}], got {tuple(params.shape)}")
        index = {name: i for i, name in enumerate(self.names)}
        return lambda name: params[:, index[name]]


@dataclass
class Surface:
    """Surface hits on a few primitives (the ones a texture rule paints), as structure-of-arrays over m hits."""

    batch: Tensor   # [m] scene index
    prim: Tensor    # [m] primitive index, global over the scene's groups in order
    local: Vec3     # 3 x [m] hit point in the primitive's local unit frame
    world: Vec3     # 3 x [m] hit point in world coordinates
    albedo: Tensor  # [3, m] albedo, painted in place by the rule
    tables: dict[str, Tensor]  # the scene's `extra`, channel-first: [B] scalars, [3, B] colours

    def value(self, name: str) -> Tensor:
        """The scene value `name` at each hit: [m] (scalars) or [3, m] (colours)."""
        table = self.tables[name]
        if table.ndim == 1:
            return table.index_select(0, self.batch)
        return torch.stack([row.index_select(0, self.batch) for row in table])

    def paint(self, where: Tensor, colour: Tensor | tuple[float, float, float]) -> None:
        """Set the albedo to `colour` ([3, m] per hit, or a constant RGB) where `where` [m] is True."""
        if isinstance(colour, Tensor):
            self.albedo = torch.where(where, colour, self.albedo)
        else:
            for c in range(3):
                self.albedo[c].masked_fill_(where, colour[c])


TextureRule = tuple[tuple[int, ...], Callable[[Surface], None]]  # (primitive indices, painter)


@dataclass
class Scene:
    """B procedural scenes: geometry, a directional light, a background and texture rules.

    Shading: albedo * (ambient + diffuse * max(0, n.l)) + diffuse * specular * max(0, n.h)^32 (Blinn-Phong,
    white highlight); hits on `emissive` primitives show their albedo unlit. The background is a vertical gradient
    from `background[:, 0]` (top row) to `background[:, 1]` (bottom row): invariant under a horizontal flip. Each
    texture rule paints the hits on its primitives (in their local frames), so it only costs where it applies.
    """

    groups: list[Group]
    light: Tensor        # [B, 3] unit world direction towards the light
    ambient: Tensor      # [B]
    diffuse: Tensor      # [B]
    background: Tensor   # [B, 2, 3] top and bottom colours in [0, 1]
    textures: list[TextureRule] = field(default_factory=list)
    emissive: tuple[int, ...] = ()
    extra: dict[str, Tensor] = field(default_factory=dict)  # per-scene values the rules read: [B] or [B, 3]

    def tables(self) -> dict[str, Tensor]:
        """`extra` channel-first ([B] or [3, B]), ready for per-hit gathers."""
        return {k: (v if v.ndim == 1 else v.t().contiguous()) for k, v in self.extra.items()}


def palette(t: Tensor, colours: list[tuple[float, float, float]]) -> Tensor:
    """Piecewise-linear colour ramp: t [B] in [0, 1] -> [B, 3]."""
    table = torch.tensor(colours, dtype=t.dtype, device=t.device)  # [P, 3]
    x = t.clamp(0, 1) * (len(colours) - 1)
    i = x.floor().long().clamp(max=len(colours) - 2)
    w = (x - i.to(t.dtype))[:, None]
    return table[i] * (1 - w) + table[i + 1] * w


def rot_x(angle: Tensor) -> Tensor:
    """[B] -> [B, 3, 3] rotation about +x (right-handed): y -> (0, cos, sin)."""
    c, s, o, z = torch.cos(angle), torch.sin(angle), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([o, z, z, z, c, -s, z, s, c], dim=-1).reshape(-1, 3, 3)


def rot_y(cos: Tensor, sin: Tensor) -> Tensor:
    """[B] cos, sin -> [B, 3, 3] rotation about +y: x -> (cos, 0, -sin). Passing -sin gives the exact mirror."""
    o, z = torch.ones_like(cos), torch.zeros_like(cos)
    return torch.stack([cos, z, sin, z, o, z, -sin, z, cos], dim=-1).reshape(-1, 3, 3)


def vec(x: Tensor | float, y: Tensor | float, z: Tensor | float, like: Tensor) -> Tensor:
    """Stack scalars / [B] tensors into [B, 3] (broadcast against `like` [B])."""
    return torch.stack([torch.as_tensor(v, dtype=like.dtype).expand_as(like) for v in (x, y, z)], dim=-1)
