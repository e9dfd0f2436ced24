# SPDX-License-Identifier: Apache-2.0
"""Benchmark the compiled ops core against the pure-PyTorch reference in the same run; prints JSON.

Measures, per thread count: the fused tri-plane field + ray marcher path (forward, forward + backward) at EG3D's
sizes, the discriminator/synthesis ops bias_act and upfirdn2d at network shapes (forward, forward + backward, and
an R1-style double backward), the whole generator forward of a preset and one G + D training step (R1 included;
also with bias_act/upfirdn2d on the reference, to show their share). The reference side runs with
``GAN3DKIT_NO_EXTENSION=1`` set in-process, so both sides use identical inputs and weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import _cameras, bench_train_step  # tools/ is not a package

from gan3dkit.networks import TriPlaneGenerator, get_preset
from gan3dkit.ops import _backend, bias_act, downsample2d, generate_planes, mip_ray_march, setup_filter, upfirdn2d
from gan3dkit.ops.triplane import triplane_decode


def _time_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 2)


@contextmanager
def reference_only(enabled: bool) -> Iterator[None]:
    """Run the block on the pure-PyTorch reference (GAN3DKIT_NO_EXTENSION=1) when ``enabled``."""
    old = os.environ.get(_backend.NO_EXTENSION_ENV)
    if enabled:
        os.environ[_backend.NO_EXTENSION_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_backend.NO_EXTENSION_ENV, None)
        else:
            os.environ[_backend.NO_EXTENSION_ENV] = old


def bench_field_path(plane_res: int, channels: int, nrr: int, samples: int, repeats: int) -> dict[str, object]:
    """Tri-plane sampling + OSG decoder (64 hidden, 1 + 32 out) + marcher for nrr² rays x samples points."""
    gen = torch.Generator().manual_seed(0)
    planes = torch.randn(1, 3, channels, plane_res, plane_res, generator=gen).requires_grad_()
    rays = nrr * nrr
    coords = (torch.rand(1, rays * samples, 3, generator=gen) * 2 - 1) * 0.5
    w1 = (torch.randn(64, channels, generator=gen) / channels**0.5).requires_grad_()
    b1 = torch.zeros(64).requires_grad_()
    w2 = (torch.randn(33, 64, generator=gen) / 8).requires_grad_()
    b2 = torch.zeros(33).requires_grad_()
    depths = torch.sort(torch.rand(1, rays, samples, 1, generator=gen) * 1.05 + 2.25, dim=2).values
    pm = generate_planes()

    def forward(impl: str):
        rgb, sigma = triplane_decode(pm, planes, coords, w1, b1, w2, b2, impl=impl)
        return mip_ray_march(rgb.reshape(1, rays, samples, 32), sigma.reshape(1, rays, samples, 1), depths, impl=impl)

    def step(impl: str) -> None:
        rgb, depth, _ = forward(impl)
        (rgb.square().mean() + depth.mean()).backward()

    out: dict[str, object] = {"planes": f"3x{channels}x{plane_res}^2", "rays": rays, "samples_per_ray": samples}
    for name, fn in (("forward", lambda i: forward(i)), ("forward_backward", step)):
        with torch.no_grad() if name == "forward" else torch.enable_grad():
            ref = _time_ms(lambda fn=fn: fn("ref"), repeats)
            comp = _time_ms(lambda fn=fn: fn("compiled"), repeats)
        out[name] = {"reference_ms": ref, "compiled_ms": comp, "speedup": round(ref / comp, 2)}
    return out


def _d_op_cases() -> dict[str, tuple[Callable[[torch.Tensor, str], torch.Tensor], tuple[int, ...]]]:
    """bias_act and upfirdn2d calls as the tiny/EG3D networks make them (batch 4)."""
    f = setup_filter([1, 3, 3, 1])
    return {
        "bias_act lrelu+clamp [4,256,32,32]": (
            lambda x, i: bias_act(x, _BIAS[x.shape[1]], act="lrelu", gain=2**0.5, clamp=256.0, impl=i),
            (4, 256, 32, 32),
        ),
        "bias_act linear+clamp [4,128,64,64]": (
            lambda x, i: bias_act(x, _BIAS[x.shape[1]], clamp=256.0, impl=i),
            (4, 128, 64, 64),
        ),
        "bias_act lrelu fc [4,512]": (lambda x, i: bias_act(x, _BIAS[x.shape[1]], act="lrelu", impl=i), (4, 512)),
        "upfirdn2d D pre-filter [4,128,64,64]": (lambda x, i: upfirdn2d(x, f, padding=2, impl=i), (4, 128, 64, 64)),
        "downsample2d D skip [4,128,64,64]": (lambda x, i: downsample2d(x, f, impl=i), (4, 128, 64, 64)),
        "upfirdn2d G up2 [4,256,32,32]": (
            lambda x, i: upfirdn2d(x, f, up=2, padding=[3, 2, 3, 2], gain=4, impl=i),
            (4, 256, 32, 32),
        ),
    }


_BIAS = {c: torch.randn(c, generator=torch.Generator().manual_seed(c)).requires_grad_() for c in (128, 256, 512)}


def bench_d_ops(repeats: int) -> dict[str, object]:
    """Each case: forward (no grad), forward + backward (random cotangent), and R1-style double backward (grad of
    the squared input-gradient, backpropagated to the input and the bias or cotangent)."""
    out: dict[str, object] = {}
    for name, (fn, shape) in _d_op_cases().items():
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=gen).requires_grad_()
        cot = torch.randn(fn(x, "ref").shape, generator=gen).requires_grad_()
        leaves = [x, cot] + ([_BIAS[shape[1]]] if name.startswith("bias_act") else [])

        def fwd_bwd(impl: str, fn=fn, x=x, cot=cot) -> None:
            torch.autograd.grad(fn(x, impl), x, cot.detach())

        def r1(impl: str, fn=fn, x=x, cot=cot, leaves=leaves) -> None:
            (gx,) = torch.autograd.grad((fn(x, impl) * cot).sum(), x, create_graph=True)
            torch.autograd.grad(gx.square().sum(), leaves, allow_unused=True)

        case: dict[str, object] = {}
        for part, call in (("forward", None), ("forward_backward", fwd_bwd), ("r1_double_backward", r1)):
            times = {}
            for impl in ("ref", "compiled"):
                if call is None:
                    with torch.no_grad():
                        times[impl] = _time_ms(lambda fn=fn, x=x, impl=impl: fn(x, impl), repeats)
                else:
                    times[impl] = _time_ms(lambda call=call, impl=impl: call(impl), repeats)
            case[part] = {
                "reference_ms": times["ref"],
                "compiled_ms": times["compiled"],
                "speedup": round(times["ref"] / times["compiled"], 2),
            }
        out[name] = case
    return out


@contextmanager
def cpu_default(ops: frozenset[str]) -> Iterator[None]:
    """Run the block with ``_backend.CPU_DEFAULT`` replaced by ``ops``."""
    old = _backend.CPU_DEFAULT
    _backend.CPU_DEFAULT = ops
    try:
        yield
    finally:
        _backend.CPU_DEFAULT = old


def bench_generator(preset: str, batch: int, repeats: int) -> dict[str, object]:
    """Whole generator forward (mapping, backbone, rendering, super-resolution), no grad."""
    cfg = get_preset(preset).generator
    torch.manual_seed(0)
    G = TriPlaneGenerator(cfg).eval()
    c = _cameras(batch, torch.device("cpu"))
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1))
    result: dict[str, object] = {"preset": preset, "batch": batch, "nrr": cfg.neural_rendering_resolution}
    times = {}
    for ref in (True, False):
        with reference_only(ref), torch.no_grad():
            times["reference_ms" if ref else "compiled_ms"] = _time_ms(lambda: G(z, c, noise_mode="const"), repeats)
    result.update(times, speedup=round(times["reference_ms"] / times["compiled_ms"], 2))
    return result


def bench_train(preset: str, batch: int, repeats: int, rounds: int = 1) -> dict[str, object]:
    """One G step + one D step with R1 (``bench_render.bench_train_step``), reference vs compiled.

    With ``rounds`` > 1 the variants run in alternating order that many times (fresh networks each round, same
    seed) and each figure is the median of the round medians, with the range of the rounds beside it: on a shared
    machine single runs drift by tens of percent, and the alternation spreads any drift over all variants.
    """
    out: dict[str, object] = {"preset": preset, "batch": batch, "rounds": rounds}
    render_only = _backend.CPU_DEFAULT - {"bias_act", "upfirdn2d"}
    variants = (("reference", True, _backend.CPU_DEFAULT), ("compiled", False, _backend.CPU_DEFAULT))
    variants += (("compiled_render_ops_only", False, render_only),) if render_only != _backend.CPU_DEFAULT else ()
    keys = ("g_step", "d_step_with_r1")
    seen: dict[str, dict[str, list[float]]] = {name: {k: [] for k in keys} for name, _, _ in variants}
    for r in range(rounds):
        for name, ref, ops in variants if r % 2 == 0 else variants[::-1]:
            with reference_only(ref), cpu_default(ops):
                torch.manual_seed(0)
                step = bench_train_step(preset, batch, repeats, torch.device("cpu"))
            for k in keys:
                seen[name][k].append(step[k]["median_ms"])
    for name, per in seen.items():
        out[name] = {k: round(statistics.median(v), 2) for k, v in per.items()}
        if rounds > 1:
            out[name]["range"] = {k: [min(v), max(v)] for k, v in per.items()}  # type: ignore[index]
    for k in keys:
        out[f"{k}_speedup"] = round(out["reference"][k] / out["compiled"][k], 2)  # type: ignore[index]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="examples:\n  python tools/bench_ops.py --threads 1,2 --repeats 3\n"
        "  python tools/bench_ops.py --threads 1 --skip field,d_ops,generator --rounds 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plane-res", type=int, default=256, help="tri-plane resolution of the field benchmark")
    parser.add_argument("--nrr", type=int, default=64, help="rays = nrr^2 in the field benchmark")
    parser.add_argument("--samples", type=int, default=48, help="samples per ray in the field benchmark")
    parser.add_argument("--preset", default="tiny", help="preset of the generator / training-step benchmark")
    parser.add_argument("--batch", type=int, default=4, help="batch of the generator / training-step benchmark")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of the training-step variants")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: field, d_ops, generator, train")
    args = parser.parse_args()
    _backend.extension()  # build or load the core before timing anything
    skip = set(args.skip.split(","))
    result: dict[str, object] = {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "runs": [],
    }
    for threads in (int(t) for t in args.threads.split(",") if t):
        torch.set_num_threads(threads)
        run: dict[str, object] = {"threads": threads}
        if "field" not in skip:
            run["field_path"] = bench_field_path(args.plane_res, 32, args.nrr, args.samples, args.repeats)
        if "d_ops" not in skip:
            run["d_ops"] = bench_d_ops(args.repeats)
        if "generator" not in skip:
            run["generator_forward"] = bench_generator(args.preset, args.batch, args.repeats)
        if "train" not in skip:
            run["train_step"] = bench_train(args.preset, args.batch, args.repeats, args.rounds)
        result["runs"].append(run)  # type: ignore[union-attr]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
