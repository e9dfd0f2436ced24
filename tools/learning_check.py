#!/usr/bin/env python3
"""Learning check: train the tiny preset on synthetic heads and snapshot views + depth at wall-clock marks.

Examples (runs A and B of docs/learning_check.md):
    python tools/learning_check.py --out A --marks 0,5,10,20,40 --threads 1 --set run.cpu_threads=1
    python tools/learning_check.py --out B --prior synthetic_heads_wide --marks 0,10,20,40,60,80 --threads 1 \
        --set run.cpu_threads=1
Prints one JSON object (per mark: minutes, kimg, steps, losses, depth statistics, image path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="where the pictures go (e.g. docs/learning_check)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/gan3dkit-learning-check"), help="dataset + run dir")
    ap.add_argument("--marks", default="0,5,10,20", help="cumulative minutes at which to snapshot")
    ap.add_argument("--num", type=int, default=2000, help="synthetic heads in the dataset")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument(
        "--prior", default="synthetic_heads", help="pose prior of the heads (synthetic_heads_wide: yaw 0.6)"
    )
    ap.add_argument("--yaws", default="0.4,0,-0.4", help="view yaws in radians (EG3D gen_samples: 0.4,0,-0.4)")
    ap.add_argument("--nfs", type=int, default=64, help="latents for the non-flatness score per mark (0 = skip)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from gan3dkit.data.reader import read_meta
    from gan3dkit.generate import load_generator, parse_seeds, render_views
    from gan3dkit.metrics.context import EvalOptions
    from gan3dkit.metrics.suite import evaluate
    from gan3dkit.prepare.synthetic import build_synthetic
    from gan3dkit.train.checkpoint import read_header
    from gan3dkit.train.config import train_preset
    from gan3dkit.train.loop import train
    from gan3dkit.utils.config import apply_overrides

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work
    data = work / "heads.lmdb"
    if not data.exists():
        build_synthetic(data, family="heads", num=args.num, resolution=64, prior=args.prior, resume=True)
    built_with = read_meta(data)["pose_prior"]["name"]
    if built_with != args.prior:
        sys.exit(f"{data} was built with prior {built_with!r}, not {args.prior!r}: use another --work")
    yaws = tuple(float(y) for y in args.yaws.split(","))
    run_dir = work / "run"
    marks = [float(m) for m in args.marks.split(",")]
    seeds = parse_seeds(args.seeds)
    results, rows, prev = [], [], 0.0
    for i, mark in enumerate(marks):
        budget = ["run.max_steps=0"] if mark == 0 else ["run.max_steps=null", f"run.max_minutes={mark - prev}"]
        cfg = apply_overrides(
            train_preset("tiny"),
            [f'data="{data}"', f'out="{run_dir}"', "run.workers=1", "run.kimg=100000", *args.overrides, *budget],
        )
        t0 = time.time()
        records: list[dict] = []
        train(cfg, resume=i > 0, on_tick=records.append)
        prev = mark
        ckpt = run_dir / "checkpoint.safetensors"
        G, _ = load_generator(ckpt)
        grid, per_seed = render_views(G, seeds, yaws=yaws, nrr=cfg.loss.nrr_initial)
        path = args.out / f"t{int(mark):02d}min.png"
        Image.fromarray(grid).save(path)
        rows.append((mark, grid))
        frontal = yaws.index(0.0) if 0.0 in yaws else 0
        depth_ranges = [float(np.ptp(s["depth"][frontal])) for s in per_seed]  # frontal view depth range
        nfs = None
        if args.nfs:  # 3DGP's non-flatness score: 1 = flat, higher = more depth levels
            nfs = evaluate(["nfs"], data, ckpt, EvalOptions(num=args.nfs)).results[0].value
        prog = read_header(ckpt)["progress"]
        losses = {k: v for k, v in (records[-1] if records else {}).items() if k.startswith("Loss/")}
        results.append(
            {
                "minutes": mark,
                "kimg": prog["nimg"] / 1000,
                "steps": prog["step"],
                "image": str(path),
                "frontal_depth_range_mean": float(np.mean(depth_ranges)),
                "nfs": nfs,
                "wall_sec": time.time() - t0,
                **losses,
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    figure = _stack(rows)
    Image.fromarray(figure).save(args.out / "learning_check.png")
    print(
        json.dumps(
            {
                "threads": args.threads,
                "torch": torch.__version__,
                "marks": results,
                "figure": str(args.out / "learning_check.png"),
            },
            indent=2,
        )
    )


def _stack(rows: list[tuple[float, np.ndarray]]) -> np.ndarray:
    label_w = 70
    h = sum(g.shape[0] for _, g in rows)
    w = max(g.shape[1] for _, g in rows) + label_w
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for mark, grid in rows:
        canvas.paste(Image.fromarray(grid), (label_w, y))
        draw.text((4, y + grid.shape[0] // 2 - 6), f"{mark:g} min", fill="black")
        y += grid.shape[0]
    return np.asarray(canvas)


if __name__ == "__main__":
    main()
