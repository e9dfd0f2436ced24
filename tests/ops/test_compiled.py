# SPDX-License-Identifier: Apache-2.0
"""Parity of the compiled CPU kernels against their pure-PyTorch twins: values, gradients, gradcheck, edge sizes."""

from __future__ import annotations

import itertools
import os

import pytest
import torch

from gan3dkit.ops import _backend, _build, mip_ray_march, sample_pdf
from gan3dkit.ops.triplane import generate_planes, triplane_decode

# Per-dtype tolerances (rtol, atol) of compiled vs reference.
TOL = {torch.float32: (2e-4, 2e-5), torch.float64: (1e-9, 1e-11)}


@pytest.fixture(scope="module", autouse=True)
def ext():
    """The compiled core; skips without a C++ compiler or with GAN3DKIT_NO_EXTENSION=1, fails if the build fails."""
    if os.environ.get(_backend.NO_EXTENSION_ENV, "0") == "1":
        pytest.skip(f"{_backend.NO_EXTENSION_ENV}=1")
    if _build.compiler() is None:
        pytest.skip("no C++ compiler on PATH")
    return _backend.extension()


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> None:
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol * scale)


def _field_inputs(n, c, h, w, m, h1, o, dtype, gen, spread=0.65):
    planes = torch.randn(n, 3, c, h, w, generator=gen, dtype=dtype)
    coords = (torch.rand(n, m, 3, generator=gen, dtype=dtype) * 2 - 1) * spread  # some outside the box
    w1 = torch.randn(h1, c, generator=gen, dtype=dtype) / c**0.5
    b1 = torch.randn(h1, generator=gen, dtype=dtype)
    w2 = torch.randn(o, h1, generator=gen, dtype=dtype) / h1**0.5
    b2 = torch.randn(o, generator=gen, dtype=dtype)
    return [t.requires_grad_() for t in (planes, coords, w1, b1, w2, b2)]


# ------------------------------------------------------------------------------------------ fused tri-plane field
@pytest.mark.parametrize(
    "n,c,h,w,m,h1,o",
    [
        (1, 32, 16, 16, 300, 64, 33),
        (2, 8, 7, 5, 77, 16, 4),
        (1, 1, 1, 1, 9, 1, 2),
        (2, 3, 2, 9, 1, 5, 2),
        (1, 4, 4, 4, 0, 8, 3),
    ],
)
@pytest.mark.parametrize("plane_axes", ["eg3d", "xy_xz_yz"])
def test_triplane_decode_matches_reference(n, c, h, w, m, h1, o, plane_axes):
    gen = torch.Generator().manual_seed(n * 1000 + c * 10 + m)
    dtype = torch.float32
    inputs = _field_inputs(n, c, h, w, m, h1, o, dtype, gen)
    pm = generate_planes(plane_axes)
    outs, grads = {}, {}
    cot = (torch.randn(n, m, o - 1, generator=gen), torch.randn(n, m, 1, generator=gen))
    for impl in ("ref", "compiled"):
        rgb, sigma = triplane_decode(pm, inputs[0], inputs[1], *inputs[2:], box_warp=1.3, impl=impl)
        outs[impl] = (rgb, sigma)
        grads[impl] = torch.autograd.grad((rgb, sigma), inputs, cot, allow_unused=True)
    for a, b in zip(outs["ref"], outs["compiled"], strict=False):
        assert a.shape == b.shape
        _close(b, a, dtype)
    for a, b in zip(grads["ref"], grads["compiled"], strict=False):
        _close(b, a, dtype, scale=max(1.0, float(a.abs().max()) if a.numel() else 1.0))


def test_triplane_decode_without_coordinate_gradient_and_far_points():
    gen = torch.Generator().manual_seed(3)
    planes, coords, w1, b1, w2, b2 = _field_inputs(1, 4, 6, 6, 50, 8, 3, torch.float32, gen, spread=5.0)
    coords = coords.detach()
    pm = generate_planes()
    ref = triplane_decode(pm, planes, coords, w1, b1, w2, b2, impl="ref")
    out = triplane_decode(pm, planes, coords, w1, b1, w2, b2, impl="compiled")
    for a, b in zip(ref, out, strict=False):
        _close(b, a, torch.float32)
    (g_ref,) = torch.autograd.grad(ref[0].sum() + ref[1].sum(), planes)
    (g_out,) = torch.autograd.grad(out[0].sum() + out[1].sum(), planes)
    _close(g_out, g_ref, torch.float32, scale=10.0)


def test_triplane_decode_gradcheck_float64():
    gen = torch.Generator().manual_seed(4)
    inputs = _field_inputs(1, 3, 4, 5, 6, 4, 3, torch.float64, gen, spread=0.45)
    pm = generate_planes(dtype=torch.float64)

    def fn(*args):
        return triplane_decode(pm, args[0], args[1], *args[2:], box_warp=1.0, impl="compiled")

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)


