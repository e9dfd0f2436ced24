# SPDX-License-Identifier: Apache-2.0
"""Fused bias + activation + gain + clamp (StyleGAN2 semantics), pure-PyTorch reference with double backward."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

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

    _backend.resolve_impl("bias_act", impl, x)  # no compiled kernel yet: validates impl, raises for "compiled"
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
