# SPDX-License-Identifier: Apache-2.0
"""Backend registry that picks the compiled core or the pure-PyTorch reference for each op."""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import Any

import torch

#: Ops that dispatch between the reference and a compiled kernel.
OP_NAMES: tuple[str, ...] = (
    "bias_act",
    "upfirdn2d",
    "sample_from_planes",
    "triplane_decode",
    "mip_ray_march",
    "sample_pdf",
)
#: Accepted values of every op's ``impl`` argument.
IMPLS: tuple[str, ...] = ("auto", "ref", "compiled")
#: Dotted name of an ahead-of-time build of the extension (a wheel built with the C++ core); tried before the JIT.
PREBUILT_MODULE = "gan3dkit._C"
COMPILED_MODULE = PREBUILT_MODULE  # backwards-compatible name
#: Setting this environment variable to 1 disables the compiled core (CPU CI, debugging).
NO_EXTENSION_ENV = "GAN3DKIT_NO_EXTENSION"
#: Ops whose compiled CPU kernel beats the reference (measured, ``docs/benchmarks.md``): ``impl="auto"`` uses them
#: for CPU tensors. Every other op keeps the reference on CPU unless ``impl="compiled"`` is passed.
CPU_DEFAULT: frozenset[str] = frozenset({"bias_act", "upfirdn2d", "triplane_decode", "mip_ray_march", "sample_pdf"})
#: Ops with a compiled kernel at all (the entry point ``<kernel>_fwd`` in the extension); others are reference-only.
_KERNELS: dict[str, str] = {
    "bias_act": "bias_act_fwd",
    "upfirdn2d": "upfirdn2d_fwd",
    "triplane_decode": "triplane_decode_fwd",
    "mip_ray_march": "ray_march_fwd",
    "sample_pdf": "sample_pdf_fwd",
}

# Module-level caches (not switches): the loaded extension or the reason it is missing, and the op names whose
# "falling back to the reference" warning was already emitted.
_state: dict[str, Any] = {}
_warned_ops: set[str] = set()
# Self-check verdicts per (op, CUDA device) of this process: True = the kernel passed (see gan3dkit.ops.selfcheck).
_device_ok: dict[tuple[str, str], bool] = {}


def _check_op(op_name: str) -> None:
    if op_name not in OP_NAMES:
        raise ValueError(f"Unknown op {op_name!r}; known ops: {', '.join(OP_NAMES)}.")


def _load_compiled(build: bool = True) -> tuple[ModuleType | None, str]:
    """The compiled extension (prebuilt ``gan3dkit._C``, else the JIT cache, compiling it if ``build``).

    Returns:
        ``(module or None, reason)``. A failed build is remembered for the rest of the process.
    """
    if os.environ.get(NO_EXTENSION_ENV, "0") == "1":
        return None, f"compiled core disabled by {NO_EXTENSION_ENV}=1"
    if "module" in _state:
        return _state["module"], _state["reason"]
    try:
        module: ModuleType | None = importlib.import_module(PREBUILT_MODULE)
        reason = f"prebuilt {PREBUILT_MODULE}"
    except ImportError:
        module = None
    if module is None:
        from gan3dkit.ops import _build

        spec = _build.build_spec()
        if not build and not _build.is_built(spec):
            failed = _build.failure_reason(spec)
            if failed:
                return None, f"an earlier build failed: {failed}"
            if _build.compiler() is None:
                return None, "not built and no C++ compiler found"
            return None, "not built yet (compiled into the cache on first use, or run `python3 -m gan3dkit.ops.build`)"
        try:
            module = _build.load()
            reason = f"JIT build {spec.directory}"
        except Exception as exc:  # noqa: BLE001 - a broken build must be reported, not hidden
            module, reason = None, f"build failed: {exc}"
    _state["module"], _state["reason"] = module, reason
    return module, reason


def _compiled_status(op_name: str, device_type: str = "cpu", build: bool = True) -> tuple[bool, str]:
    kernel = _KERNELS.get(op_name)
    if kernel is None:
        return False, f"no compiled kernel for {op_name} yet"
    module, reason = _load_compiled(build)
    if module is None:
        return False, reason
    if not callable(getattr(module, kernel, None)):
        return False, f"the compiled core does not provide {kernel!r}"
    if device_type == "cuda" and not getattr(module, "with_cuda", False):
        return False, "the compiled core was built without CUDA kernels"
    return True, reason


def compiled_status(op_name: str, device_type: str = "cpu", build: bool = False) -> tuple[bool, str]:
    """``(available, reason)`` of the compiled kernel of ``op_name`` on ``device_type`` (no build unless ``build``)."""
    _check_op(op_name)
    return _compiled_status(op_name, device_type, build=build)


def kernel_names() -> dict[str, str]:
    """``{op: entry point in the extension}`` for every op with a compiled kernel."""
    return dict(_KERNELS)


def _passes_selfcheck(op_name: str, device: torch.device) -> tuple[bool, str]:
    """Runs (once per op, device and build) the self-check of the compiled kernel on a CUDA device."""
    key = (op_name, str(device))
    if key not in _device_ok:
        from gan3dkit.ops import selfcheck

        verdict = selfcheck.ensure(op_name, device)
        if verdict.error == "check in progress":
            return True, ""
        _device_ok[key] = verdict.ok
        if not verdict.ok:
            _state[f"disabled:{key}"] = selfcheck.disabled_message(verdict)
    return _device_ok[key], _state.get(f"disabled:{key}", "")


