# SPDX-License-Identifier: Apache-2.0
"""Self-check of each compiled op against its pure-PyTorch reference on first use on a device, verdicts cached.

The first time ``impl="auto"`` (or ``"compiled"``) sends a CUDA tensor to a compiled kernel, :func:`ensure` runs
that op and its reference on small random inputs on the same device and compares the forward, the backward and,
for the ops the discriminator uses (bias_act, upfirdn2d: R1 differentiates through them twice), the double
backward. The verdict is stored under a key made of the op, the hash of the C++/CUDA sources, the device name and
compute capability, and the torch and CUDA versions (in memory and as JSON in the extension cache), so one process
per machine and build pays for it. A kernel that fails is disabled on that device: ``impl="auto"`` uses the
reference after exactly one warning naming the op and the error; ``impl="compiled"`` raises with the same message.

Everything a test needs to exercise this on the CPU is a parameter (the kernel under test, the device record, the
cache directory, the warned set), never a global switch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gan3dkit.utils.files import atomic_write_json

_Device = torch.device  # (DeviceRecord has a field named `torch`, which shadows the module in its annotations)

#: Ops with a compiled kernel and what the self-check covers for each (the D ops need the double backward).
ORDERS: dict[str, int] = {"bias_act": 2, "upfirdn2d": 2, "triplane_decode": 1, "mip_ray_march": 1, "sample_pdf": 0}
#: Tolerances of the check (float32 inputs; a kernel within these matches the reference to float rounding).
RTOL, ATOL = 1e-4, 1e-5

# Module-level caches (not switches): verdicts by key string, keys in progress (the check calls the op itself),
# and the keys whose "disabled" warning was shown.
_verdicts: dict[str, Verdict] = {}
_running: set[str] = set()
_warned: set[str] = set()


@dataclass(frozen=True)
class DeviceRecord:
    """What identifies a device for the verdict cache."""

    name: str
    capability: str
    torch: str
    cuda: str

    @classmethod
    def of(cls, device: _Device) -> DeviceRecord:
        if device.type == "cuda":
            major, minor = torch.cuda.get_device_capability(device)
            name, cap = torch.cuda.get_device_name(device), f"sm_{major}{minor}"
        else:
            name, cap = f"cpu {platform.machine()} {platform.processor()}".strip(), "-"
        return cls(name=name, capability=cap, torch=torch.__version__, cuda=str(torch.version.cuda))


@dataclass
class Verdict:
    """The outcome of one op's self-check on one device."""

    op: str
    ok: bool
    error: str = ""
    max_abs_err: dict[str, float] = field(default_factory=dict)
    orders: int = 0
    seconds: float = 0.0
    device: dict[str, str] = field(default_factory=dict)
    source_hash: str = ""


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 of every C++/CUDA source and header of the ops core (what a verdict is valid for; read once)."""
    from gan3dkit.ops._build import sources_digest

    return sources_digest().hexdigest()


def cache_key(op: str, record: DeviceRecord, src: str) -> str:
    """The verdict key: op, source hash, device name and capability, torch and CUDA versions."""
    parts = [op, src, record.name, record.capability, record.torch, record.cuda]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    from gan3dkit.ops._build import cache_root

    return cache_root() / "selfcheck"


# ------------------------------------------------------------------------------------------------ probes
def _rand(gen: torch.Generator, *shape: int, device: torch.device) -> torch.Tensor:
    return torch.randn(*shape, generator=gen).to(device)


def _probe(op: str, device: torch.device) -> tuple[Callable[..., Any], list[torch.Tensor], dict[str, Any]]:
    """The public op, its differentiable float32 inputs on ``device`` and fixed keyword arguments."""
    from gan3dkit import ops
    from gan3dkit.ops.triplane import generate_planes, triplane_decode

    gen = torch.Generator().manual_seed(1234)
    if op == "bias_act":
        x, b = _rand(gen, 2, 8, 5, 5, device=device), _rand(gen, 8, device=device)
        return ops.bias_act, [x, b], {"act": "lrelu", "gain": 1.4, "clamp": 1.5}
    if op == "upfirdn2d":
        f = ops.setup_filter([1, 3, 3, 1], device=device)
        return functools.partial(ops.upfirdn2d, f=f), [_rand(gen, 2, 3, 9, 8, device=device)], {"up": 2, "padding": 1}
    if op == "triplane_decode":
        pm = generate_planes(device=device)
        inputs = [
            _rand(gen, 1, 3, 8, 6, 7, device=device),
            (torch.rand(1, 40, 3, generator=gen) * 1.2 - 0.6).to(device),
            _rand(gen, 16, 8, device=device) / 3,
            _rand(gen, 16, device=device),
            _rand(gen, 4, 16, device=device) / 4,
            _rand(gen, 4, device=device),
        ]
        return functools.partial(triplane_decode, pm), inputs, {}
    if op == "mip_ray_march":
        colors = torch.rand(1, 12, 10, 3, generator=gen).to(device)
        dens = _rand(gen, 1, 12, 10, 1, device=device) * 3
        depths = torch.sort(torch.rand(1, 12, 10, 1, generator=gen) + 2.25, dim=2).values.to(device)
        return functools.partial(ops.mip_ray_march, depths=depths), [colors, dens], {"white_back": True}
    if op == "sample_pdf":
        bins = torch.sort(torch.rand(16, 10, generator=gen) * 2 + 2, dim=1).values.to(device)
        weights = (torch.rand(16, 9, generator=gen) ** 2).to(device)
        return functools.partial(ops.sample_pdf, bins, weights), [], {"n_importance": 12, "det": True}
    raise ValueError(f"no self-check for op {op!r}; known: {', '.join(ORDERS)}")


def _outputs(fn: Callable[..., Any], inputs: list[torch.Tensor], kwargs: dict[str, Any], orders: int):
    """Forward outputs, then first-order grads for fixed cotangents, then grads of an R1-style penalty on them."""
    leaves = [t.detach().clone().requires_grad_(orders > 0) for t in inputs]
    out = fn(*leaves, **kwargs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    results = {f"forward[{i}]": o.detach() for i, o in enumerate(outs)}
    if orders == 0:
        return results
    gen = torch.Generator().manual_seed(99)
    cot = [torch.randn(o.shape, generator=gen).to(o.device, o.dtype) for o in outs]
    first = torch.autograd.grad(outs, leaves, cot, create_graph=orders > 1, allow_unused=True)
    results.update({f"backward[{i}]": _or_zeros(g, t) for i, (g, t) in enumerate(zip(first, leaves, strict=False))})
    if orders > 1:
        penalty = sum((g.square().sum() for g in first if g is not None and g.requires_grad), torch.zeros(()))
        second: list[torch.Tensor | None] = [None] * len(leaves)
        if penalty.requires_grad:
            second = list(torch.autograd.grad(penalty, leaves, allow_unused=True))
        results.update(
            {f"double_backward[{i}]": _or_zeros(g, t) for i, (g, t) in enumerate(zip(second, leaves, strict=False))}
        )
    return results


def _prefixed(name: str) -> Callable[[str], str]:
    """assert_close's message callback: the output's name before torch's own message."""
    return lambda message: f"{name}: {message}"


