# SPDX-License-Identifier: Apache-2.0
"""Fused bias + activation + gain + clamp (StyleGAN2 semantics): compiled kernel and pure-PyTorch reference, both
twice differentiable."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gan3dkit.ops import _backend


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its function of (x, alpha), its default alpha and its default gain."""

    fn: Callable[[torch.Tensor, float], torch.Tensor]
    """Elementwise function; ``alpha`` is only used by ``lrelu``."""
    default_alpha: float | None
    """Default slope (None: the activation takes no alpha)."""
    default_gain: float
    """Default output gain (sqrt(2) for ReLU-like activations, as in StyleGAN2)."""


_SQRT2 = math.sqrt(2.0)

#: Supported activations; all built from differentiable torch ops, so double backward works.
ACTIVATIONS: dict[str, ActivationSpec] = {
    "linear": ActivationSpec(lambda x, a: x, None, 1.0),
    "relu": ActivationSpec(lambda x, a: F.relu(x), None, _SQRT2),
    "lrelu": ActivationSpec(lambda x, a: F.leaky_relu(x, negative_slope=a), 0.2, _SQRT2),
    "tanh": ActivationSpec(lambda x, a: torch.tanh(x), None, 1.0),
    "sigmoid": ActivationSpec(lambda x, a: torch.sigmoid(x), None, 1.0),
    "elu": ActivationSpec(lambda x, a: F.elu(x), None, 1.0),
    "selu": ActivationSpec(lambda x, a: F.selu(x), None, 1.0),
    "softplus": ActivationSpec(lambda x, a: F.softplus(x), None, 1.0),
    "swish": ActivationSpec(lambda x, a: x * torch.sigmoid(x), None, _SQRT2),
}


