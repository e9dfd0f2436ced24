"""The `heads` family: front-facing, face-like heads in FFHQ framing with a consistent left/right asymmetry."""

from __future__ import annotations

import torch
from torch import Tensor

from .primitives import Group, make_group
from .scene import ParamSpace, Scene, Surface, TextureRule, dot, normalize, palette, rot_x, rot_y, vec

HEAD, EAR_L, EAR_R, NOSE, EYE_L, EYE_R, NECK, EARRING, HAIR, TORSO = range(10)
TORSO_CUT = -0.49  # world y below which the torso is cut off (stays inside the [-0.5, 0.5] box)

SKIN = [(0.97, 0.82, 0.72), (0.92, 0.72, 0.58), (0.80, 0.58, 0.42), (0.62, 0.42, 0.28), (0.40, 0.26, 0.17)]
HAIR_COLOURS = [(0.06, 0.05, 0.05), (0.24, 0.14, 0.08), (0.45, 0.30, 0.16), (0.86, 0.72, 0.42),
                (0.62, 0.26, 0.10), (0.72, 0.72, 0.72)]
IRIS = [(0.36, 0.20, 0.10), (0.25, 0.45, 0.70), (0.30, 0.50, 0.30), (0.12, 0.08, 0.05)]

PARAMS = ParamSpace((
    ("head_rx", 0.155, 0.19, False), ("head_ry", 0.215, 0.25, False), ("head_rz", 0.185, 0.22, False),
    ("head_y", 0.0, 0.045, False), ("head_z", -0.03, 0.02, False),
    ("hair_scale", 1.05, 1.10, False), ("hair_lift", 0.0, 0.02, False), ("hairline", -0.05, 0.12, False),
    ("hair_back", 0.45, 0.7, False), ("hair_sweep", 0.25, 0.5, True),
    ("parting_x", 0.25, 0.4, False), ("parting_width", 0.035, 0.06, True),
    ("ear_y", -0.04, 0.03, False), ("ear_size", 0.045, 0.062, False), ("ear_angle", 0.15, 0.45, False),
    ("nose_y", -0.09, -0.04, False), ("nose_len", 0.045, 0.065, False), ("nose_width", 0.022, 0.034, False),
    ("nose_depth", 0.03, 0.05, False), ("nose_tilt", 0.2, 0.5, False),
    ("eye_sep", 0.055, 0.072, False), ("eye_y", 0.005, 0.04, False), ("eye_r", 0.025, 0.032, False),
    ("brow_h", 0.16, 0.24, False), ("mouth_y", -0.62, -0.5, False), ("mouth_w", 0.2, 0.32, False),
    ("mole_size", 0.06, 0.09, True), ("earring", 0.012, 0.017, True), ("neck_r", 0.075, 0.095, False),
    ("torso_w", 0.28, 0.36, False),
    ("skin_tone", 0.0, 1.0, False), ("hair_tone", 0.0, 1.0, False), ("iris_tone", 0.0, 1.0, False),
    ("lip_dark", 0.6, 0.85, False),
    ("cloth_r", 0.05, 0.9, False), ("cloth_g", 0.05, 0.9, False), ("cloth_b", 0.05, 0.9, False),
    ("bg_top_r", 0.15, 0.95, False), ("bg_top_g", 0.15, 0.95, False), ("bg_top_b", 0.15, 0.95, False),
    ("bg_bottom_r", 0.15, 0.95, False), ("bg_bottom_g", 0.15, 0.95, False), ("bg_bottom_b", 0.15, 0.95, False),
    ("light_x", -0.8, 0.8, True), ("light_y", -0.1, 0.8, False), ("ambient", 0.3, 0.5, False),
    ("diffuse", 0.5, 0.8, False),
))


