#!/usr/bin/env python3
"""Encoder evidence: held-out input-view PSNR/SSIM/LPIPS, novel-view PSNR, pose error, CPU ms per image, and the
learning curve of a distill-encoder run. Prints one JSON object.

Example: python tools/bench_encoders.py --ckpt runs/enc/checkpoint.safetensors --samples 16 --curve docs/images/x.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="distill-encoder checkpoint")
    ap.add_argument("--samples", type=int, default=16, help="held-out latents (seed 2**20, never used in training)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10, help="timed encoder passes (batch 1) after 2 warm-ups")
    ap.add_argument("--curve", type=Path, default=None, help="write the learning curve (PNG) here")
    ap.add_argument("--grid", type=Path, default=None, help="write input | reconstruction | novel | true novel (PNG)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GAN3DKIT_NO_EXTENSION", "1")
    from pytorch_msssim import ssim

    from gan3dkit.encoders.models import load_encoder
    from gan3dkit.encoders.render import sample_cameras
    from gan3dkit.metrics.perceptual_loss import PerceptualLoss

    st, cfg, header = load_encoder(args.ckpt)
    t = st.teacher
    g = torch.Generator().manual_seed(2**20)
    n = args.samples
    z = torch.randn(n, t.G.z_dim, generator=g)
    cams, pose = sample_cameras(cfg.cameras, n, t.cam.radius, t.cam.focal, t.cam.lookat, True, g)
    mv, _ = sample_cameras(cfg.cameras, n, t.cam.radius, t.cam.focal, t.cam.lookat, False, g)
    lp = PerceptualLoss.load(cfg.lpips_net, cfg.lpips_backbone)
    with torch.no_grad():
        torch.manual_seed(0)
        ws = t.mapping(z, cams, cfg.run)
        planes = t.G.synthesize_planes(ws)
        ref, nov_true = (t.G.render_planes(planes, c, ws, neural_rendering_resolution=t.nrr, deterministic_render=True)
                         ["image"].clamp(-1, 1) for c in (cams, mv))
        out = st.encode(ref)  # pose-free: the camera is not given
        rec_true_pose = st.render(out, cams, t.nrr)["image"].clamp(-1, 1)
        nov = st.render(out, mv, t.nrr)["image"].clamp(-1, 1)

        def psnr(a, b):
            return float(-10 * torch.log10(((a - b) / 2).square().mean((1, 2, 3))).mean())

        res = {
            "ckpt": str(args.ckpt), "arch": cfg.arch, "size": cfg.size, "steps": header["progress"]["step"],
            "samples": n, "resolution": t.G.img_resolution,
            "input_view": {"psnr": psnr(rec_true_pose, ref),
                           "ssim": float(ssim((rec_true_pose + 1) / 2, (ref + 1) / 2, data_range=1.0, size_average=True,
                                              win_size=7)),
                           "lpips": float(lp(rec_true_pose, ref)), "camera": "true input pose"},
            "novel_view": {"psnr": psnr(nov, nov_true), "lpips": float(lp(nov, nov_true))},
            "lpips_network": lp.description,
            "triplane_l1": float((out.planes - planes).abs().mean()),
            "baseline_mean_image_psnr": psnr(ref.mean(0, keepdim=True).expand_as(ref), ref),
        }
        if out.pose is not None:
            res["pose_error_deg"] = {k: math.degrees(float((out.pose[:, i] - pose[:, i]).abs().mean()))
                                     for i, k in enumerate(("yaw", "pitch", "roll"))}
        x1 = ref[:1]
        for _ in range(2):
            st.encode(x1)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            st.encode(x1)
            times.append(time.perf_counter() - t0)
        times.sort()
        res["cpu_ms_per_image"] = {"median": 1000 * times[len(times) // 2], "threads": args.threads,
                                   "input_resolution": st.encoder.cfg.input_resolution,
                                   "params_M": sum(p.numel() for p in st.encoder.parameters()) / 1e6}
    run_dir = args.ckpt.parent
    recs = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    res["curve"] = [{k: r[k] for k in ("step", "total_sec", "val/psnr_input", "val/psnr_novel", "val/triplane_l1",
                                       "Loss/E") if k in r} for r in recs]
    if args.curve:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        steps = [r["step"] for r in recs]
        axes[0].plot(steps, [r["val/psnr_input"] for r in recs], label="input view")
        axes[0].plot(steps, [r["val/psnr_novel"] for r in recs], label="novel view")
        axes[0].set(xlabel="step", ylabel="held-out PSNR (dB)")
        axes[0].legend()
        axes[1].plot(steps, [r["val/triplane_l1"] for r in recs], color="C2")
        axes[1].set(xlabel="step", ylabel="held-out tri-plane L1")
        fig.tight_layout()
        args.curve.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.curve, dpi=100)
        res["curve_png"] = str(args.curve)
    if args.grid:
        from gan3dkit.utils.files import atomic_save_png
        from gan3dkit.utils.visual import make_grid
        from gan3dkit.utils.visual import to_uint8_hwc as to8

        k = min(n, 6)
        quads = zip(to8(ref[:k]), to8(rec_true_pose[:k]), to8(nov[:k]), to8(nov_true[:k]), strict=False)
        rows = [im for quad in quads for im in quad]
        res["grid_png"] = str(atomic_save_png(args.grid, make_grid(rows, 4)))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
