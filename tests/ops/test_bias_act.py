# SPDX-License-Identifier: Apache-2.0
"""Tests for bias_act: formulas, default gains, bias axis, clamp, and first/second-order gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3dkit.ops import bias_act

SELU_SCALE = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


def _formula(name: str, x: np.ndarray, alpha: float) -> np.ndarray:
    """Activations written directly from their definitions."""
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "lrelu":
        return np.where(x >= 0, x, alpha * x)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "elu":
        return np.where(x > 0, x, np.exp(x) - 1)
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))
    if name == "softplus":
        return np.log1p(np.exp(x))
    if name == "swish":
        return x / (1 + np.exp(-x))
    raise AssertionError(name)


DEFAULT_GAINS = {
    "linear": 1.0,
    "relu": math.sqrt(2),
    "lrelu": math.sqrt(2),
    "tanh": 1.0,
    "sigmoid": 1.0,
    "elu": 1.0,
    "selu": 1.0,
    "softplus": 1.0,
    "swish": math.sqrt(2),
}


@pytest.mark.parametrize("act", sorted(DEFAULT_GAINS))
def test_matches_formula_with_default_gain(act):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 4, generator=gen, dtype=torch.float64) * 3
    b = torch.randn(5, generator=gen, dtype=torch.float64)
    alpha = 0.2 if act == "lrelu" else 0.0
    expected = _formula(act, (x + b[None, :, None, None]).numpy(), alpha) * DEFAULT_GAINS[act]
    np.testing.assert_allclose(bias_act(x, b, act=act).numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", sorted(DEFAULT_GAINS))
def test_custom_gain_and_clamp(act):
    x = torch.linspace(-6, 6, 49, dtype=torch.float64).reshape(7, 7)
    alpha = 0.3 if act == "lrelu" else None
    out = bias_act(x, act=act, alpha=alpha, gain=1.7, clamp=0.9)
    expected = np.clip(_formula(act, x.numpy(), alpha or 0.0) * 1.7, -0.9, 0.9)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert out.abs().max() <= 0.9


def test_bias_along_other_dims():
    x = torch.zeros(2, 3, 4)
    b = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = bias_act(x, b, dim=-1)
    assert torch.equal(out, b.expand(2, 3, 4))
    out = bias_act(x, torch.tensor([-1.0, 0.0]), dim=0, act="relu")
    assert torch.equal(out[0], torch.zeros(3, 4)) and torch.equal(out[1], torch.zeros(3, 4))
    out = bias_act(x, torch.tensor([1.0, 2.0]), dim=0, act="relu", gain=1.0)
    assert torch.equal(out[1], torch.full((3, 4), 2.0))


def test_lrelu_default_alpha_and_dtype_preserved():
    x = torch.tensor([-1.0, 2.0], dtype=torch.float32)
    out = bias_act(x, act="lrelu", gain=1.0)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([-0.2, 2.0]))


def test_invalid_inputs_raise():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="unknown act"):
        bias_act(x, act="gelu")
    with pytest.raises(ValueError, match="takes no alpha"):
        bias_act(x, act="relu", alpha=0.1)
    with pytest.raises(ValueError, match="shape"):
        bias_act(x, torch.zeros(4))
    with pytest.raises(ValueError, match="clamp"):
        bias_act(x, clamp=-1.0)


@pytest.mark.parametrize("act", sorted(DEFAULT_GAINS))
def test_gradcheck_and_gradgradcheck(act):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)

    def fn(x, b):
        return bias_act(x, b, act=act, clamp=1.5)

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_double_backward_nonzero_for_r1_like_use():
    """R1 differentiates a gradient norm; the second derivative of softplus must flow (not be silently zero)."""
    x = torch.randn(8, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(bias_act(x, act="softplus").sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.square().sum(), x)
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(gg, 2 * s * s * (1 - s))