def test_triplane_decode_is_first_order_only():
    gen = torch.Generator().manual_seed(5)
    inputs = _field_inputs(1, 2, 3, 3, 4, 3, 2, torch.float64, gen)
    rgb, _ = triplane_decode(generate_planes(dtype=torch.float64), inputs[0], inputs[1], *inputs[2:], impl="compiled")
    (g,) = torch.autograd.grad(rgb.sum(), inputs[0], create_graph=True)
    with pytest.raises(RuntimeError, match="differentiable|does not require grad"):
        g.sum().backward()


# ------------------------------------------------------------------------------------------ ray marcher
def _march_inputs(n, m, s, c, dtype, gen, n_empty=0):
    colors = torch.rand(n, m, s, c, generator=gen, dtype=dtype)
    dens = torch.randn(n, m, s, 1, generator=gen, dtype=dtype) * 3
    dens[:, :n_empty] = -400.0  # softplus underflows to exactly 0: empty rays (sum w == 0)
    depths = torch.sort(torch.rand(n, m, s, 1, generator=gen, dtype=dtype) + 2.25, dim=2).values
    return colors.requires_grad_(), dens.requires_grad_(), depths


@pytest.mark.parametrize("n,m,s,c", [(2, 64, 48, 32), (1, 5, 2, 1), (1, 7, 3, 3), (2, 0, 4, 3), (1, 33, 96, 4)])
@pytest.mark.parametrize("white_back", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ray_march_matches_reference(n, m, s, c, white_back, dtype):
    gen = torch.Generator().manual_seed(s * 7 + m)
    n_empty = min(m, 3)
    colors, dens, depths = _march_inputs(n, m, s, c, dtype, gen, n_empty)
    ref = mip_ray_march(colors, dens, depths, white_back, impl="ref")
    out = mip_ray_march(colors, dens, depths, white_back, impl="compiled")
    for a, b in zip(ref, out, strict=False):
        _close(b, a, dtype)
    if m == 0:
        return
    cot = [torch.randn(t.shape, generator=gen, dtype=dtype) for t in ref]
    g_ref = torch.autograd.grad(ref, (colors, dens), cot)
    g_out = torch.autograd.grad(out, (colors, dens), cot)
    for a, b in zip(g_ref, g_out, strict=False):
        assert torch.isfinite(b).all()  # the reference gives NaN on empty rays (0/0 in the depth); the kernel not
        _close(b[:, n_empty:], a[:, n_empty:], dtype)


def test_ray_march_gradcheck_float64():
    gen = torch.Generator().manual_seed(6)
    colors, dens, depths = _march_inputs(1, 4, 6, 3, torch.float64, gen)
    for wb in (False, True):
        assert torch.autograd.gradcheck(
            lambda a, b, wb=wb: mip_ray_march(a, b, depths, white_back=wb, impl="compiled"), (colors, dens), eps=1e-6
        )


def test_ray_march_depth_gradients_use_reference():
    gen = torch.Generator().manual_seed(7)
    colors, dens, depths = _march_inputs(1, 3, 5, 2, torch.float32, gen)
    depths.requires_grad_()
    with pytest.raises(NotImplementedError, match="depths as constants"):
        mip_ray_march(colors, dens, depths, impl="compiled")
    rgb, _, _ = mip_ray_march(colors, dens, depths)  # auto: the reference, gradients reach the depths
    (g,) = torch.autograd.grad(rgb.sum(), depths)
    assert g.abs().sum() > 0


# ------------------------------------------------------------------------------------------ importance sampling
@pytest.mark.parametrize("rows,bins,k", [(50, 45, 48), (3, 1, 5), (0, 4, 3), (17, 7, 1)])
@pytest.mark.parametrize("det", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_pdf_matches_reference(rows, bins, k, det, dtype):
    gen = torch.Generator().manual_seed(rows + bins)
    edges = torch.sort(torch.rand(rows, bins + 1, generator=gen, dtype=dtype) * 2 + 2, dim=1).values
    weights = torch.rand(rows, bins, generator=gen, dtype=dtype) ** 4
    if rows > 2:
        weights[0] = 0.0  # all-zero row: uniform pdf from eps
        weights[1, : bins // 2] = 0.0
    ref = sample_pdf(edges, weights, k, det=det, generator=torch.Generator().manual_seed(1), impl="ref")
    out = sample_pdf(edges, weights, k, det=det, generator=torch.Generator().manual_seed(1), impl="compiled")
    assert out.shape == (rows, k) and not out.requires_grad
    _close(out, ref, dtype, scale=10.0)


# ------------------------------------------------------------------------------------------ sweep (small, fast)
def test_small_shape_sweep_field_and_marcher():
    gen = torch.Generator().manual_seed(8)
    for h, w, m in itertools.product([1, 2, 3], [1, 4], [1, 2, 65]):
        inputs = _field_inputs(1, 2, h, w, m, 3, 2, torch.float64, gen)
        pm = generate_planes(dtype=torch.float64)
        a = triplane_decode(pm, inputs[0], inputs[1], *inputs[2:], impl="ref")
        b = triplane_decode(pm, inputs[0], inputs[1], *inputs[2:], impl="compiled")
        for x, y in zip(a, b, strict=False):
            _close(y, x, torch.float64)
