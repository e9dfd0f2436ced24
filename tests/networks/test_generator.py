"""TriPlaneGenerator (tiny preset): shapes, conditioning, caching, determinism, mirror symmetry, field queries."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gan3dkit.cameras import Cameras
from gan3dkit.networks import DualDiscriminator, GeneratorConfig, SuperResConfig, TriPlaneGenerator, get_preset

from ._helpers import camera_labels


@pytest.fixture(scope="module")
def tiny_g() -> TriPlaneGenerator:
    torch.manual_seed(0)
    return TriPlaneGenerator(get_preset("tiny").generator)


def test_shapes_and_dtypes(tiny_g, labels4):
    G = tiny_g
    z = torch.randn(4, G.z_dim)
    ws = G.mapping(z, labels4)
    assert ws.shape == (4, G.num_ws, G.w_dim) == (4, 10, 64)
    out = G.synthesis(ws, labels4)
    expected = {
        "image": (4, 3, 64, 64),
        "image_raw": (4, 3, 32, 32),
        "image_depth": (4, 1, 32, 32),
        "feature_image": (4, 16, 32, 32),
        "planes": (4, 3, 16, 64, 64),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())
    torch.testing.assert_close(out["image_raw"], out["feature_image"][:, :3])
    assert out["image_raw"].min() >= -1.0 - 2e-3 and out["image_raw"].max() <= 1.0 + 2e-3
    assert out["image_depth"].min() >= 2.25 - 1e-4 and out["image_depth"].max() <= 3.3 + (3.3 - 2.25) / 11 + 1e-4
    out16 = G(z[:2], labels4[:2], neural_rendering_resolution=16)
    assert out16["image_raw"].shape == (2, 3, 16, 16) and out16["image"].shape == (2, 3, 64, 64)
    assert G.neural_rendering_resolution == 32  # a per-call override does not stick (EG3D's does)


def test_conditioning_zero_and_scale(labels4):
    torch.manual_seed(0)
    cfg = get_preset("tiny").generator
    cfg.c_gen_conditioning_zero = False  # as with --gen_pose_cond
    G = TriPlaneGenerator(cfg)
    z = torch.randn(4, G.z_dim)
    ws = G.mapping(z, labels4)
    other = camera_labels([0.5, 0.5, 0.5, 0.5])
    assert not torch.allclose(ws, G.mapping(z, other))  # conditioned on the camera
    G.config.c_gen_conditioning_zero = True
    torch.testing.assert_close(G.mapping(z, labels4), G.mapping(z, other))
    torch.testing.assert_close(G.mapping(z, labels4), G.backbone.mapping(z, torch.zeros(4, 25)))
    G.config.c_gen_conditioning_zero, G.config.c_scale = False, 2.0
    torch.testing.assert_close(G.mapping(z, labels4), G.backbone.mapping(z, labels4 * 2))


def test_same_seed_same_output_and_const_noise(labels4):
    cfg = get_preset("tiny").generator
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        G = TriPlaneGenerator(cfg)
        outs.append(G(torch.randn(2, G.z_dim), labels4[:2]))
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key]), key
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        G.backbone.synthesis.b8.conv0.noise_strength.fill_(0.5)  # make the noise matter
        a = G(z, labels4[:2], noise_mode="const", deterministic_render=True)
        b = G(z, labels4[:2], noise_mode="const", deterministic_render=True)
        c = G(z, labels4[:2], noise_mode="random", deterministic_render=True)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.allclose(a["planes"], c["planes"])


def test_backbone_cache(tiny_g, labels4):
    G = tiny_g
    ws = G.mapping(torch.randn(2, G.z_dim), labels4[:2])
    with torch.no_grad():
        first = G.synthesis(ws, labels4[:2], cache_backbone=True, noise_mode="const", deterministic_render=True)
        other_ws = G.mapping(torch.randn(2, G.z_dim), labels4[:2])
        cached = G.synthesis(other_ws, labels4[:2], use_cached_backbone=True, deterministic_render=True)
    assert torch.equal(first["planes"], cached["planes"])
    torch.testing.assert_close(first["image_raw"], cached["image_raw"])
    G._last_planes = None


def _symmetrise_in_x(planes: torch.Tensor, plane_axes: str) -> torch.Tensor:
    """Make the field x-symmetric: flip each plane along the grid axis that holds world x."""
    p = planes.clone()
    p[:, 0] = 0.5 * (p[:, 0] + p[:, 0].flip(-1))  # (x, y): x is the width axis
    p[:, 1] = 0.5 * (p[:, 1] + p[:, 1].flip(-1))  # (x, z): x is the width axis
    if plane_axes == "eg3d":
        p[:, 2] = 0.5 * (p[:, 2] + p[:, 2].flip(-2))  # (z, x): x is the height axis
    return p  # xy_xz_yz: plane 2 is (y, z) and needs nothing


@pytest.mark.parametrize("plane_axes", ["eg3d", "xy_xz_yz"])
def test_mirrored_camera_renders_flipped_image(plane_axes):
    """An x-symmetric field seen by the mirrored camera (S P S, S = diag(-1,1,1,1)) is the flipped image.

    The mirrored camera's ray through column R-1-j is the x-mirror of the original ray through column j. With
    deterministic sampling both rays take the same depths, and bilinear sampling (align_corners=False) of a plane
    flipped along its x axis returns the same feature at x and -x, so the comparison is exact up to rounding.
    """
    torch.manual_seed(0)
    cfg = get_preset("tiny").generator
    cfg.rendering.plane_axes = plane_axes
    cfg.neural_rendering_resolution = 16
    G = TriPlaneGenerator(cfg)
    c = camera_labels([0.35], pitch=-0.15)
    c_mirror = Cameras.from_label(c).mirror().to_label()
    with torch.no_grad():
        planes = G.synthesize_planes(G.mapping(torch.randn(1, G.z_dim), c), noise_mode="const")
        sym, ws = _symmetrise_in_x(planes, plane_axes), torch.zeros(1, G.num_ws, G.w_dim)
        a, b = (G.render_planes(sym, cam, ws, deterministic_render=True) for cam in (c, c_mirror))
        # the unsymmetrised field is not mirror-symmetric: the test can fail
        d, e = (G.render_planes(planes, cam, ws, deterministic_render=True) for cam in (c_mirror, c))
    torch.testing.assert_close(b["image_raw"], a["image_raw"].flip(-1), atol=1e-4, rtol=0)
    torch.testing.assert_close(b["image_depth"], a["image_depth"].flip(-1), atol=1e-4, rtol=0)
    assert (d["image_raw"] - e["image_raw"].flip(-1)).abs().max() > 1e-3


def test_plane_axes_modes_differ_on_the_same_planes(labels4):
    torch.manual_seed(0)
    cfg = get_preset("tiny").generator
    G_eg3d = TriPlaneGenerator(cfg)
    G_fixed = TriPlaneGenerator(
        dataclasses.replace(cfg, rendering=dataclasses.replace(cfg.rendering, plane_axes="xy_xz_yz"))
    )
    G_fixed.load_state_dict(G_eg3d.state_dict())  # same weights: plane axes are not parameters
    z = torch.randn(2, G_eg3d.z_dim)
    with torch.no_grad():
        a = G_eg3d(z, labels4[:2], noise_mode="const", deterministic_render=True)
        b = G_fixed(z, labels4[:2], noise_mode="const", deterministic_render=True)
    assert torch.equal(a["planes"], b["planes"])
    assert (a["image_raw"] - b["image_raw"]).abs().max() > 1e-3


def test_sample_and_sample_mixed(tiny_g, labels4):
    G = tiny_g
    z = torch.randn(2, G.z_dim)
    coords = torch.rand(2, 50, 3) - 0.5
    dirs = torch.zeros(2, 50, 3)
    with torch.no_grad():
        a = G.sample(coords, dirs, z, labels4[:2], noise_mode="const")
        b = G.sample_mixed(coords, dirs, G.mapping(z, labels4[:2]), noise_mode="const", chunk=16)
    assert a["rgb"].shape == (2, 50, 16) and a["sigma"].shape == (2, 50, 1)
    torch.testing.assert_close(a["sigma"], b["sigma"])


@pytest.mark.parametrize("kind,channels", [("4x", (16, 8)), ("8xdc", (16, 8)), ("none", None)])
def test_superresolution_kinds(kind, channels, labels4):
    torch.manual_seed(0)
    cfg = get_preset("tiny").generator
    cfg.superres = SuperResConfig(kind=kind, channels=channels)
    cfg.neural_rendering_resolution = 16
    G = TriPlaneGenerator(cfg)
    out = G(torch.randn(2, G.z_dim), labels4[:2])
    assert out["image"].shape == (2, 3, 64, 64) and out["image_raw"].shape == (2, 3, 16, 16)
    if kind == "none":
        assert not any(True for _ in G.superresolution.parameters())
    else:
        assert G.superresolution.input_resolution == (16 if kind == "8xdc" else 32)


def test_invalid_generator_inputs(tiny_g):
    with pytest.raises(ValueError, match="c must be"):
        tiny_g.synthesis(torch.zeros(2, tiny_g.num_ws, tiny_g.w_dim), torch.zeros(2, 16))
    with pytest.raises(ValueError, match="too small"):
        GeneratorConfig(img_resolution=8, superres=SuperResConfig(kind="8xdc"))


def test_fused_and_unfused_modconv_agree(tiny_g, labels4):
    """Eval mode uses the fused grouped convolution ("inference_only"), train mode the unfused one."""
    G = tiny_g
    ws = G.mapping(torch.randn(2, G.z_dim), labels4[:2]).detach()
    with torch.no_grad():
        fused = G.synthesize_planes(ws, noise_mode="const", fused_modconv=True)
        unfused = G.synthesize_planes(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(fused, unfused, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mixed_precision_step(labels4):
    torch.manual_seed(0)
    preset = get_preset("tiny")
    G = TriPlaneGenerator(preset.generator).cuda()
    D = DualDiscriminator(preset.discriminator).cuda()
    c = labels4.cuda()
    out = G(torch.randn(4, G.z_dim, device="cuda"), c)
    assert out["image"].dtype == torch.float32 and torch.isfinite(out["image"]).all()
    x, _ = D.b64(None, D.prepare_input(out))
    assert x.dtype == torch.float16  # top blocks of D run in fp16 on CUDA
    logits = D(out, c)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    logits.sum().backward()
