# SPDX-License-Identifier: Apache-2.0
"""Compiled bias_act and upfirdn2d vs their references: values, gradients, double backward (R1), gradgradcheck."""

from __future__ import annotations

import os

import pytest
import torch

from gan3dkit.cameras import get_prior
from gan3dkit.networks import DualDiscriminator, get_preset
from gan3dkit.ops import _backend, _build, bias_act, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from gan3dkit.ops.bias_act import ACTIVATIONS

# Per-dtype tolerances (rtol, atol) of compiled vs reference (float32: the kernel's exp differs by ~1 ulp).
TOL = {torch.float32: (1e-5, 1e-6), torch.float64: (1e-12, 1e-13)}


@pytest.fixture(scope="module", autouse=True)
def ext():
    """The compiled core; skips without a C++ compiler or with GAN3DKIT_NO_EXTENSION=1, fails if the build fails."""
    if os.environ.get(_backend.NO_EXTENSION_ENV, "0") == "1":
        pytest.skip(f"{_backend.NO_EXTENSION_ENV}=1")
    if _build.compiler() is None:
        pytest.skip("no C++ compiler on PATH")
    return _backend.extension()


def _close(a: torch.Tensor | None, b: torch.Tensor | None, like: torch.Tensor) -> None:
    """assert_close with per-dtype tolerances scaled by the magnitude; None counts as a zero gradient."""
    a = torch.zeros_like(like) if a is None else a.detach()
    b = torch.zeros_like(like) if b is None else b.detach()
    rtol, atol = TOL[like.dtype]
    scale = max(1.0, float(a.abs().max())) if a.numel() else 1.0
    torch.testing.assert_close(b, a, rtol=rtol, atol=atol * scale)


def _three_orders(fn, inputs: list[torch.Tensor], gen: torch.Generator):
    """Output, first-order grads for a random cotangent, and the grads of an R1-style penalty on those grads."""
    y = fn(*inputs)
    cot = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    first = torch.autograd.grad(y, inputs, cot, create_graph=True, allow_unused=True)
    penalty = sum((g.square().sum() for g in first if g is not None and g.requires_grad), torch.zeros(()))
    second = torch.autograd.grad(penalty, inputs, allow_unused=True) if penalty.requires_grad else [None] * len(inputs)
    return y, first, second


def _parity(fn_ref, fn_comp, inputs: list[torch.Tensor], seed: int) -> None:
    ref = _three_orders(fn_ref, inputs, torch.Generator().manual_seed(seed))
    comp = _three_orders(fn_comp, inputs, torch.Generator().manual_seed(seed))
    assert comp[0].shape == ref[0].shape and comp[0].dtype == ref[0].dtype
    _close(ref[0], comp[0], ref[0])
    for order in (1, 2):
        for a, b, like in zip(ref[order], comp[order], inputs, strict=False):
            _close(a, b, like)


# ------------------------------------------------------------------------------------------------------ bias_act
BIAS_SHAPES = [  # (x shape, dim, with bias)
    ((2, 5, 3, 4), 1, True),  # NCHW, bias along C
    ((7, 3), 1, True),  # fully connected: bias along the contiguous axis
    ((3, 4, 5), -1, True),
    ((2, 3, 1, 1), 1, True),
    ((1, 1), 1, True),
    ((4, 6), 0, True),
    ((33,), 0, False),
    ((0, 4), 1, True),  # empty
]


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("clamp,gain", [(None, None), (0.5, None), (None, 0.7), (1.3, 2.0)])
@pytest.mark.parametrize("shape,dim,with_bias", BIAS_SHAPES)
def test_bias_act_matches_reference(act, clamp, gain, shape, dim, with_bias):
    gen = torch.Generator().manual_seed(hash((act, shape, clamp)) % 1000)
    x = (torch.randn(shape, generator=gen) * 2.5).requires_grad_()
    b = torch.randn(shape[dim], generator=gen).requires_grad_() if with_bias else None
    inputs = [x] + ([b] if with_bias else [])
    alpha = 0.3 if act == "lrelu" else None

    def run(impl):
        return lambda x, b=None: bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=impl)

    _parity(run("ref"), run("compiled"), inputs, seed=7)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 0.8])
