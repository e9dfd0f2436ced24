"""Inversion benchmark on held-out synthetic heads (true pose and depth known), starting from wrong poses; JSON out.

For each held-out head (scene parameters never seen in training: a fresh seed) rendered at a true camera, every
method starts from the true camera with yaw offset by +delta and reports: pose error before/after (rotation
geodesic, yaw), reconstruction at the input view, novel-view error against the true renders at yaw +-0.4 around the
true view, depth error at the true view (inside the true mask), and time per stage.

Example: python tools/bench_invert.py --ckpt run/checkpoint.safetensors --offsets 0.3,0.6 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("GAN3DKIT_NO_EXTENSION", "1")

VARIANTS = {  # name -> (method, algorithm, overrides)
    "w": ("w", 1, {}),
    "pti": ("pti", 1, {}),
    "ko-alg1": ("ko", 1, {}),
    "ko-alg1-nowarp": ("ko", 1, {"pose.warp_weight": 0.0}),
    "ko-alg2": ("ko", 2, {}),
    "ko-alg3": ("ko", 3, {}),
}


def write_report(head: dict, args: argparse.Namespace, t_all: float, summary: dict, rows: list) -> None:
    """Print the benchmark's JSON (head + settings, machine, time, summary, rows) and write it to --out if given."""
    doc = {**head, "settings": {k: v for k, v in vars(args).items() if k not in ("out", "figure")},
           "machine": {"cpu_threads": args.threads, "device": "cpu", "platform": platform.platform(),
                       "torch": torch.__version__},
           "total_seconds": time.perf_counter() - t_all, "summary": summary, "rows": rows}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def held_out_views(G, cams: torch.Tensor, target: str, params: torch.Tensor | None, seed: int):
    """Ground truth of one held-out head seen by cameras [V, 25] (view 0 = the input view).

    target 'heads': the synthetic renderer with scene parameters [1, D]; 'self': G's sample of z = randn(seed) at
    the frontal conditioning camera. Returns ({"image": uint8 [V, R, R, 3], "depth": [V, R, R]}, images in [-1, 1]
    [V, 3, R, R], the input view's depth [1, 1, nr, nr] at G's neural rendering resolution, its finite mask).
    """
    from gan3dkit.cameras.camera import Cameras
    from gan3dkit.generate.views import view_cameras
    from gan3dkit.invert.outputs import render_at, to_uint8
    from gan3dkit.prepare.synthetic import render_batch

    v = len(cams)
    if target == "self":
        with torch.no_grad():
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            ws_true = G.mapping(z, view_cameras(G, [0.0], 0.0, "cpu").to_label())
            o = render_at(G, ws_true, cams)
        gt = {"image": torch.from_numpy(np.stack([to_uint8(o["image"][i : i + 1]) for i in range(v)])),
              "depth": torch.nn.functional.interpolate(o["image_depth"], size=G.img_resolution)[:, 0]}
    else:
        gt = render_batch("heads", params.expand(v, -1), Cameras.from_label(cams), G.img_resolution)
        gt = {k: torch.as_tensor(v) for k, v in gt.items()}
    gt_img = gt["image"].permute(0, 3, 1, 2).float() / 127.5 - 1  # [V, 3, R, R]
    gt["image"] = gt["image"].numpy()
    nr = G.neural_rendering_resolution
    gt_depth = torch.nn.functional.interpolate(gt["depth"][:1][None].float(), size=nr, mode="nearest")
    return gt, gt_img, gt_depth, torch.isfinite(gt_depth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--heads", type=int, default=1, help="held-out heads")
    ap.add_argument("--seed", type=int, default=12345, help="seed of the held-out scene parameters")
    ap.add_argument("--true-yaw", type=float, default=0.0)
    ap.add_argument("--offsets", default="0.3,0.6", help="yaw offsets of the starting camera (rad)")
    ap.add_argument("--steps", type=int, default=80, help="projector steps (Ko: 400, PTI: 450)")
    ap.add_argument("--warmup", type=int, default=10, help="pose-only steps of ko Alg. 1 (Ko: 50)")
    ap.add_argument("--tune-steps", type=int, default=30, help="tuning steps (Ko: 400, PTI: 350)")
    ap.add_argument("--w-avg-samples", type=int, default=600)
    ap.add_argument("--methods", default=",".join(VARIANTS))
    ap.add_argument("--target", default="heads", choices=["heads", "self"],
                    help="heads: held-out synthetic heads; self: the generator's own samples (seed = --seed + head),"
                         " so pose, depth and other views are exactly representable")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="override for every variant, e.g. --set perceptual=none --set pose.warp_features=rgb "
                    "(offline: the pretrained VGG16/LPIPS are the defaults and their absence is an error)")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    ap.add_argument("--figure", default=None, help="PNG: per offset, input | recon and novel view per method")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from gan3dkit.generate.loading import load_generator
    from gan3dkit.generate.views import view_cameras
    from gan3dkit.invert import InvertItem, invert, preset
    from gan3dkit.invert.outputs import render_at, to_uint8
    from gan3dkit.invert.pose import pose_error, pose_summary
    from gan3dkit.metrics.image import mse, psnr, ssim
    from gan3dkit.prepare.synthetic import sample_params
    from gan3dkit.utils.config import apply_overrides
    from gan3dkit.utils.visual import make_grid

    G, _ = load_generator(args.ckpt)
    offsets = [float(o) for o in args.offsets.split(",")]
    params = sample_params("heads", args.heads, torch.Generator().manual_seed(args.seed))
    rows, figure = [], []
    t_all = time.perf_counter()
    for h in range(args.heads):
        yaws = [args.true_yaw, args.true_yaw + 0.4, args.true_yaw - 0.4]
        cams = view_cameras(G, yaws, 0.0, "cpu").to_label()
        gt, gt_img, gt_depth, gt_mask = held_out_views(G, cams, args.target, params[h : h + 1], args.seed + h)
        true = cams[:1]
        for off in offsets:
            start = view_cameras(G, [args.true_yaw + off], 0.0, "cpu").to_label()
            fig_row = [gt["image"][0]]
            for name in args.methods.split(","):
                method, alg, sets = VARIANTS[name]
                cfg = preset(method, alg)
                cfg.projector.steps, cfg.tune.steps = args.steps, args.tune_steps
                cfg.projector.w_avg_samples = args.w_avg_samples
                cfg.pose.warmup_steps = min(cfg.pose.warmup_steps, args.warmup)
                cfg = apply_overrides(cfg, [f"{k}={v}" for k, v in sets.items()] + args.sets)
                given = true if name == "ko-alg2" else start  # Alg. 2 is the oracle: it is given the true camera
                item = InvertItem(f"head{h}", gt["image"][0], given[0].numpy(), "bench")
                cpu0 = time.process_time()
                inv = invert(G, item, cfg)
                cpu_s = time.process_time() - cpu0
                Gf = inv.generator
                at_true = render_at(Gf, inv.ws, inv.camera)
                novel = render_at(Gf, inv.ws, cams[1:])
                x, y = (at_true["image"].clamp(-1, 1) + 1) / 2, (gt_img[:1] + 1) / 2
                nx, ny = (novel["image"].clamp(-1, 1) + 1) / 2, (gt_img[1:] + 1) / 2
                d = at_true["image_depth"]
                depth_l1 = float((d - gt_depth).abs()[gt_mask].mean()) if gt_mask.any() else None
                before, after = pose_error(given, true), pose_error(inv.camera, true)
                rows.append({
                    "head": h, "yaw_offset": off, "variant": name, "method": method,
                    "algorithm": alg if method == "ko" else None, "start_given": "true camera (oracle)"
                    if name == "ko-alg2" else f"true yaw + {off}",
                    "pose_error_before_deg": before["rotation_deg"], "pose_error_after_deg": after["rotation_deg"],
                    "yaw_after": pose_summary(inv.camera)["yaw"], "yaw_true": args.true_yaw,
                    "input_view": {"psnr": float(psnr(x, y)[0]), "ssim": float(ssim(x, y)[0]),
                                   "mse_01": float(mse(x, y)[0])},
                    "novel_views": {"yaws": yaws[1:], "psnr": [float(v) for v in psnr(nx, ny)],
                                    "mse_01": [float(v) for v in mse(nx, ny)]},
                    "depth_l1_in_mask": depth_l1,
                    "time": inv.report["time"], "cpu_seconds": cpu_s, "losses": inv.report["losses"],
                })
                fig_row += [to_uint8(at_true["image"]), to_uint8(novel["image"][:1])]
                print(f"head {h} off {off} {name}: pose {before['rotation_deg']:.1f} -> "
                      f"{after['rotation_deg']:.1f} deg, psnr {rows[-1]['input_view']['psnr']:.2f}, "
                      f"novel {np.mean(rows[-1]['novel_views']['psnr']):.2f},"
                      f" {sum(inv.report['time'].values()):.1f} s", file=sys.stderr)
            figure.append(fig_row)
    summary = {}
    for name in args.methods.split(","):
        sel = [r for r in rows if r["variant"] == name]
        summary[name] = {
            "pose_error_before_deg": float(np.mean([r["pose_error_before_deg"] for r in sel])),
            "pose_error_after_deg": float(np.mean([r["pose_error_after_deg"] for r in sel])),
            "input_psnr": float(np.mean([r["input_view"]["psnr"] for r in sel])),
            "novel_psnr": float(np.mean([np.mean(r["novel_views"]["psnr"]) for r in sel])),
            "depth_l1_in_mask": float(
                np.mean([r["depth_l1_in_mask"] for r in sel if r["depth_l1_in_mask"] is not None])
            ),
            "seconds_per_image": float(np.mean([sum(r["time"].values()) for r in sel])),
            "cpu_seconds_per_image": float(np.mean([r["cpu_seconds"] for r in sel])),
            "projector_s": float(np.mean([r["time"]["projector_s"] for r in sel])),
            "tuning_s": float(np.mean([r["time"].get("tuning_s", 0.0) for r in sel])),
        }
    write_report({"ckpt": args.ckpt}, args, t_all, summary, rows)
    if args.figure:
        from PIL import Image

        Image.fromarray(make_grid([im for row in figure for im in row], len(figure[0]))).save(args.figure)


if __name__ == "__main__":
    main()
