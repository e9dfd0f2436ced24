"""Benchmark the evaluation suite's hot spots on this machine: Inception throughput, FID routes, a full evaluate run.

Usage:
    python tools/bench_metrics.py                                   # Inception + FID timings only
    python tools/bench_metrics.py --ckpt RUN/checkpoint.safetensors --data DATA.lmdb --num 64 [--metrics all ...]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def bench_inception(batch: int, reps: int) -> dict[str, float]:
    from gan3dkit.metrics.features import InceptionV3

    out = {}
    for optimize in (True, False):
        net = InceptionV3(optimize=optimize)
        x = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8)
        net(x)  # warm-up (TorchScript profiling)
        t0 = time.perf_counter()
        for _ in range(reps):
            net(x)
        per_image = (time.perf_counter() - t0) / (reps * batch)
        out[f"inception_s_per_image_{'optimized' if optimize else 'plain'}"] = per_image
    return out


def bench_fid(n_real: int, n_fake: int) -> dict[str, float]:
    from gan3dkit.metrics.stats import fid_from_features

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n_real, 2048)), rng.normal(size=(n_fake, 2048)) + 0.1
    out = {}
    for method in ("gram", "cov"):
        t0 = time.perf_counter()
        out[f"fid_{method}_value"] = fid_from_features(a, b, method=method)
        out[f"fid_{method}_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--ckpt")
    ap.add_argument("--data")
    ap.add_argument("--num", type=int, default=64)
    ap.add_argument("--metrics", default="fid,kid,pr,psnr,ssim,ms_ssim,mse,nfs,depth_fid")
    ap.add_argument("--pose-probe")
    ap.add_argument("--depth-probe")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, object] = {"threads": torch.get_num_threads()}
    result.update(bench_inception(args.batch, args.reps))
    result.update(bench_fid(64, 128))
    if args.ckpt and args.data:
        from gan3dkit.metrics import EvalOptions, evaluate, parse_metrics

        opts = EvalOptions(num=args.num, pose_probe=args.pose_probe, depth_probe=args.depth_probe,
                           random_backbone=True)
        report = evaluate(parse_metrics(args.metrics), args.data, args.ckpt, opts)
        result["evaluate_total_s"] = report.total_s
        result["shared_s"] = report.shared_s
        result["metrics"] = {r.metric: {"value": r.value, "time_s": r.time_s} for r in report.results}
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
