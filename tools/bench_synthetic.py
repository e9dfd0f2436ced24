"""Benchmark `gan3dkit prepare synthetic`: wall time and images/s of `build_synthetic` per family (one JSON object).

Example:
    python tools/bench_synthetic.py --num 2000 --resolution 64 --family all --ssaa 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from gan3dkit.prepare.synthetic import FAMILIES, build_synthetic


def bench(family: str, num: int, resolution: int, ssaa: int, batch_size: int, seed: int, threads: int | None) -> dict:
    """Build one dataset in a temporary directory; return its timings (the dataset is deleted)."""
    with tempfile.TemporaryDirectory(prefix="bench_synthetic_") as tmp:
        out = Path(tmp) / f"{family}.lmdb"
        wall, cpu = time.perf_counter(), time.process_time()
        build_synthetic(out, family=family, num=num, resolution=resolution, seed=seed, ssaa=ssaa,
                        batch_size=batch_size, resume=False, threads=threads)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(f.stat().st_size for f in out.iterdir())
    return {"seconds": round(wall, 3), "images_per_s": round(num / wall, 1), "cpu_seconds": round(cpu, 3),
            "dataset_mib": round(size / 2**20, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=2000, help="images per family")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    parser.add_argument("--ssaa", type=int, default=2, help="colour supersampling factor per axis")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while building (build_synthetic's default 1; 0 = torch's own setting)")
    args = parser.parse_args(argv)
    threads = args.threads or None
    families = list(FAMILIES) if args.family == "all" else [args.family]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results = {f: bench(f, args.num, args.resolution, args.ssaa, args.batch_size, args.seed, threads)
               for f in families}
    report = {
        "benchmark": "build_synthetic", "num": args.num, "resolution": args.resolution, "ssaa": args.ssaa,
        "batch_size": args.batch_size, "results": results, "torch_threads": threads or torch.get_num_threads(),
        "torch_default_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__, "python": platform.python_version(),
        "load_average_1min_before": None if load is None else round(load, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2) if load is not None else None,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