def build_scene(params: Tensor) -> Scene:
    """Scene for parameter vectors [B, D] (see PARAMS).

    World frame as EG3D's FFHQ: y up, the face looks along +z towards the frontal camera at (0, 0, 2.7); the head's
    own left is +x (it appears on the image's right in a frontal view). Everything lies inside EG3D's FFHQ box
    [-0.5, 0.5]^3: the head ellipsoid (semi-axes about 0.17 x 0.23 x 0.2) is centred near the origin, so at radius
    2.7 and focal 4.2647 (about +-0.32 visible at the origin) it fills the frame like an FFHQ crop, with the eyes
    just above the image centre and neck and shoulders (a torso ellipsoid cut flat at y = -0.49) at the bottom.

    Primitives (global indices): 0 head, 1 left ear (+x), 2 right ear, 3 nose, 4 left eye, 5 right eye, 6 neck, 7
    earring (left ear), 8 hair (a 5-10 % larger ellipsoid cut by a hairline plane: y >= y0 + k z + s x in its local
    frame, so it covers the top and back), 9 torso. Texture: skin, lips, eyebrows, hair strands, iris and pupil (the
    eyes look along +z).

    Consistent asymmetry (so that one image identifies the pose, never its mirror): the hair is parted on the head's
    left (+x) and its fringe swept towards its right (s > 0 lowers the hairline on -x), a gold earring hangs from
    the left ear and a mole sits on the right cheek. `symmetric=True` zeroes hair_sweep, parting_width, mole_size,
    earring and light_x (an earring of size 0 is moved, at a fixed small size, to the middle of the head where it is
    hidden): the scene is then exactly x-mirror symmetric (geometry, texture and lighting).
    """
    q = PARAMS.getter(params)
    zero = torch.zeros_like(q("head_rx"))
    rx, ry, rz, hy, hz = q("head_rx"), q("head_ry"), q("head_rz"), q("head_y"), q("head_z")

    def surface_z(x: Tensor, y: Tensor) -> Tensor:  # world z of the head's front surface above (x, y) offsets
        return hz + rz * (1 - (x / rx) ** 2 - (y / ry) ** 2).clamp_min(0.05).sqrt()

    skin = palette(q("skin_tone"), SKIN)
    hair = palette(q("hair_tone"), HAIR_COLOURS)
    eye_x, eye_y, eye_r = q("eye_sep"), q("eye_y"), q("eye_r")
    eye_z = surface_z(eye_x, eye_y) - 0.45 * eye_r
    ear_c, ear_s = torch.cos(q("ear_angle")), torch.sin(q("ear_angle"))
    ear_semi = vec(0.02, q("ear_size"), 0.7 * q("ear_size"), zero)
    nose_semi = vec(q("nose_width"), q("nose_len"), q("nose_depth"), zero)
    eye_semi = vec(eye_r, eye_r, eye_r, zero)
    ident = torch.eye(3).expand(len(zero), 3, 3)                               # axis-aligned primitives
    ring = q("earring")
    present = ring > 0
    ring_semi = vec(1.0, 1.0, 1.0, zero) * torch.where(present, ring, 0.01)[:, None]
    ring_at = vec(0.96 * rx + 0.012, hy + q("ear_y") - 0.9 * q("ear_size") - ring, hz - 0.15 * rz, zero)
    plain = [  # (centre, semi-axes, rotation, albedo, specular)
        (vec(0.0, hy, hz, zero), vec(rx, ry, rz, zero), ident, skin, 0.08),
        (vec(0.96 * rx, hy + q("ear_y"), hz - 0.15 * rz, zero), ear_semi, rot_y(ear_c, -ear_s), skin * 0.93, 0.05),
        (vec(-0.96 * rx, hy + q("ear_y"), hz - 0.15 * rz, zero), ear_semi, rot_y(ear_c, ear_s), skin * 0.93, 0.05),
        (vec(0.0, hy + q("nose_y"), surface_z(zero, q("nose_y")) - 0.2 * q("nose_depth"), zero), nose_semi,
         rot_x(-q("nose_tilt")), skin, 0.1),
        (vec(eye_x, hy + eye_y, eye_z, zero), eye_semi, ident, vec(0.95, 0.93, 0.90, zero), 0.5),
        (vec(-eye_x, hy + eye_y, eye_z, zero), eye_semi, ident, vec(0.95, 0.93, 0.90, zero), 0.5),
        (vec(0.0, hy - 0.8 * ry, hz - 0.03, zero), vec(q("neck_r"), 0.18, q("neck_r"), zero), ident, skin * 0.9,
         0.05),
        (torch.where(present[:, None], ring_at, vec(0.0, hy, hz, zero)), ring_semi, ident, vec(0.95, 0.78, 0.3, zero),
         0.6),
    ]
    groups = [_group(plain)]

    # Hair: y >= y0 + k z + s x (local) <=> s x - y + k z <= -y0; torso: world y >= TORSO_CUT.
    hair_plane = torch.stack([q("hair_sweep"), -torch.ones_like(zero), q("hair_back"), -q("hairline")], dim=-1)
    hair_plane = hair_plane / dot(hair_plane[:, :3], hair_plane[:, :3]).sqrt()[:, None]
    torso_y, torso_ry = -0.41, 0.15
    torso_plane = vec(0.0, -1.0, 0.0, zero)
    torso_plane = torch.cat([torso_plane, torch.full_like(zero, (torso_y - TORSO_CUT) / torso_ry)[:, None]], -1)
    clipped = [
        (vec(0.0, hy + q("hair_lift"), hz - 0.01, zero), vec(rx, ry, rz, zero) * q("hair_scale")[:, None], ident,
         hair, 0.15),
        (vec(0.0, torso_y, hz - 0.04, zero), vec(q("torso_w"), torso_ry, 0.17, zero), ident,
         vec(q("cloth_r"), q("cloth_g"), q("cloth_b"), zero), 0.05),
    ]
    groups.append(_group(clipped, torch.stack([hair_plane, torso_plane], dim=1)[:, :, None]))

    extra = {
        "skin": skin, "lip": skin * vec(1.0, 0.7, 0.7, zero) * q("lip_dark")[:, None], "brow": hair * 0.8,
        "iris": palette(q("iris_tone"), IRIS), "eye_x": eye_x / rx, "brow_y": eye_y / ry + q("brow_h"),
        "mouth_y": q("mouth_y"), "mouth_w": q("mouth_w"), "mole": q("mole_size"),
        "part_x": q("parting_x"), "part_w": q("parting_width"),
    }
    light = normalize(vec(q("light_x"), q("light_y"), 1.0, zero))
    background = torch.stack([vec(q("bg_top_r"), q("bg_top_g"), q("bg_top_b"), zero),
                              vec(q("bg_bottom_r"), q("bg_bottom_g"), q("bg_bottom_b"), zero)], dim=1)
    return Scene(groups, light, q("ambient"), q("diffuse"), background, TEXTURES, (), extra)