def bias_act(
    x: torch.Tensor,  # [N, C, ...] (any rank; the bias axis is `dim`)
    b: torch.Tensor | None = None,  # [C] with C == x.shape[dim]
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:  # same shape and dtype as x
    """Add a bias, apply an activation, scale by a gain and clamp: ``clamp(act(x + b, alpha) * gain)``.

    Twice differentiable (the discriminator's R1 penalty backpropagates through it with ``create_graph=True``).

    Args:
        x: Input tensor of any shape and floating dtype.
        b: Optional 1-D bias of length ``x.shape[dim]``, broadcast along ``dim``; None adds nothing.
        dim: Axis of ``x`` that the bias runs along (negative values count from the end); unused without ``b``.
        act: Activation name: ``linear``, ``relu``, ``lrelu``, ``tanh``, ``sigmoid``, ``elu``, ``selu``,
            ``softplus`` or ``swish``.
        alpha: Negative slope of ``lrelu`` (None: 0.2). Must be None for every other activation.
        gain: Output scale (None: the activation's default gain: sqrt(2) for relu, lrelu and swish, 1 otherwise).
        clamp: If not None, clip the output to ``[-clamp, clamp]``; must be >= 0.
        impl: ``"auto"``, ``"ref"`` or ``"compiled"`` (see ``gan3dkit.ops._backend.resolve_impl``).

    Returns:
        Tensor with the shape and dtype of ``x``.

    Raises:
        ValueError: On an unknown activation, a misplaced ``alpha``, a negative ``clamp`` or a bias of wrong shape.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"bias_act: x must be a floating-point tensor, got {type(x).__name__}.")
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: unknown act {act!r}; choose one of {sorted(ACTIVATIONS)}.")
    spec = ACTIVATIONS[act]
    if alpha is not None and spec.default_alpha is None:
        raise ValueError(f"bias_act: act={act!r} takes no alpha, got alpha={alpha}.")
    if clamp is not None and clamp < 0:
        raise ValueError(f"bias_act: clamp must be None or >= 0, got {clamp}.")
    if b is not None:
        if not -x.ndim <= dim < x.ndim:
            raise ValueError(f"bias_act: dim={dim} is out of range for x of shape {tuple(x.shape)}.")
        dim = dim % x.ndim
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias_act: b must have shape [{x.shape[dim]}] (x.shape[{dim}]), got {tuple(b.shape)}.")
    alpha_val = float(alpha if alpha is not None else (spec.default_alpha or 0.0))
    gain_val = float(gain if gain is not None else spec.default_gain)

    if _backend.resolve_impl("bias_act", impl, x) == "compiled":
        if x.dtype in _KERNEL_DTYPES:
            return _bias_act_compiled(x, b, dim, act, alpha_val, gain_val, clamp)
        if impl == "compiled":
            raise ValueError(f"bias_act: the compiled kernel takes float32 or float64, got {x.dtype}; use impl='ref'.")
    return _bias_act_ref(x, b, dim, spec, alpha_val, gain_val, clamp)


def _bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    spec: ActivationSpec,
    alpha: float,
    gain: float,
    clamp: float | None,
) -> torch.Tensor:
    """Reference implementation; arguments already validated and defaults resolved."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    x = spec.fn(x, alpha)
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# ------------------------------------------------------------------------------------------------ compiled twin
#: Activation codes of the kernel (``csrc/bias_act/bias_act.h``): the order of ``ACTIVATIONS``.
_ACT_CODES: dict[str, int] = {name: i for i, name in enumerate(ACTIVATIONS)}
#: Activations with a non-zero second derivative (the others skip the order-2 kernel, as stylegan3 does).
_HAS_2ND_GRAD = frozenset({"tanh", "sigmoid", "elu", "selu", "softplus", "swish"})
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _sum_except(t: torch.Tensor, dim: int) -> torch.Tensor:  # [...] -> [t.shape[dim]]
    return t.sum([d for d in range(t.ndim) if d != dim])


class _BiasAct(torch.autograd.Function):
    """y = clamp(gain * act(x + b)); backward through ``_BiasActGrad`` so it is differentiable again."""

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):  # [...], [C] or [0]
        ctx.save_for_backward(x, b)
        ctx.args = (dim, act, alpha, gain, clamp)
        return _backend.extension().bias_act_fwd(x, b, dim, _ACT_CODES[act], alpha, gain, clamp)

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dx = _BiasActGrad.apply(dy.contiguous(), x, b, *ctx.args)
        db = _sum_except(dx, ctx.args[0]) if ctx.needs_input_grad[1] else None
        return (dx if ctx.needs_input_grad[0] else None), db, None, None, None, None, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * gain * act'(x + b) * clamp mask: the same kernel in mode 1; its own backward uses mode 2."""

    @staticmethod
    def forward(ctx, dy, x, b, dim, act, alpha, gain, clamp):
        ctx.save_for_backward(dy, x, b)
        ctx.args = (dim, act, alpha, gain, clamp)
        return _backend.extension().bias_act_bwd(
            dy, x, b, x.new_empty([0]), 1, dim, _ACT_CODES[act], alpha, gain, clamp
        )

    @staticmethod
    def backward(ctx, d_dx):
        dy, x, b = ctx.saved_tensors
        d_dx = d_dx.contiguous()
        dim, act = ctx.args[0], ctx.args[1]
        d_dy = _BiasActGrad.apply(d_dx, x, b, *ctx.args) if ctx.needs_input_grad[0] else None  # linear in dy
        d_x = d_b = None
        if act in _HAS_2ND_GRAD and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = _BiasActGrad2.apply(d_dx, x, b, dy, *ctx.args)
            d_b = _sum_except(d_x, dim) if ctx.needs_input_grad[2] else None
        elif ctx.needs_input_grad[2]:
            # act'' = 0: no second-order term. x gets None (autograd prunes that path); the bias gets zeros, as the
            # reference gives, so an optimiser treats it the same under both implementations (R1 phases).
            d_b = torch.zeros_like(b)
        return d_dy, (d_x if ctx.needs_input_grad[1] else None), d_b, None, None, None, None, None


class _BiasActGrad2(torch.autograd.Function):
    """The second-order term d_dx * dy * gain * act''(x + b) * mask (mode 2); not differentiable further."""

    @staticmethod
    def forward(ctx, g, x, b, dy, dim, act, alpha, gain, clamp):
        return _backend.extension().bias_act_bwd(g, x, b, dy, 2, dim, _ACT_CODES[act], alpha, gain, clamp)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("bias_act: the compiled kernel is twice differentiable; use impl='ref' for third order.")


def _bias_act_compiled(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float, clamp: float | None
) -> torch.Tensor:
    """Compiled twin of ``_bias_act_ref`` (float32/float64; the result is contiguous)."""
    x = x.contiguous()
    b = x.new_empty([0]) if b is None else b.to(x.dtype).contiguous()
    return _BiasAct.apply(x, b, dim if b.numel() else 0, act, alpha, gain, -1.0 if clamp is None else float(clamp))
