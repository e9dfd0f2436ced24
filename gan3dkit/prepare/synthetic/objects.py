"""The `objects` family: 360-degree, ShapeNet-cars-like toy cars on a white background."""

from __future__ import annotations

import torch
from torch import Tensor

from .primitives import Group, make_group
from .scene import ParamSpace, Scene, Surface, TextureRule, dot, normalize, vec

BODY, CABIN = 0, 1
WHEELS = (2, 3, 4, 5)
HEADLIGHTS, TAILLIGHTS = (6, 7), (8, 9)

PARAMS = ParamSpace((
    ("length", 0.36, 0.45, False), ("width", 0.16, 0.21, False), ("wheel_r", 0.065, 0.09, False),
    ("wheel_w", 0.025, 0.04, False), ("wheel_inset", 0.02, 0.06, False), ("clearance", 0.45, 0.9, False),
    ("body_h", 0.05, 0.08, False), ("hood_bevel", 0.05, 0.3, False), ("trunk_bevel", 0.0, 0.25, False),
    ("cabin_h", 0.045, 0.075, False), ("cabin_front", 0.2, 0.5, False), ("cabin_back", 0.45, 0.8, False),
    ("cabin_w", 0.8, 0.95, False), ("windshield", 0.2, 0.45, False), ("rear_window", 0.05, 0.4, False),
    ("height_jitter", -0.02, 0.02, False),
    ("paint_r", 0.05, 0.95, False), ("paint_g", 0.05, 0.95, False), ("paint_b", 0.05, 0.95, False),
    ("glass", 0.08, 0.25, False), ("fuel_cap", 0.015, 0.025, True),
    ("light_x", -0.7, 0.7, True), ("light_y", 0.5, 1.0, False), ("light_z", -0.7, 0.7, False),
    ("ambient", 0.35, 0.55, False), ("diffuse", 0.45, 0.7, False),
))


def build_scene(params: Tensor) -> Scene:
    """Scene for parameter vectors [B, D] (see PARAMS).

    World frame: y up, the car's front points along +z, its own left is +x. The car is centred on the origin (its
    bounding box's vertical middle at y = 0 up to +-0.02) with half-length 0.36-0.45, half-width 0.16-0.21 and a
    height of about 0.2-0.3, so it sits well inside EG3D's ShapeNet box (box_warp 1.6: [-0.8, 0.8]^3) and fills the
    view of the radius-1.7, focal-1.7074 cameras (about +-0.5 visible at the origin) from the side.

    Primitives (global indices): 0 body (box, hood and trunk bevelled by two planes), 1 cabin (box, windscreen and
    rear window slopes as two planes, offset towards the back), 2-5 wheels (cylinders along x: front-left, front-
    right, rear-left, rear-right), 6-7 white headlights and 8-9 red tail lights (flat ellipsoids, emissive). The
    front (white headlights, dark grille, longer bonnet) and the back (red lights, a licence plate) differ, so the
    full 360-degree yaw is identifiable. Consistent asymmetry: a fuel-filler flap on the car's right side (-x);
    `symmetric=True` removes it and the light's x component, making the scene exactly x-mirror symmetric.
    """
    q = PARAMS.getter(params)
    zero = torch.zeros_like(q("length"))
    one = torch.ones_like(zero)
    length, width, rw, ww = q("length"), q("width"), q("wheel_r"), q("wheel_w")
    hb, hc = q("body_h"), q("cabin_h")
    ground = -0.5 * (q("clearance") * rw + 2 * hb + 2 * hc) + q("height_jitter")
    body_y = ground + q("clearance") * rw + hb
    paint = vec(q("paint_r"), q("paint_g"), q("paint_b"), zero)

    # Body bevels (local): hood z + b y <= 1, trunk -z + t y <= 1. Cabin: windscreen z + f y <= 1 - f, rear
    # -z + r y <= 1 - r; its front/back (fractions of the half-length) stay behind the bevels' top edges.
    front = torch.minimum(q("cabin_front"), 1 - q("hood_bevel") - 0.05)
    back = torch.minimum(q("cabin_back"), 1 - q("trunk_bevel") - 0.05)
    body_planes = torch.stack([_plane(zero, q("hood_bevel"), one, one), _plane(zero, q("trunk_bevel"), -one, one)], 1)
    cabin_planes = torch.stack([_plane(zero, q("windshield"), one, 1 - q("windshield")),
                                _plane(zero, q("rear_window"), -one, 1 - q("rear_window"))], 1)
    glass = q("glass")[:, None] * vec(1.0, 1.05, 1.2, zero)
    big = [(vec(0.0, body_y, zero, zero), vec(width, hb, length, zero), paint, 0.35),
           (vec(0.0, body_y + hb + hc, 0.5 * (front - back) * length, zero),
            vec(q("cabin_w") * width, hc, 0.5 * (front + back) * length, zero), paint, 0.5)]
    wheel_x, wheel_z = width + 0.012 - ww, length - q("wheel_inset") - rw
    tyre = vec(0.07, 0.07, 0.07, zero)
    wheels = [(vec(sx * wheel_x, ground + rw, sz * wheel_z, zero), vec(rw, rw, ww, zero), tyre, 0.05)
              for sz in (1.0, -1.0) for sx in (1.0, -1.0)]
    lamp_semi = vec(0.16 * width, 0.28 * hb, 0.02 + zero, zero)
    white = vec(1.0, 1.0, 0.85, zero)
    red = vec(0.95, 0.10, 0.08, zero)
    lamps = [(vec(sx * 0.68 * width, body_y, length, zero), lamp_semi, white, 0.0) for sx in (1.0, -1.0)]
    lamps += [(vec(sx * 0.7 * width, body_y, -length, zero), lamp_semi, red, 0.0) for sx in (1.0, -1.0)]
    axle = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # local (x, y, z) -> world (z, y, x)
    groups = [_group("box", big, planes=torch.stack([body_planes, cabin_planes], 1)),
              _group("cylinder", wheels, rot=axle), _group("ellipsoid", lamps)]
    extra = {"paint": paint, "glass": glass, "wheel_y": ground + rw, "wheel_z": wheel_z, "wheel_r": rw,
             "cap": q("fuel_cap"), "cap_y": body_y + 0.3 * hb, "cap_z": -0.55 * length}
    light = normalize(vec(q("light_x"), q("light_y"), q("light_z"), zero))
    background = torch.ones(len(zero), 2, 3)
    return Scene(groups, light, q("ambient"), q("diffuse"), background, TEXTURES, HEADLIGHTS + TAILLIGHTS, extra)