def compiled_available(op_name: str, device_type: str = "cpu") -> bool:
    """Whether a compiled kernel for ``op_name`` can run on ``device_type`` (builds the core on first call).

    Args:
        op_name: One of ``OP_NAMES``.
        device_type: ``"cpu"`` or ``"cuda"``.

    Returns:
        True if the compiled kernel can be used.
    """
    _check_op(op_name)
    return _compiled_status(op_name, device_type)[0]


def _auto_wants_compiled(op_name: str, device_type: str) -> bool:
    """CUDA tensors always want a kernel (a missing one is warned about); CPU tensors only for ``CPU_DEFAULT``."""
    return device_type == "cuda" or op_name in CPU_DEFAULT


def resolve_impl(op_name: str, impl: str, tensor: torch.Tensor) -> str:
    """Choose the implementation for one call of an op.

    Args:
        op_name: One of ``OP_NAMES``.
        impl: ``"ref"`` (pure PyTorch), ``"compiled"`` (raise if unavailable) or ``"auto"``: the compiled kernel
            on CUDA, and on CPU for the ops in ``CPU_DEFAULT`` (where it is measured faster); when that kernel is
            missing (no kernel for the op or device, or the core cannot be built or loaded) the reference, with
            one warning per op naming the reason. Other CPU ops use the reference silently (by design).
            On a CUDA device the compiled kernel must first pass its self-check (``gan3dkit.ops.selfcheck``,
            cached): a failing kernel is disabled there, ``"auto"`` uses the reference after one warning and
            ``"compiled"`` raises.
            ``GAN3DKIT_NO_EXTENSION=1`` selects the reference everywhere without warnings.
        tensor: The op's main input; its device drives the ``"auto"`` choice.

    Returns:
        ``"ref"`` or ``"compiled"``.

    Raises:
        ValueError: If ``op_name`` or ``impl`` is unknown.
        RuntimeError: If ``impl="compiled"`` and the compiled kernel is unavailable.
    """
    _check_op(op_name)
    if impl not in IMPLS:
        raise ValueError(f"{op_name}: impl must be one of {IMPLS}, got {impl!r}.")
    if impl == "ref":
        return "ref"
    device_type = tensor.device.type
    if impl == "compiled":
        ok, reason = _compiled_status(op_name, device_type)
        if not ok:
            raise RuntimeError(
                f"{op_name}: impl='compiled' was requested but the compiled core is not available ({reason}). "
                f"Build it with `python3 -m gan3dkit.ops.build`, or pass impl='ref' (or 'auto') to use the "
                f"pure-PyTorch reference implementation."
            )
        if device_type == "cuda":
            passed, message = _passes_selfcheck(op_name, tensor.device)
            if not passed:
                raise RuntimeError(f"{message} (impl='compiled' was requested; pass impl='ref' or 'auto').")
        return "compiled"
    if not _auto_wants_compiled(op_name, device_type):
        return "ref"
    if os.environ.get(NO_EXTENSION_ENV, "0") == "1":
        return "ref"
    ok, reason = _compiled_status(op_name, device_type)
    if ok and device_type == "cuda":
        return "compiled" if _passes_selfcheck(op_name, tensor.device)[0] else "ref"  # ensure() warned once
    if ok:
        return "compiled"
    if op_name not in _warned_ops:
        _warned_ops.add(op_name)
        warnings.warn(
            f"gan3dkit.ops.{op_name}: compiled kernel unavailable ({reason}); falling back to the slower pure-PyTorch "
            f"reference for {device_type} tensors. Pass impl='ref' to choose it explicitly, or set "
            f"{NO_EXTENSION_ENV}=1. (Shown once per op.)",
            RuntimeWarning,
            stacklevel=3,
        )
    return "ref"


def extension() -> ModuleType:
    """The loaded extension module (raises ``RuntimeError`` with the reason if it is unavailable)."""
    module, reason = _load_compiled()
    if module is None:
        raise RuntimeError(f"gan3dkit compiled ops core not available ({reason}).")
    return module


def backend_report(build: bool = False) -> dict[str, dict[str, Any]]:
    """Per-op backend status, printed by ``gan3dkit env``; never compiles unless ``build``.

    Returns:
        ``{op_name: {"cpu": "ref"|"compiled", "cuda": "ref"|"compiled", "compiled_available": bool,
        "reason": str}}`` where ``cpu``/``cuda`` is what ``impl="auto"`` uses for tensors on that device.
    """
    report: dict[str, dict[str, Any]] = {}
    for name in OP_NAMES:
        ok, reason = _compiled_status(name, "cpu", build=build)
        ok_cuda = ok and _compiled_status(name, "cuda", build=build)[0]
        report[name] = {
            "cpu": "compiled" if ok and name in CPU_DEFAULT else "ref",
            "cuda": "compiled" if ok_cuda else "ref",
            "compiled_available": ok,
            "reason": reason if ok else f"{reason}; using the pure-PyTorch reference",
        }
    return report
