# SPDX-License-Identifier: Apache-2.0
"""Backend registry that picks the compiled core or the pure-PyTorch reference for each op."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from types import ModuleType
from typing import Any, Callable

import torch

#: Ops that dispatch between the reference and a future compiled kernel.
OP_NAMES: tuple[str, ...] = ("bias_act", "upfirdn2d", "sample_from_planes", "mip_ray_march", "sample_pdf")
#: Accepted values of every op's ``impl`` argument.
IMPLS: tuple[str, ...] = ("auto", "ref", "compiled")
#: Dotted name of the (future) compiled extension. It must expose an autograd-aware callable named like the op,
#: taking the same arguments as the reference minus ``impl``.
COMPILED_MODULE = "gan3dkit._C"
#: Setting this environment variable to 1 disables the compiled core (CPU CI, debugging).
NO_EXTENSION_ENV = "GAN3DKIT_NO_EXTENSION"

# The only module-level mutable state: op names whose "falling back to the reference" warning was already emitted.
_warned_ops: set[str] = set()


def _check_op(op_name: str) -> None:
    if op_name not in OP_NAMES:
        raise ValueError(f"Unknown op {op_name!r}; known ops: {', '.join(OP_NAMES)}.")


def _load_compiled() -> tuple[ModuleType | None, str]:
    """Import the compiled extension lazily (sys.modules caches it). Returns (module or None, reason)."""
    if os.environ.get(NO_EXTENSION_ENV, "0") == "1":
        return None, f"compiled core disabled by {NO_EXTENSION_ENV}=1"
    module = sys.modules.get(COMPILED_MODULE)
    if module is not None:
        return module, "compiled core loaded"
    try:
        spec = importlib.util.find_spec(COMPILED_MODULE)
    except (ImportError, ValueError) as exc:
        return None, f"cannot look up {COMPILED_MODULE}: {exc}"
    if spec is None:
        return None, f"compiled core {COMPILED_MODULE} is not built"
    try:
        return importlib.import_module(COMPILED_MODULE), "compiled core loaded"
    except Exception as exc:  # noqa: BLE001 - a broken build must be reported, not hidden
        return None, f"importing {COMPILED_MODULE} failed: {type(exc).__name__}: {exc}"


def _compiled_status(op_name: str) -> tuple[bool, str]:
    module, reason = _load_compiled()
    if module is None:
        return False, reason
    if not callable(getattr(module, op_name, None)):
        return False, f"{COMPILED_MODULE} does not provide {op_name!r}"
    return True, f"{COMPILED_MODULE}.{op_name} available"


def compiled_available(op_name: str) -> bool:
    """Whether the compiled core provides ``op_name``; imports ``gan3dkit._C`` lazily on first use.

    Args:
        op_name: One of ``OP_NAMES``.

    Returns:
        True if the compiled kernel can be used.
    """
    _check_op(op_name)
    return _compiled_status(op_name)[0]


def resolve_impl(op_name: str, impl: str, tensor: torch.Tensor) -> str:
    """Choose the implementation for one call of an op.

    Args:
        op_name: One of ``OP_NAMES``.
        impl: ``"ref"`` (pure PyTorch), ``"compiled"`` (raise if unavailable) or ``"auto"`` (compiled for CUDA
            tensors when available, otherwise the reference; warns once per op when a CUDA tensor falls back).
        tensor: The op's main input; its device drives the ``"auto"`` choice.

    Returns:
        ``"ref"`` or ``"compiled"``.

    Raises:
        ValueError: If ``op_name`` or ``impl`` is unknown.
        RuntimeError: If ``impl="compiled"`` and the compiled core is unavailable.
    """
    _check_op(op_name)
    if impl not in IMPLS:
        raise ValueError(f"{op_name}: impl must be one of {IMPLS}, got {impl!r}.")
    if impl == "ref":
        return "ref"
    if impl == "compiled":
        ok, reason = _compiled_status(op_name)
        if not ok:
            raise RuntimeError(
                f"{op_name}: impl='compiled' was requested but the compiled core is not available ({reason}). "
                f"Build/install the gan3dkit C++/CUDA extension, or pass impl='ref' (or 'auto') to use the "
                f"pure-PyTorch reference implementation."
            )
        return "compiled"
    if tensor.device.type != "cuda":
        return "ref"
    ok, reason = _compiled_status(op_name)
    if ok:
        return "compiled"
    if op_name not in _warned_ops:
        _warned_ops.add(op_name)
        warnings.warn(
            f"gan3dkit.ops.{op_name}: compiled core unavailable ({reason}); falling back to the slower pure-PyTorch "
            f"reference for CUDA tensors. Pass impl='ref' to choose it explicitly. (Shown once per op.)",
            RuntimeWarning,
            stacklevel=3,
        )
    return "ref"


def compiled_op(op_name: str) -> Callable[..., Any]:
    """The compiled callable for ``op_name``; only valid after ``resolve_impl`` returned ``"compiled"``."""
    module, reason = _load_compiled()
    if module is None:
        raise RuntimeError(f"{op_name}: compiled core not available ({reason}).")
    return getattr(module, op_name)


def backend_report() -> dict[str, dict[str, Any]]:
    """Per-op backend status, printed by ``gan3dkit env``.

    Returns:
        ``{op_name: {"active": "ref"|"compiled", "compiled_available": bool, "reason": str}}`` where ``active`` is
        what ``impl="auto"`` uses for CUDA tensors (CPU tensors always use the reference).
    """
    report: dict[str, dict[str, Any]] = {}
    for name in OP_NAMES:
        ok, reason = _compiled_status(name)
        report[name] = {
            "active": "compiled" if ok else "ref",
            "compiled_available": ok,
            "reason": reason if ok else f"{reason}; using the pure-PyTorch reference",
        }
    return report