def _group(prims: list[tuple], planes: Tensor | None = None) -> Group:
    """An ellipsoid group from (centre [B, 3], semi-axes [B, 3], rotation [B, 3, 3], albedo [B, 3], specular)."""
    centre, semi, rot, albedo, spec = zip(*prims, strict=False)
    spec_t = torch.tensor(spec, dtype=centre[0].dtype).expand(centre[0].shape[0], -1)
    return make_group("ellipsoid", torch.stack(centre, 1), torch.stack(semi, 1), torch.stack(albedo, 1),
                      torch.stack(rot, 1), planes, spec_t)


def _paint_face(s: Surface) -> None:
    """Lips, eyebrows and the mole on the head's right cheek (-x), in the head's local unit frame."""
    x, y, z = s.local
    face = z > 0.3
    my = (y - s.value("mouth_y")) / 0.07
    s.paint(face & (my.abs() < 1) & (x.abs() < s.value("mouth_w") * (1 - my * my).clamp_min(0).sqrt()),
            s.value("lip"))
    s.paint(face & ((x.abs() - s.value("eye_x")).abs() < 0.2) & ((y - s.value("brow_y")).abs() < 0.04),
            s.value("brow"))
    s.paint(face & ((x + 0.45) ** 2 + (y + 0.3) ** 2 < s.value("mole") ** 2), (0.25, 0.15, 0.10))


def _paint_hair(s: Surface) -> None:
    """Strands (even in x) and the parting on the head's left (+x)."""
    x, y, z = s.local
    s.albedo = s.albedo * (0.88 + 0.12 * torch.cos(60.0 * x))
    s.paint(((x - s.value("part_x")).abs() < s.value("part_w")) & (y > 0.3) & (z > -0.3), s.value("skin") * 0.95)


def _paint_eyes(s: Surface) -> None:
    """Iris and pupil around the eyes' local +z (they look along world +z)."""
    z = s.local[2]
    s.paint(z > 0.78, s.value("iris"))
    s.paint(z > 0.93, (0.03, 0.03, 0.03))


TEXTURES: list[TextureRule] = [((HEAD,), _paint_face), ((HAIR,), _paint_hair), ((EYE_L, EYE_R), _paint_eyes)]