def _plane(nx: Tensor, ny: Tensor, nz: Tensor, h: Tensor) -> Tensor:
    """[B, 4] half-space n . p <= h with n normalised."""
    n = torch.stack([nx, ny, nz], -1)
    norm = dot(n, n).sqrt()[:, None]
    return torch.cat([n / norm, h[:, None] / norm], -1)


def _group(kind: str, prims: list[tuple], planes: Tensor | None = None, rot: Tensor | None = None) -> Group:
    """A group from (centre [B, 3], semi-axes [B, 3], albedo [B, 3], specular) tuples; rot [3, 3] shared by all."""
    centre, semi, albedo, spec = zip(*prims, strict=False)
    batch = centre[0].shape[0]
    spec_t = torch.tensor(spec, dtype=centre[0].dtype).expand(batch, -1)
    rot_t = None if rot is None else rot.expand(batch, len(prims), 3, 3)
    return make_group(kind, torch.stack(centre, 1), torch.stack(semi, 1), torch.stack(albedo, 1), rot_t, planes,
                      spec_t)


def _paint_body(s: Surface) -> None:
    """Skirt, grille (front), licence plate (back), wheel arches and the fuel flap (right side, -x)."""
    x, y, z = s.local
    wx, wy, wz = s.world
    side = x.abs() > 0.995
    s.paint(y < -0.55, (0.12, 0.12, 0.12))
    s.paint((z > 0.995) & (x.abs() < 0.45) & (y > -0.5) & (y < 0.1), (0.06, 0.06, 0.06))
    s.paint((z < -0.995) & (x.abs() < 0.28) & (y > -0.5) & (y < -0.05), (0.9, 0.9, 0.85))
    arch = (wy - s.value("wheel_y")) ** 2 + (wz.abs() - s.value("wheel_z")) ** 2 < (1.18 * s.value("wheel_r")) ** 2
    s.paint(side & arch, (0.05, 0.05, 0.05))
    cap = s.value("cap")
    s.paint(side & (wx < 0) & ((wz - s.value("cap_z")).abs() < cap) & ((wy - s.value("cap_y")).abs() < cap),
            s.value("paint") * 0.55)


def _paint_cabin(s: Surface) -> None:
    """Windows all round (below the roof, above the waist line) with a B-pillar on each side."""
    x, y, z = s.local
    s.paint((y > -0.6) & (y < 0.97) & ~((x.abs() > 0.99) & ((z - 0.1).abs() < 0.06)), s.value("glass"))


def _paint_wheels(s: Surface) -> None:
    """Silver hubcaps on the wheels' flat faces."""
    x, y, z = s.local
    s.paint((z.abs() > 0.99) & (x * x + y * y < 0.36), (0.75, 0.75, 0.75))


TEXTURES: list[TextureRule] = [((BODY,), _paint_body), ((CABIN,), _paint_cabin), (WHEELS, _paint_wheels)]