def _or_zeros(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A missing gradient (unused input, or a zero second derivative) is a zero gradient."""
    return torch.zeros_like(like).detach() if grad is None else grad.detach()


def run_check(
    op: str,
    device: torch.device | str,
    kernel: Callable[..., Any] | None = None,
    record: DeviceRecord | None = None,
) -> Verdict:
    """Compare ``kernel`` (default: the op with ``impl="compiled"``) against ``impl="ref"`` on ``device``.

    Args:
        op: One of ``ORDERS``.
        device: Where both run.
        kernel: Stand-in for the compiled kernel, with the public op's signature (tests pass a wrong one).
        record: The device record to store with the verdict (default: read from ``device``).

    Returns:
        The verdict; never raises for a failing or crashing kernel (the error is in ``Verdict.error``).
    """
    device = torch.device(device)
    fn, inputs, kwargs = _probe(op, device)
    orders = ORDERS[op]
    start = time.monotonic()
    verdict = Verdict(op=op, ok=False, orders=orders, device=asdict(record or DeviceRecord.of(device)))
    try:
        want = _outputs(fn, inputs, {**kwargs, "impl": "ref"}, orders)
        got = _outputs(kernel or fn, inputs, {**kwargs, "impl": "compiled"}, orders)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if set(got) != set(want):
            raise AssertionError(f"outputs differ: kernel gives {sorted(got)}, reference {sorted(want)}")
        for name, ref in want.items():
            verdict.max_abs_err[name] = float((got[name].float() - ref.float()).abs().max()) if ref.numel() else 0.0
            torch.testing.assert_close(got[name], ref, rtol=RTOL, atol=ATOL, msg=_prefixed(name))
        verdict.ok = True
    except Exception as exc:  # noqa: BLE001 - a crashing kernel is a failed check, reported with its error
        verdict.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    verdict.seconds = round(time.monotonic() - start, 3)
    return verdict


# ------------------------------------------------------------------------------------------------ cached verdicts
def ensure(
    op: str,
    device: torch.device | str,
    *,
    kernel: Callable[..., Any] | None = None,
    record: DeviceRecord | None = None,
    cache_dir: Path | None = None,
    src: str | None = None,
    verdicts: dict[str, Verdict] | None = None,
    warned: set[str] | None = None,
    refresh: bool = False,
) -> Verdict:
    """The cached verdict of ``op`` on ``device``, running the check once per key; warns once if it failed.

    Returns a passing placeholder while the check of the same key is running (the check calls the op itself).
    The keyword arguments replace the module caches and the device/kernel under test (used by the tests);
    ``refresh`` ignores any cached verdict and checks again.
    """
    device = torch.device(device)
    record = record or DeviceRecord.of(device)
    src = src or source_hash()
    verdicts = _verdicts if verdicts is None else verdicts
    warned = _warned if warned is None else warned
    key = cache_key(op, record, src)
    if key in _running:
        return Verdict(op=op, ok=True, error="check in progress")
    verdict = None if refresh else verdicts.get(key)
    path = (cache_dir or default_cache_dir()) / f"{key}.json"
    if verdict is None and not refresh and path.exists():
        try:
            verdict = Verdict(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            verdict = None  # a damaged cache entry is re-checked
    if verdict is None:
        _running.add(key)
        try:
            verdict = run_check(op, device, kernel=kernel, record=record)
        finally:
            _running.discard(key)
        verdict.source_hash = src
        try:
            atomic_write_json(path, asdict(verdict))
        except OSError as exc:  # a read-only cache only costs a re-check in the next process
            warnings.warn(f"gan3dkit.ops.selfcheck: cannot cache the verdict in {path} ({exc})", stacklevel=2)
    verdicts[key] = verdict
    if not verdict.ok and key not in warned:
        warned.add(key)
        warnings.warn(disabled_message(verdict), RuntimeWarning, stacklevel=3)
    return verdict


def disabled_message(verdict: Verdict) -> str:
    name = verdict.device.get("name", "?")
    return (
        f"gan3dkit.ops.{verdict.op}: the compiled kernel failed its self-check on {name} "
        f"({verdict.device.get('capability', '?')}): {verdict.error}. It is disabled on this device and the "
        f"pure-PyTorch reference is used instead (run `gan3dkit env --check` for the table)."
    )


def check_table(
    devices: list[torch.device] | None = None, recheck: bool = False, cache_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Self-check every compiled op on the CPU and every visible GPU (``gan3dkit env --check``).

    Args:
        devices: Devices to check (default: CPU plus each CUDA device).
        recheck: Ignore cached verdicts (in memory and on disk) and run the checks again.
        cache_dir: Where verdicts are stored (default: ``selfcheck/`` in the extension cache).

    Returns:
        One row per (device, op): ``{"device", "capability", "op", "ok", "error", "max_abs_err", "seconds"}``.
    """
    from gan3dkit.ops import _backend

    if devices is None:
        devices = [torch.device("cpu")] + [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    rows: list[dict[str, Any]] = []
    for device in devices:
        record = DeviceRecord.of(device)
        for op, kernel_name in _backend.kernel_names().items():
            ok, reason = _backend.compiled_status(op, device.type)
            if not ok:
                rows.append({"device": record.name, "capability": record.capability, "op": op, "ok": None,
                             "error": f"not run: {reason}", "max_abs_err": {}, "seconds": 0.0})
                continue
            v = ensure(op, device, record=record, warned=set(), refresh=recheck, cache_dir=cache_dir)
            rows.append({"device": record.name, "capability": record.capability, "op": op, "ok": v.ok,
                         "error": v.error, "max_abs_err": v.max_abs_err, "seconds": v.seconds,
                         "kernel": kernel_name})
    return rows