def test_bias_act_gradcheck_and_gradgradcheck(act, clamp):
    gen = torch.Generator().manual_seed(5)
    x = (torch.randn(2, 3, 2, 2, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    b = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_()

    def fn(x, b):
        return bias_act(x, b, act=act, clamp=clamp, impl="compiled")

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_bias_act_float64_sweep_matches_reference():
    gen = torch.Generator().manual_seed(11)
    for act in ACTIVATIONS:
        x = (torch.randn(3, 4, 5, generator=gen, dtype=torch.float64) * 4).requires_grad_()
        b = torch.randn(4, generator=gen, dtype=torch.float64).requires_grad_()
        fns = [lambda x, b, i=impl, a=act: bias_act(x, b, act=a, clamp=2.0, impl=i) for impl in ("ref", "compiled")]
        _parity(fns[0], fns[1], [x, b], seed=3)


def test_bias_act_extreme_values_and_layouts():
    x = torch.tensor([[-200.0, -30.0, -1e-4, 0.0, 1e-4, 15.0, 19.5, 25.0, 90.0]])
    for act in ACTIVATIONS:
        ref = bias_act(x, act=act, impl="ref")
        out = bias_act(x, act=act, impl="compiled")
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    xt = torch.randn(6, 4, 5).transpose(0, 2)  # non-contiguous input
    b = torch.randn(4)
    torch.testing.assert_close(
        bias_act(xt, b, act="lrelu", impl="compiled"), bias_act(xt, b, act="lrelu", impl="ref"), rtol=1e-6, atol=1e-7
    )


def test_bias_act_third_order_raises_and_unsupported_dtype():
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    y = bias_act(x, act="tanh", impl="compiled")
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="third order"):
        torch.autograd.grad(gg.sum(), x)
    with pytest.raises(ValueError, match="float32 or float64"):
        bias_act(torch.randn(3, 2).half(), act="relu", impl="compiled")


# ----------------------------------------------------------------------------------------------------- upfirdn2d
FILTERS = {
    "none": None,
    "box1": setup_filter([1]),
    "blur4": setup_filter([1, 3, 3, 1]),
    "asym3x2": torch.tensor([[0.2, -0.5], [1.0, 0.3], [0.4, 0.7]]),
    "sep8": setup_filter([1, 2, 4, 6, 6, 4, 2, 1]),  # separable (1-D, 8 taps)
}
RESAMPLE = [  # (up, down, padding)
    (1, 1, 0),
    (1, 1, [2, 1, 0, 3]),
    (2, 1, [2, 1, 2, 1]),
    (1, 2, [1, 1, 1, 1]),
    ([2, 1], [1, 3], [1, 2, -1, 2]),  # per-axis factors and a crop
    (3, 2, [3, 2, 2, 3]),
    (1, 1, [-1, -1, -1, 0]),  # crop only
]


@pytest.mark.parametrize("fname", sorted(FILTERS))
@pytest.mark.parametrize("up,down,padding", RESAMPLE)
@pytest.mark.parametrize("size", [(2, 3, 9, 7), (1, 2, 1, 1), (1, 1, 16, 5)])
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_reference(fname, up, down, padding, size, flip):
    f = FILTERS[fname]
    gen = torch.Generator().manual_seed(size[2] * 10 + size[3])
    x = torch.randn(size, generator=gen).requires_grad_()
    kwargs = {"up": up, "down": down, "padding": padding, "flip_filter": flip, "gain": 1.7}
    try:
        upfirdn2d(x, f, impl="ref", **kwargs)
    except ValueError:  # an empty output: both implementations refuse it
        with pytest.raises(ValueError):
            upfirdn2d(x, f, impl="compiled", **kwargs)
        return
    _parity(
        lambda x: upfirdn2d(x, f, impl="ref", **kwargs), lambda x: upfirdn2d(x, f, impl="compiled", **kwargs), [x], 1
    )


@pytest.mark.parametrize("helper", ["filter2d", "upsample2d", "downsample2d"])
@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 2, 3, 4, 4, 3, 2, 1]])
def test_resampling_helpers_match_reference(helper, taps):
    fn = {"filter2d": filter2d, "upsample2d": upsample2d, "downsample2d": downsample2d}[helper]
    f = setup_filter(taps)
    x = torch.randn(2, 4, 12, 10, generator=torch.Generator().manual_seed(2)).requires_grad_()
    _parity(lambda x: fn(x, f, impl="ref"), lambda x: fn(x, f, impl="compiled"), [x], 4)


