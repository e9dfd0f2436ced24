# SPDX-License-Identifier: Apache-2.0
"""Benchmark the tri-plane generator: rendering ms/image per preset and resolution, G forward, G+D train step."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gan3dkit.cameras import Cameras, get_prior
from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator, get_preset
from gan3dkit.render import ray_bundle


def _time_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median / min wall time of ``fn`` in milliseconds (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2), "repeats": repeats}


def _cameras(batch: int, device: torch.device) -> torch.Tensor:  # [B, 25]
    return get_prior("synthetic_heads").sample(batch, torch.Generator().manual_seed(0)).to_label().float().to(device)


def bench_render(preset: str, nrr: int, batch: int, repeats: int, device: torch.device) -> dict[str, object]:
    """Volume rendering alone (planes and rays given), rendering + SR, and the full G forward, per image."""
    cfg = get_preset(preset).generator
    cfg.neural_rendering_resolution = nrr
    G = TriPlaneGenerator(cfg).to(device).eval()
    c = _cameras(batch, device)
    with torch.no_grad():
        ws = G.mapping(torch.randn(batch, G.z_dim, device=device), c)
        planes = G.synthesize_planes(ws)
        origins, dirs = ray_bundle(Cameras.from_label(c), nrr)
        t_render = _time_ms(lambda: G.renderer(planes, G.decoder, origins, dirs), repeats)
        t_render_sr = _time_ms(lambda: G.render_planes(planes, c, ws), repeats)  # rendering + super-resolution only
        t_fwd = _time_ms(lambda: G(torch.randn(batch, G.z_dim, device=device), c), repeats)
    return {
        "preset": preset,
        "nrr": nrr,
        "batch": batch,
        "samples_per_ray": cfg.rendering.depth_resolution + cfg.rendering.depth_resolution_importance,
        "render_ms_per_image": round(t_render["median_ms"] / batch, 2),
        "render_plus_sr_ms_per_image": round(t_render_sr["median_ms"] / batch, 2),
        "g_forward_ms_per_image": round(t_fwd["median_ms"] / batch, 2),
        "timings": {"render": t_render, "render_plus_sr": t_render_sr, "g_forward": t_fwd},
    }


def bench_train_step(preset: str, batch: int, repeats: int, device: torch.device) -> dict[str, object]:
    """One G step (fake logits -> non-saturating loss -> backward) plus one D step (fake + real, R1 on both)."""
    p = get_preset(preset)
    G = TriPlaneGenerator(p.generator).to(device).train()
    D = DualDiscriminator(p.discriminator).to(device).train()
    c = _cameras(batch, device)
    res, nrr = p.generator.img_resolution, p.generator.neural_rendering_resolution
    real = {"image": torch.rand(batch, 3, res, res, device=device) * 2 - 1}
    real["image_raw"] = F.interpolate(real["image"], size=(nrr, nrr), mode="bilinear", antialias=True)

    def g_step() -> None:
        out = G(torch.randn(batch, G.z_dim, device=device), c)
        F.softplus(-D(out, c)).mean().backward()

    def d_step() -> None:
        with torch.no_grad():
            fake = G(torch.randn(batch, G.z_dim, device=device), c)
        loss_fake = F.softplus(D({"image": fake["image"], "image_raw": fake["image_raw"]}, c)).mean()
        img = real["image"].detach().requires_grad_(True)
        raw = real["image_raw"].detach().requires_grad_(True)
        logits = D({"image": img, "image_raw": raw}, c)
        grads = torch.autograd.grad(logits.sum(), [img, raw], create_graph=True)
        r1 = sum(g.square().sum(dim=[1, 2, 3]) for g in grads).mean()
        (loss_fake + F.softplus(-logits).mean() + r1).backward()

    return {
        "preset": preset,
        "batch": batch,
        "g_step": _time_ms(g_step, repeats),
        "d_step_with_r1": _time_ms(d_step, repeats),
        "g_plus_d_step": _time_ms(lambda: (g_step(), d_step()), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="examples:\n  python tools/bench_render.py --presets tiny --threads 1\n"
        "  python tools/bench_render.py --presets ffhq512 --nrr 64,128 --repeats 1 --train-preset ''",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--presets", default="tiny,ffhq512", help="comma-separated presets for the render benchmark")
    parser.add_argument(
        "--nrr",
        default="",
        help="comma-separated rendering resolutions (default: 64,128 for full presets, the preset's own for tiny)",
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size of the render benchmark")
    parser.add_argument("--train-preset", default="tiny", help="preset of the G+D step benchmark ('' to skip)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave as is)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    result: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "render": [],
    }
    for preset in [p for p in args.presets.split(",") if p]:
        own = get_preset(preset).generator.neural_rendering_resolution
        nrrs = [int(n) for n in args.nrr.split(",") if n] or ([own] if preset == "tiny" else [64, 128])
        for nrr in nrrs:
            result["render"].append(bench_render(preset, nrr, args.batch, args.repeats, device))  # type: ignore[union-attr]
    if args.train_preset:
        result["train_step"] = bench_train_step(args.train_preset, args.train_batch, args.repeats, device)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