@pytest.mark.parametrize("up,down,padding", [(1, 1, 1), (2, 1, [2, 1, 2, 1]), (1, 2, [1, 2, 0, 1])])
@pytest.mark.parametrize("fname", ["blur4", "asym3x2", "sep8"])
def test_upfirdn2d_gradcheck_and_gradgradcheck(up, down, padding, fname):
    f = FILTERS[fname].double()
    x = torch.randn(1, 2, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()

    def fn(x):
        return upfirdn2d(x, f, up=up, down=down, padding=padding, gain=1.5, impl="compiled")

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_upfirdn2d_filter_gradient_and_dtypes():
    x = torch.randn(1, 2, 6, 6)
    f = setup_filter([1, 3, 3, 1]).requires_grad_()
    with pytest.raises(ValueError, match="constant filter"):
        upfirdn2d(x, f, impl="compiled")
    y = upfirdn2d(x, f, impl="auto")  # a differentiable filter takes the reference under auto
    assert torch.autograd.grad(y.sum(), f)[0].shape == f.shape
    with pytest.raises(ValueError, match="float32/float64"):
        upfirdn2d(x.half(), f.detach(), impl="compiled")
    xt = torch.randn(1, 2, 7, 6).transpose(2, 3)  # non-contiguous
    fd = f.detach()
    torch.testing.assert_close(upfirdn2d(xt, fd, up=2, impl="compiled"), upfirdn2d(xt, fd, up=2, impl="ref"))


# ------------------------------------------------------------------------------------------- R1 through the real D
def test_discriminator_r1_parity(monkeypatch):
    """EG3D's R1 (grad of D wrt both images, squared, then backward into D) agrees: compiled vs reference D ops."""
    torch.manual_seed(0)
    D = DualDiscriminator(get_preset("tiny").discriminator)
    gen = torch.Generator().manual_seed(1)
    img, raw = torch.randn(2, 3, 64, 64, generator=gen), torch.randn(2, 3, 32, 32, generator=gen)
    c = get_prior("synthetic_heads").sample(2, torch.Generator().manual_seed(2)).to_label()
    results = {}
    chosen: list[tuple[str, str]] = []
    resolve = _backend.resolve_impl

    def spy(op_name, impl, tensor):
        chosen.append((op_name, resolve(op_name, impl, tensor)))
        return chosen[-1][1]

    monkeypatch.setattr(_backend, "resolve_impl", spy)
    for mode in ("ref", "compiled"):
        if mode == "ref":
            monkeypatch.setenv(_backend.NO_EXTENSION_ENV, "1")
        else:
            monkeypatch.delenv(_backend.NO_EXTENSION_ENV, raising=False)
            monkeypatch.setattr(_backend, "CPU_DEFAULT", _backend.CPU_DEFAULT | {"bias_act", "upfirdn2d"})
        D.zero_grad(set_to_none=True)
        i, r = img.clone().requires_grad_(), raw.clone().requires_grad_()
        logits = D({"image": i, "image_raw": r}, c)
        gi, gr = torch.autograd.grad(logits.sum(), [i, r], create_graph=True)
        penalty = gi.square().sum([1, 2, 3]) + gr.square().sum([1, 2, 3])
        penalty.mean().backward()
        results[mode] = (logits.detach(), gi.detach(), gr.detach(), [p.grad for p in D.parameters()])
        assert {op for op, impl in chosen if impl == "compiled"} == (
            {"bias_act", "upfirdn2d"} if mode != "ref" else set()
        )
        chosen.clear()
    ref, comp = results["ref"], results["compiled"]
    for a, b in zip(ref[:3], comp[:3], strict=False):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * max(1.0, float(a.abs().max())))
    # None: no path to the penalty, a zero gradient
    for a, b, param in zip(ref[3], comp[3], D.parameters(), strict=False):
        a, b = (torch.zeros_like(param) if t is None else t for t in (a, b))
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4 * max(1.0, float(a.abs().max())))
